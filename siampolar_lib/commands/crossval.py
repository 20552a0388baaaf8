"""Cross-validate refinement-stage recipes over the DAVIS-2016 train split: `siampolar-crossval`.

    siampolar-crossval --init-from checkpoints/campaign/phase1_lite0.pt --data ../shared/data/davis_train_sample \
        --data ../shared/data/davis_train_extra --out runs/cv --candidate shipped --candidate size192:refine_size=192

Each candidate is trained once per fold of `splits.CV_FOLDS` without that fold and scored on it
(`evaluation.crossval`); the table goes to OUT/crossval.md and OUT/crossval.json. Run it again to resume. A setting
`tracker.FIELD=VALUE` changes the tracker (a TrackerConfig field) instead: a candidate whose stage recipe an earlier
candidate shares scores that candidate's stages (`--candidate base --candidate p2:tracker.refine_passes=2`)."""
from __future__ import annotations

from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.errors import UserError
from siampolar_lib.evaluation.crossval import (
    SHIPPED_RECIPE,
    CrossvalConfig,
    format_table,
    parse_candidate,
    run_crossval,
)


def parse_args(argv: list[str] | None = None) -> CrossvalConfig:
    """The command's arguments as a CrossvalConfig (whose checks refuse a bad value in one line)."""
    p = ArgumentParser(prog="siampolar-crossval", description=__doc__.splitlines()[0])
    p.add_argument("--init-from", required=True, help="the SiamPolar checkpoint whose first stage stays frozen")
    p.add_argument("--data", action="append", required=True, help="a DAVIS root of train sequences (repeat)")
    p.add_argument("--out", required=True, help="the cross-validation's folder (run again to resume it)")
    p.add_argument("--candidate", action="append", default=None,
                   help=f"NAME or NAME:key=value,... (keys: {', '.join(SHIPPED_RECIPE)}, or tracker.FIELD for a "
                        "TrackerConfig field); repeat; the first is the "
                        "reference of the paired differences (default: one candidate, 'shipped')")
    p.add_argument("--folds", default=None, help="comma-separated fold indices to run now (default: all)")
    p.add_argument("--max-frames", type=int, default=None, help="score only the first N frames of each sequence")
    p.add_argument("--workers", type=int, default=1, help="the stage's DataLoader workers (default 1)")
    p.add_argument("--device", default="auto", help="training device: auto, cpu, cuda or mps")
    p.add_argument("--no-progress", action="store_true", help="print only the table")
    a = p.parse_args(argv)
    try:
        folds = None if a.folds is None else tuple(int(k) for k in a.folds.split(",") if k.strip())
    except ValueError:
        raise UserError(f"--folds {a.folds!r}: expected comma-separated integers") from None
    if a.max_frames is not None and a.max_frames < 3:
        raise UserError(f"--max-frames {a.max_frames}: must be at least 3 (the DAVIS protocol scores frames 1..T-2)")
    candidates = tuple(parse_candidate(c) for c in a.candidate or ["shipped"])
    return CrossvalConfig(init_from=a.init_from, data=tuple(a.data), out=a.out, candidates=candidates,
                          only_folds=folds, max_frames=a.max_frames, workers=a.workers, device=a.device,
                          progress=not a.no_progress)


@cli_main
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for bad input, with a one-line message)."""
    result = run_crossval(parse_args(argv))
    print(format_table(result["table"]), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
