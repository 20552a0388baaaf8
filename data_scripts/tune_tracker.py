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
the best setting. Sequences of the real val set (the held-out fold and the train fold) are refused.
"""
from __future__ import annotations

import itertools
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

import torch

from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.data.davis import list_sequences
from siampolar_lib.evaluation.evaluate import load_eval_sequence, track_and_score
from siampolar_lib.evaluation.metrics import mean_over_sequences
from siampolar_lib.io import write_text
from siampolar_lib.paths import davis_train_sample_root
from siampolar_lib.splits import REAL_VAL_SEQUENCES
from siampolar_lib.tracking.tracker import Tracker, TrackerConfig
from siampolar_lib.training.checkpoint import load_checkpoint, load_model

PYSOT = TrackerConfig(penalty_k=0.04, window_influence=0.44, size_lr=0.4, lost_score=0.2, empty_score=0.1)
TUNED_KEYS = ("penalty_k", "window_influence", "size_lr", "lost_score", "empty_score")

_MODEL = None  # one network per worker process, loaded once


def _load(checkpoint: str):
    """The worker's network (1 thread: on a shared 2-core machine more threads only wait on each other)."""
    global _MODEL
    if _MODEL is None:
        torch.set_num_threads(1)
        _MODEL = load_model(checkpoint, device="cpu")
    return _MODEL


def score_one(job: tuple) -> tuple[int, str, dict]:
    """Track and score one (setting, sequence): (setting index, sequence, row with J_M/F_M/JF_M/lost)."""
    index, cfg_dict, checkpoint, root, name, max_frames = job
    paths, gt = load_eval_sequence(root, name, max_frames)
    _, row = track_and_score(Tracker(_load(checkpoint), TrackerConfig(**cfg_dict)), paths, gt, desc=name)
    return index, name, {k: row[k] for k in ("J_M", "F_M", "JF_M", "J_O", "F_O", "J_D", "F_D", "lost")}


def score_settings(cfgs: list[TrackerConfig], checkpoint: str, root: Path, names: list[str],
                   max_frames: int | None, workers: int) -> list[dict]:
    """Per setting: {"cfg": tuned values, "summary": mean over sequences, "lost": total lost frames}."""
    jobs = [(i, asdict(c), checkpoint, str(root), n, max_frames) for i, c in enumerate(cfgs) for n in names]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            done = list(pool.map(score_one, jobs))
    else:
        done = [score_one(j) for j in jobs]
    rows: list[dict] = [{} for _ in cfgs]
    for i, name, row in done:
        rows[i][name] = row
    return [{"cfg": {k: getattr(c, k) for k in TUNED_KEYS}, "summary": mean_over_sequences(r),
             "lost": int(sum(v["lost"] for v in r.values()))} for c, r in zip(cfgs, rows)]


def table(results: list[dict]) -> str:
    """One line per setting: the tuned values, J&F, J_M, F_M (percent) and lost frames."""
    head = f"{'k':>5} {'lambda':>6} {'LR':>4} {'lost':>5} {'empty':>5} | {'J&F':>5} {'J_M':>5} {'F_M':>5} {'lost#':>5}"
    lines = [head, "-" * len(head)]
    for r in results:
        c, s = r["cfg"], r["summary"]
        lines.append(f"{c['penalty_k']:>5.2f} {c['window_influence']:>6.2f} {c['size_lr']:>4.2f} {c['lost_score']:>5.2f} "
                     f"{c['empty_score']:>5.2f} | {100 * s['JF_M']:>5.1f} {100 * s['J_M']:>5.1f} "
                     f"{100 * s['F_M']:>5.1f} {r['lost']:>5d}")
    return "\n".join(lines)


def floats(text: str) -> list[float]:
    """'0.04,0.2' -> [0.04, 0.2]."""
    return [float(v) for v in text.split(",") if v]


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
    args = ap.parse_args(argv)
    load_checkpoint(args.checkpoint)  # a bad file fails here, before any tracking
    root = Path(args.davis_root) if args.davis_root else davis_train_sample_root()
    names = [s for s in args.sequences.split(",") if s] if args.sequences else list_sequences(root, args.split)
    leaked = sorted(set(names) & set(REAL_VAL_SEQUENCES))
    if leaked:
        raise ValueError(f"{leaked} belong to the real DAVIS val set (evaluation data): tune on train only")
    if not names:
        raise ValueError(f"no sequences in {root} (split {args.split!r})")
    pairs = [tuple(float(v) for v in p.split(":")) for p in args.thresholds.split(",") if p]
    if any(len(p) != 2 for p in pairs):
        raise ValueError(f"--thresholds wants lost:empty pairs, got {args.thresholds!r}")
    if (PYSOT.lost_score, PYSOT.empty_score) not in pairs:
        pairs.insert(0, (PYSOT.lost_score, PYSOT.empty_score))
    stage1 = [replace(PYSOT, lost_score=lo, empty_score=em) for lo, em in pairs]  # validated here
    grid = list(itertools.product(floats(args.penalty_k), floats(args.window_influence), floats(args.size_lr)))
    start = time.time()
    frames = "all" if args.max_frames is None else f"the first {args.max_frames}"
    print(f"tuning on {len(names)} train sequences ({', '.join(names)}), {frames} frames each")
    results = score_settings(stage1, args.checkpoint, root, names, args.max_frames, args.workers)
    best = max(results, key=lambda r: r["summary"]["JF_M"])  # ties keep the earlier row
    stage2 = [replace(PYSOT, penalty_k=k, window_influence=w, size_lr=lr, lost_score=best["cfg"]["lost_score"],
                      empty_score=best["cfg"]["empty_score"]) for k, w, lr in grid]
    stage2 = [c for c in stage2 if {k: getattr(c, k) for k in TUNED_KEYS} != best["cfg"]]  # already scored
    results += score_settings(stage2, args.checkpoint, root, names, args.max_frames, args.workers)
    print(table(results))
    best = max(results, key=lambda r: r["summary"]["JF_M"])  # ties keep the earlier row (pysot's comes first)
    default = next(r for r in results if r["cfg"] == {k: getattr(PYSOT, k) for k in TUNED_KEYS})
    gain = 100 * (best["summary"]["JF_M"] - default["summary"]["JF_M"])
    print(f"\nbest: {best['cfg']}  J&F {100 * best['summary']['JF_M']:.1f} "
          f"(pysot defaults {100 * default['summary']['JF_M']:.1f}, gain {gain:+.1f}); "
          f"{len(results)} settings in {time.time() - start:.0f} s")
    if args.json:
        doc = {"checkpoint": os.path.basename(args.checkpoint), "sequences": names, "max_frames": args.max_frames,
               "results": results, "best": best, "pysot": default}
        write_text(args.json, json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
