"""Export a SiamPolar network to ONNX: `siampolar-export-onnx --checkpoint CKPT --out DIR`

The command line over `siampolar_lib.tracking.onnx_export`: arguments, output checks, one call into the library."""
from __future__ import annotations

from pathlib import Path

from siampolar_lib.cli import ArgumentParser, cli_main
from siampolar_lib.errors import ExportError
from siampolar_lib.tracking.onnx_export import META_NAME, check_export_output, export_onnx
from siampolar_lib.tracking.onnx_graphs import REFINE_NAME, SEARCH_NAME, TEMPLATE_NAME
from siampolar_lib.training.checkpoint import load_model


@cli_main
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for bad input, with a one-line message)."""
    ap = ArgumentParser(prog="siampolar-export-onnx", description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="a SiamPolar checkpoint (.pt)")
    ap.add_argument("--out", required=True, help="folder for template.onnx, search.onnx and siampolar_onnx.json")
    ap.add_argument("--davis-root", default=None,
                    help="DAVIS folder for the check frame (default: $SIAMPOLAR_DAVIS_ROOT)")
    ap.add_argument("--overwrite", action="store_true", help="replace a non-empty --out (as a whole, when done)")
    args = ap.parse_args(argv)
    out = check_export_output(args.out, args.overwrite)
    names = (TEMPLATE_NAME, SEARCH_NAME, REFINE_NAME, META_NAME)
    if Path(args.checkpoint).resolve() in [(out / n).resolve() for n in names]:
        raise ExportError(f"--out {out} would overwrite the checkpoint {args.checkpoint}")
    model = load_model(args.checkpoint, device="cpu")
    meta = export_onnx(model, out, davis_root=args.davis_root, overwrite=args.overwrite)
    worst = max(meta["max_abs_diff"].values())
    print(f"wrote {out / TEMPLATE_NAME}, {out / SEARCH_NAME} and {out / META_NAME} ({meta['config']['name']}); "
          f"ONNX Runtime matches PyTorch on {meta['checked_on']} (max abs difference {worst:.2g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
