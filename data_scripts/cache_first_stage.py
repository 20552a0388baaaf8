"""Record what a first stage really hands the refinement stage on DAVIS train frames: its first-stage cache (issue 30).

    python data_scripts/cache_first_stage.py --checkpoint checkpoints/campaign/phase1_lite0.pt \
        --data ../shared/data/davis_train_sample --data ../shared/data/davis_train_extra --out runs/first_stage.npz

Every sequence of the roots (or --sequences) is tracked as cross-validation scores it (PyTorch engine, the shipped
tracker settings); each later frame's first polygon centre and rays become a row of OUT
(`siampolar_lib.evaluation.first_stage_outputs`, the format: `siampolar_lib.data.first_stage_cache`), frames whose
centre lies off the true mask skipped and counted. Train a stage on it with `siampolar-train-refine
--real-first-cache OUT --real-first-p P` (or a cross-validation candidate's real_first_cache=OUT,real_first_p=P) from a
checkpoint with the same first stage. OUT is checked before any work: an earlier file is replaced only with
--overwrite, and it may not be, contain or lie inside the checkpoint or a root. DAVIS-2016 val sequences are refused.
"""
from __future__ import annotations

import time

from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.data.first_stage_cache import write_first_stage_cache
from siampolar_lib.errors import UserError
from siampolar_lib.evaluation.first_stage_outputs import record_first_stage
from siampolar_lib.outputs import owned_output_file
from siampolar_lib.training.checkpoint import load_checkpoint


@cli_main
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for bad input, with a one-line message)."""
    ap = ArgumentParser(prog="cache_first_stage.py", description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="the SiamPolar checkpoint whose first stage is recorded")
    ap.add_argument("--data", action="append", required=True, help="a DAVIS root of train sequences (repeat)")
    ap.add_argument("--out", required=True, help="the cache file to write (.npz)")
    ap.add_argument("--sequences", default=None, help="comma-separated names (default: every sequence of the roots)")
    ap.add_argument("--max-frames", type=int, default=None, help="track only the first N frames of each sequence")
    ap.add_argument("--overwrite", action="store_true", help="replace an earlier --out")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    if not args.out.endswith(".npz"):
        raise UserError(f"--out {args.out}: a first-stage cache is an .npz file")
    if args.max_frames is not None and args.max_frames < 2:
        raise UserError(f"--max-frames {args.max_frames}: must be at least 2 (frame 0 is the box, never a row)")
    names = [s for s in args.sequences.split(",") if s] if args.sequences else None
    inputs = [("--checkpoint", args.checkpoint)] + [("--data", d) for d in args.data]
    with owned_output_file(args.out, inputs, args.overwrite):
        load_checkpoint(args.checkpoint)  # a bad file fails here, before any tracking
        start = time.time()
        cache = record_first_stage(args.checkpoint, args.data, names, args.max_frames, progress=not args.no_progress)
        write_first_stage_cache(args.out, cache)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(cache.meta["counts"].items()))
    print(f"{args.out}: {len(cache)} rows from {len(cache.meta['per_sequence'])} sequences ({counts}) in "
          f"{time.time() - start:.0f} s; first stage {cache.meta['first_stage_sha256'][:12]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
