"""Train a SiamPolar network on template-search pairs: `siampolar-train` (`python -m siampolar_lib.commands.train`).

The command line over `siampolar_lib.training.train`: arguments, output checks, one call into the library."""
from __future__ import annotations

import torch

from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.commands.train_flags import add_flags, config_from_args
from siampolar_lib.training.config import TrainConfig
from siampolar_lib.training.distributed import dist_info
from siampolar_lib.training.train import train


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """Command line -> TrainConfig: flags generated from the config dataclasses (`commands.train_flags`)."""
    p = ArgumentParser(prog="siampolar-train", description=__doc__.splitlines()[0],
                       allow_abbrev=False)
    add_flags(p)
    a = p.parse_args(argv)
    try:
        cfg = config_from_args(a)
    except (ValueError, TypeError, FileNotFoundError) as err:
        p.error(str(err))
    given = vars(a)
    for name, flag in (("data", "--data"), ("out", "--out"), ("iters", "--iters")):
        if name not in given and not (a.preset and getattr(cfg, name) != getattr(TrainConfig(), name)):
            p.error(f"the following arguments are required: {flag}")
    for name in ("iters", "batch"):
        if getattr(cfg, name) < 1:
            p.error(f"--{name} must be >= 1")
    return cfg

@cli_main
def main(argv: list[str] | None = None) -> int:
    """CLI entry point; bad input is one line on stderr and exit status 2."""
    cfg = parse_args(argv)
    result = train(cfg)
    if dist_info()[0] == 0:
        print(f"done: {result['steps']} steps on {result['device']}, last loss {result['final_loss']:.4f}, "
              f"checkpoint {result['checkpoint']}")
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
