"""Write a synthetic DAVIS-layout folder (textured moving objects, occlusions, objects leaving the frame).

    python data_scripts/make_synthetic_davis.py --out data/synthetic_davis --sequences 8 --frames 24 --seed 0
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.data.synthetic import make_synthetic_davis
from siampolar_lib.errors import UserError
from siampolar_lib.outputs import check_output_folder


def parse_size(text: str) -> tuple[int, int]:
    """'427x240' -> (427, 240): width x height, pixels."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 854x480 (width x height), got {text!r}") from None
    if not (32 <= w <= 8192 and 32 <= h <= 8192):  # 100000x100000 would need 30 GB a frame
        raise argparse.ArgumentTypeError(f"size {text!r}: width and height must be between 32 and 8192 pixels")
    return w, h


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="make_synthetic_davis.py", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path, help="folder to create (must not exist or be empty)")
    p.add_argument("--sequences", type=int, default=8, help="number of sequences (default 8)")
    p.add_argument("--frames", type=int, default=24, help="frames per sequence (default 24)")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same bytes")
    p.add_argument("--size", type=parse_size, default=(854, 480), help="WIDTHxHEIGHT (default 854x480)")
    a = p.parse_args(argv)
    check_output_folder(a.out)
    if a.seed < 0:
        raise UserError(f"--seed {a.seed}: a seed is a whole number >= 0")
    if a.sequences < 1 or a.frames < 3:
        raise UserError(f"--sequences {a.sequences} --frames {a.frames}: need at least 1 sequence of 3 frames "
                        "(the DAVIS protocol scores neither the first nor the last frame)")
    out = make_synthetic_davis(a.out, a.sequences, a.frames, a.seed, a.size)
    print(f"wrote {a.sequences} sequences x {a.frames} frames ({a.size[0]}x{a.size[1]}) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
