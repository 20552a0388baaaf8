"""The main job, `python -m siampolar_lib.apps.demo --out runs/demo` (what `make demo` runs); nothing is downloaded.

The command line over `siampolar_lib.apps.demo`: arguments, output checks, one call into the library."""
from __future__ import annotations

from siampolar_lib.apps.demo import DEMO_BASELINES, run_demo
from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.errors import UserError
from siampolar_lib.tracking.baselines import BASELINES as BASELINE_NAMES
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.engine import DEFAULT_ENGINE, ENGINES


@cli_main
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for bad input, with a one-line message)."""
    ap = ArgumentParser(prog="siampolar-demo", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/demo", help="output folder (default runs/demo; new or empty)")
    ap.add_argument("--overwrite", action="store_true", help="replace a non-empty --out (as a whole, when done)")
    ap.add_argument("--checkpoint", default=None, help="default: the shipped checkpoints/siampolar_lite0.pt")
    ap.add_argument("--sequences", default=None,
                    help="comma-separated names, or a number N >= 1 for the first N "
                         "(default: all DAVIS-2016 val sequences)")
    ap.add_argument("--max-frames", type=int, default=None, help="keep only the first N >= 3 frames of each sequence")
    ap.add_argument("--baselines", default=",".join(DEMO_BASELINES), help="comma-separated; '' for none")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    ap.add_argument("--engine", default=DEFAULT_ENGINE, choices=ENGINES,
                    help=f"network runtime (default {DEFAULT_ENGINE}; torch is the fallback)")
    ap.add_argument("--no-progress", action="store_true", help="hide the tqdm progress bars")
    ap.add_argument("--tracker-config", default=None, metavar="FILE",
                    help="TrackerConfig as YAML (any subset of configs/tracker.yaml's keys; default: the defaults)")
    args = ap.parse_args(argv)
    cfg = TrackerConfig.from_yaml(args.tracker_config) if args.tracker_config else TrackerConfig()
    seqs: list[str] | int | None = None
    if args.sequences is not None:
        text = args.sequences.strip()
        seqs = int(text) if text.lstrip("-").isdigit() else [s for s in text.split(",") if s]
        if seqs == []:
            raise UserError("--sequences is empty: give names or a number N >= 1")
    baselines = [b for b in args.baselines.split(",") if b]
    unknown = [b for b in baselines if b not in BASELINE_NAMES]
    if unknown:
        raise UserError(f"--baselines: unknown baseline(s) {', '.join(unknown)}; "
                        f"choose from {', '.join(BASELINE_NAMES)}")
    run_demo(args.out, checkpoint=args.checkpoint, sequences=seqs, max_frames=args.max_frames, baselines=baselines,
             device=args.device, progress=not args.no_progress, overwrite=args.overwrite, engine=args.engine,
             tracker_cfg=cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
