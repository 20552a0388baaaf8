"""Train the object-scale refinement stage on a trained SiamPolar network: `python -m siampolar_lib.training.train_refine`.

The command line over `siampolar_lib.training.train_refine`: arguments, output checks, one call into the library."""
from __future__ import annotations

from siampolar_lib.cli import ArgumentParser, cli_main
from siampolar_lib.errors import UserError
from siampolar_lib.outputs import check_output_folder, output_lock
from siampolar_lib.splits import VALIDATION_FOLD_SEQUENCES
from siampolar_lib.training.train_refine import prepare, train_refine


def parse_args(argv=None):
    p = ArgumentParser(description="Train the refinement stage of a trained SiamPolar network (first stage frozen).")
    p.add_argument("--init-from", required=True, help="a SiamPolar checkpoint (with or without a refinement stage)")
    p.add_argument("--data", action="append", required=True, help="a DAVIS root or davis2coco JSON (repeat)")
    p.add_argument("--exclude-sequences", default=",".join(VALIDATION_FOLD_SEQUENCES),
                   help="sequences kept out of training (default: the validation fold, scored at each checkpoint)")
    p.add_argument("--out", required=True, help="run folder (must not hold an earlier run)")
    p.add_argument("--iters", type=int, default=3000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--refine-iters", type=int, default=2, help="iterations of the stage (1-4)")
    p.add_argument("--refine-channels", type=int, default=64, help="feature width of a new stage (multiple of 16)")
    p.add_argument("--refine-size", type=int, default=128, help="crop side of a new stage (multiple of 32)")
    p.add_argument("--ckpt-every", type=int, default=500)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    for flag, v, lo in (("--iters", args.iters, 1), ("--batch", args.batch, 1), ("--ckpt-every", args.ckpt_every, 1),
                        ("--log-every", args.log_every, 1), ("--warmup", args.warmup, 0), ("--workers", args.workers, 0)):
        if v < lo:
            p.error(f"{flag} must be >= {lo}, got {v}")
    if not 1 <= args.refine_iters <= 4 or not args.lr > 0:
        p.error(f"--refine-iters must be 1-4 and --lr > 0, got {args.refine_iters}, {args.lr}")
    return args

@cli_main
def main(argv=None) -> int:
    args = parse_args(argv)
    out = check_output_folder(args.out)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out}: --out already holds files (an earlier run?); choose a new folder")
    prepared = prepare(args)  # a bad checkpoint or data is refused before --out is made
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        print(f"refinement stage trained: {train_refine(args, *prepared)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
