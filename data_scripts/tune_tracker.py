"""Tune the tracker's hyper-parameters on the real DAVIS-2016 *train* sample (never on the evaluation data).

    python data_scripts/tune_tracker.py --checkpoint checkpoints/siampolar_lite0.pt \
        [--davis-root ../shared/data/davis_train_sample] [--max-frames 30] [--workers 2] [--json tune.json]

Two stages, each scored by J&F mean (official per-sequence protocol, `siampolar_lib.evaluation.metrics`):
1. each --thresholds pair "lost_score:empty_score" with pysot's k, lambda and LR. The thresholds come
   first because they decide how often the state is updated at all: a lost frame keeps the old state,
   so k, lambda and LR only act on frames above lost_score;
2. the grid --penalty-k x --window-influence x --size-lr with the best thresholds of stage 1.
pysot's defaults (k 0.04, lambda 0.44, LR 0.4) with thresholds 0.2:0.1 are always the first row, so the
table says whether tuning beats them. Prints one table row per setting (J&F, J_M, F_M, lost frames) and
the best setting. The 15 val sequences (splits.REAL_VAL_SEQUENCES) are refused: they score shipped models
only. The search itself is `siampolar_lib.evaluation.selection.tune_grid`. `--json` is checked before any work: an
earlier file is replaced only with --overwrite, and it may not be, contain or lie inside --checkpoint or --davis-root.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import replace
from pathlib import Path

from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.data.davis import list_sequences
from siampolar_lib.errors import UserError
from siampolar_lib.evaluation.selection import (
    PYSOT,
    best_setting,
    check_train_sequences,
    format_tuning,
    tune_grid,
    tuned_values,
)
from siampolar_lib.io import write_text
from siampolar_lib.outputs import owned_output_file
from siampolar_lib.paths import davis_train_sample_root
from siampolar_lib.training.checkpoint import load_checkpoint


def floats(text: str, flag: str) -> list[float]:
    """'0.04,0.2' -> [0.04, 0.2]; UserError naming the flag for a value that is not a number, or for none."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{flag} {text!r}: expected comma-separated numbers") from None
    if not values:
        raise UserError(f"{flag} {text!r}: give at least one value")
    return values


def threshold_pairs(text: str) -> list[tuple[float, float]]:
    """'0.2:0.1,0.1:0.05' -> [(0.2, 0.1), (0.1, 0.05)]: (lost_score, empty_score); UserError naming --thresholds."""
    pairs = [tuple(floats(p.replace(":", ","), "--thresholds")) for p in text.split(",") if p.strip()]
    if not pairs or any(len(p) != 2 for p in pairs):
        raise UserError(f"--thresholds {text!r}: expected lost:empty pairs, e.g. 0.2:0.1,0.1:0.05")
    return pairs


def check_grid(pairs: list[tuple[float, float]], grid: dict[str, tuple[str, list[float]]]) -> None:
    """Every value the search would try, checked as a TrackerConfig before any tracking (a value out of range, NaN
    included, would be tracked and scored, or refused only after stage 1): UserError naming its flag.

    grid: {field: (flag, values)} of stage 2."""
    for lost, empty in pairs:
        try:
            replace(PYSOT, lost_score=lost, empty_score=empty)
        except ValueError as err:
            raise UserError(f"--thresholds {lost:g}:{empty:g}: {err}") from None
    for field, (flag, values) in grid.items():
        for v in values:
            try:
                replace(PYSOT, **{field: v})
            except ValueError as err:
                raise UserError(f"{flag} {v:g}: {err}") from None


@cli_main
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for bad input, with a one-line message)."""
    ap = ArgumentParser(prog="tune_tracker.py", description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="a SiamPolar checkpoint (.pt)")
    ap.add_argument("--davis-root", default=None, help="DAVIS train sample (default ../shared/data/davis_train_sample)")
    ap.add_argument("--split", default="train", help="ImageSets split of --davis-root (default train)")
    ap.add_argument("--sequences", default=None, help="comma-separated names (default: the whole split)")
    ap.add_argument("--max-frames", type=int, default=None, help="keep the first N frames of each sequence")
    ap.add_argument("--penalty-k", default="0.04,0.2", help="stage 2: scale/aspect penalty k values")
    ap.add_argument("--window-influence", default="0.3,0.44,0.58", help="cosine window weight values")
    ap.add_argument("--size-lr", default="0.4,0.6", help="size smoothing rates (TrackerConfig.size_lr)")
    ap.add_argument("--thresholds", default="0.2:0.1,0.1:0.05,0.05:0.0,0.0:0.0",
                    help="stage 1: lost_score:empty_score pairs (empty 0: never an empty mask)")
    ap.add_argument("--workers", type=int, default=1, help="processes (each one thread)")
    ap.add_argument("--json", default=None, help="also write every row and the best setting here")
    ap.add_argument("--overwrite", action="store_true", help="replace an earlier --json")
    args = ap.parse_args(argv)
    if args.workers < 1 or (args.max_frames is not None and args.max_frames < 1):
        raise UserError(f"--workers {args.workers} --max-frames {args.max_frames}: each must be at least 1")
    pairs = threshold_pairs(args.thresholds)
    grid = {"penalty_k": ("--penalty-k", floats(args.penalty_k, "--penalty-k")),
            "window_influence": ("--window-influence", floats(args.window_influence, "--window-influence")),
            "size_lr": ("--size-lr", floats(args.size_lr, "--size-lr"))}
    check_grid(pairs, grid)
    root = Path(args.davis_root) if args.davis_root else davis_train_sample_root()
    inputs = {"--checkpoint": args.checkpoint, "--davis-root": root}
    with owned_output_file(args.json, inputs, args.overwrite, "--json") if args.json else contextlib.nullcontext():
        load_checkpoint(args.checkpoint)  # a bad file fails here, before any tracking
        names = [s for s in args.sequences.split(",") if s] if args.sequences else list_sequences(root, args.split)
        check_train_sequences(names, "--sequences" if args.sequences else f"--split {args.split}")
        if not names:
            raise UserError(f"{root}: no sequences (split {args.split!r})")
        doc = tune(args.checkpoint, root, names, pairs, [v for _, v in grid.values()], args.max_frames, args.workers)
        if args.json:
            write_text(args.json, json.dumps(doc, indent=2))
    return 0


def tune(checkpoint: str, root: Path, names: list[str], pairs: list[tuple[float, float]], grid: list[list[float]],
         max_frames: int | None, workers: int) -> dict:
    """Run the two-stage search (`selection.tune_grid`), print its table and the best setting; returns the --json
    document (checkpoint, sequences, max_frames, results, best, pysot)."""
    start = time.time()
    frames = "all" if max_frames is None else f"the first {max_frames}"
    print(f"tuning on {len(names)} train sequences ({', '.join(names)}), {frames} frames each")
    results = tune_grid(checkpoint, root, names, pairs, *grid, max_frames, workers)
    print(format_tuning(results))
    best = best_setting(results)  # ties keep the earlier row (pysot's comes first)
    default = next(r for r in results if r["cfg"] == tuned_values(PYSOT))
    gain = 100 * (best["summary"]["JF_M"] - default["summary"]["JF_M"])
    print(f"\nbest: {best['cfg']}  J&F {100 * best['summary']['JF_M']:.1f} "
          f"(pysot defaults {100 * default['summary']['JF_M']:.1f}, gain {gain:+.1f}); "
          f"{len(results)} settings in {time.time() - start:.0f} s")
    return {"checkpoint": os.path.basename(checkpoint), "sequences": names, "max_frames": max_frames,
            "results": results, "best": best, "pysot": default}

if __name__ == "__main__":
    raise SystemExit(main())
