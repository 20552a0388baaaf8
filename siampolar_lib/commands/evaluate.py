"""Track DAVIS sequences and score them: `siampolar-evaluate --checkpoint CKPT --out DIR`

The command line over `siampolar_lib.evaluation.evaluate`: arguments, output checks, one call into the library."""
from __future__ import annotations

from dataclasses import replace

from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.device import pick_device
from siampolar_lib.errors import UserError
from siampolar_lib.evaluation.attributes import DB_INFO, format_attribute_table
from siampolar_lib.evaluation.evaluate import MODEL_METHODS, check_eval_output, evaluate_tracker, load_tracker_model
from siampolar_lib.evaluation.metrics import check_min_frames
from siampolar_lib.paths import davis_root as resolve_root
from siampolar_lib.tracking.baselines import BASELINES as BASELINE_NAMES
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.engine import DEFAULT_ENGINE, ENGINES, make_engine


@cli_main
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for bad input, with a one-line message)."""
    ap = ArgumentParser(prog="siampolar-evaluate", description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", help="a SiamPolar checkpoint (.pt)")
    src.add_argument("--model", help="an untrained build_model(NAME) instead of a checkpoint (smoke runs only)")
    ap.add_argument("--davis-root", default=None, help="DAVIS folder (default: $SIAMPOLAR_DAVIS_ROOT or data/DAVIS)")
    ap.add_argument("--split", default="val", help="ImageSets split to evaluate (default val)")
    ap.add_argument("--sequences", default=None, help="comma-separated sequence names (default: the whole split)")
    ap.add_argument("--out", required=True, help="output folder for PNGs and results.json (new or empty)")
    ap.add_argument("--overwrite", action="store_true", help="replace a non-empty --out (as a whole, when done)")
    ap.add_argument("--baselines", default="", help=f"comma-separated, from {','.join(BASELINE_NAMES)}")
    ap.add_argument("--mode", default=None, choices=sorted(MODEL_METHODS),
                    help="tracker mode (default: the --tracker-config file's, else search; given, it wins)")
    ap.add_argument("--tracker-config", default=None, metavar="FILE",
                    help="TrackerConfig as YAML (any subset of configs/tracker.yaml's keys; default: the defaults)")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    ap.add_argument("--engine", default=DEFAULT_ENGINE, choices=ENGINES,
                    help=f"network runtime for the model (default {DEFAULT_ENGINE}; torch is the fallback)")
    ap.add_argument("--max-frames", type=int, default=None, help="keep only the first N >= 3 frames of each sequence")
    ap.add_argument("--no-progress", action="store_true", help="hide the tqdm progress bars")
    args = ap.parse_args(argv)
    baselines = [b for b in args.baselines.split(",") if b]
    seqs = [s.strip() for s in args.sequences.split(",") if s.strip()] if args.sequences is not None else None
    if seqs == []:
        raise UserError(f"--sequences {args.sequences!r} names no sequence: give names, or leave it out for the split")
    # Every argument is checked before the model is loaded or a frame is read.
    cfg = TrackerConfig.from_yaml(args.tracker_config) if args.tracker_config else TrackerConfig()
    cfg = replace(cfg, mode=args.mode) if args.mode else cfg
    check_min_frames(args.max_frames)
    unknown = [b for b in baselines if b not in BASELINE_NAMES]
    if unknown:
        raise UserError(f"--baselines: unknown baseline(s) {', '.join(unknown)}; "
                        f"choose from {', '.join(BASELINE_NAMES)}")
    if not (args.checkpoint or args.model or baselines):
        raise UserError("nothing to evaluate: give --checkpoint (or --model) and/or --baselines")
    check_eval_output(args.out, args.overwrite, {"--davis-root": resolve_root(args.davis_root),
                                                 "--checkpoint": args.checkpoint})
    dev = pick_device(args.device)
    engine = None
    if args.checkpoint or args.model:  # the runtime is chosen here, once (exported once per weights, cached)
        engine = make_engine(load_tracker_model(args.checkpoint, args.model, dev), args.engine, dev)
    results = evaluate_tracker(engine, args.davis_root, args.out, split=args.split, sequences=seqs, baselines=baselines,
                     mode=cfg.mode, cfg=cfg, device=dev, max_frames=args.max_frames, progress=not args.no_progress,
                     overwrite=args.overwrite, checkpoint=args.checkpoint)
    for method, result in results.items():
        if result["attributes"]:
            print(f"\n== {method} per DAVIS attribute (means over the sequences that have it; "
                  f"{resolve_root(args.davis_root) / DB_INFO}) ==")
            print(format_attribute_table(result["attributes"]))
    print(f"\nwrote {args.out}/<method>/<sequence>/*.png, results.json and global_results-{args.split}.csv")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
