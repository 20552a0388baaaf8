"""Where the tracker's error comes from: what the network's rays can reach against what tracking loses.

The command line over `siampolar_lib.evaluation.error_split`: arguments, output checks, one call into the library."""
from __future__ import annotations

import json

import numpy as np

from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.data.davis import check_sequence_names
from siampolar_lib.evaluation.error_split import error_split, format_split
from siampolar_lib.io import write_text
from siampolar_lib.splits import VALIDATION_FOLD_SEQUENCES
from siampolar_lib.training.checkpoint import load_model


@cli_main
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for bad input, with a one-line message)."""
    ap = ArgumentParser(prog="siampolar-error-split", description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="a SiamPolar checkpoint (.pt)")
    ap.add_argument("--davis-root", default=None, help="default: the DAVIS-2016 train sample")
    ap.add_argument("--sequences", default=",".join(VALIDATION_FOLD_SEQUENCES), help="comma-separated train sequences")
    ap.add_argument("--max-frames", type=int, default=None, help="keep only the first N frames of each sequence")
    ap.add_argument("--json", default=None, help="also write the numbers (without per-frame choices) to this file")
    args = ap.parse_args(argv)
    names = check_sequence_names([s for s in args.sequences.split(",") if s], "--sequences")
    result = error_split(load_model(args.checkpoint, device="cpu"), args.davis_root, names, max_frames=args.max_frames)
    print(format_split(result))
    if args.json:
        slim = {"modes": result["modes"], "checkpoint": str(args.checkpoint),
                "sequences": {n: {m: {k: v for k, v in r.items() if k not in ("choices", "J", "F")}
                                  for m, r in rows.items()}
                              for n, rows in result["sequences"].items()},
                "score_quartiles": np.nanpercentile(result["scores"], [25, 50, 75]).tolist(),
                "share_quartiles": np.nanpercentile(result["shares"], [25, 50, 75]).tolist()}
        write_text(args.json, json.dumps(slim, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
