"""Train the refinement stage of a trained SiamPolar network: `python -m siampolar_lib.commands.train_refine`.

The command line over `siampolar_lib.training.train_refine`: arguments -> `RefineConfig` -> one `train_refine` call."""
from __future__ import annotations

import dataclasses

from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.training.train_refine import PRECISIONS, RefineConfig, train_refine

DEFAULTS = {f.name: f.default for f in dataclasses.fields(RefineConfig)}


def parse_args(argv: list[str] | None = None) -> RefineConfig:
    """The command's arguments as a RefineConfig (whose checks refuse a bad value in one line)."""
    p = ArgumentParser(prog="siampolar-train-refine", description=__doc__.splitlines()[0])
    p.add_argument("--init-from", required=True, help="a SiamPolar checkpoint (with or without a refinement stage)")
    p.add_argument("--data", action="append", required=True, help="a DAVIS root or davis2coco JSON (repeat)")
    p.add_argument("--exclude-sequences", default=",".join(DEFAULTS["exclude_sequences"]),
                   help="sequences kept out of training (default: the validation fold, scored at each checkpoint)")
    p.add_argument("--out", required=True, help="run folder (new or empty; with --resume, the run to continue)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt (same settings)")
    for flag, kind, what in (("--iters", int, "TOTAL steps (a resume continues up to it)"),
                             ("--batch", int, "samples per step"), ("--lr", float, "AdamW peak learning rate"),
                             ("--warmup", int, "linear warm-up steps"),
                             ("--refine-iters", int, "iterations of the stage (1-4)"),
                             ("--refine-channels", int, "feature width of a new stage (multiple of 16)"),
                             ("--refine-size", int, "crop side of a new stage (multiple of 32)"),
                             ("--ckpt-every", int, "last.pt, step{N}.pt and the fold's score every K steps"),
                             ("--log-every", int, "a log row every K steps"),
                             ("--stop-at", int, "stop after this step, the schedule unchanged (--resume continues)"),
                             ("--seed", int, "samples of step s are a function of (seed, s)"),
                             ("--workers", int, "DataLoader worker processes"),
                             ("--real-first-p", float, "share of samples with the first stage's real centre and rays, "
                                                       "from --real-first-cache")):
        name = flag[2:].replace("-", "_")
        p.add_argument(flag, type=kind, default=DEFAULTS[name], help=f"{what} (default {DEFAULTS[name]})")
    p.add_argument("--real-first-cache", default=DEFAULTS["real_first_cache"],
                   help="a first-stage cache of --init-from's first stage (data_scripts/cache_first_stage.py)")
    p.add_argument("--precision", choices=PRECISIONS, default=DEFAULTS["precision"],
                   help="auto: bf16 autocast where the hardware computes it natively, else fp32 (default auto)")
    p.add_argument("--device", default=DEFAULTS["device"], help="auto, cpu, cuda or mps")
    p.add_argument("--no-progress", action="store_true", help="do not print the log rows")
    args = vars(p.parse_args(argv))
    args["exclude_sequences"] = tuple(s for s in args["exclude_sequences"].split(",") if s)
    args["data"] = tuple(args["data"])
    args["progress"] = not args.pop("no_progress")
    return RefineConfig(**args)


@cli_main
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for bad input, with a one-line message)."""
    print(f"refinement stage trained: {train_refine(parse_args(argv))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
