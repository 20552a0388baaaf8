"""Export a SiamPolar network to ONNX: `siampolar-export-onnx --checkpoint CKPT --out DIR`

The command line over `siampolar_lib.tracking.onnx_export`: arguments, output checks, the check frames (the first
DAVIS val sequence when a DAVIS folder is found, else the library's synthetic frame), one call into the library."""
from __future__ import annotations

import os
from pathlib import Path

from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.data.davis import first_box, list_sequences, load_sequence, read_frame
from siampolar_lib.errors import UserError
from siampolar_lib.outputs import check_output_apart, check_output_folder
from siampolar_lib.paths import check_davis_env, davis_available, davis_root
from siampolar_lib.tracking.onnx_export import META_NAME, CheckFrames, check_export_output, export_onnx
from siampolar_lib.tracking.onnx_graphs import SEARCH_NAME, TEMPLATE_NAME
from siampolar_lib.training.checkpoint import load_model


def check_davis(explicit: str | None) -> tuple[str, Path] | None:
    """(flag, root) of the DAVIS folder the check frames come from, or None for the synthetic frame.

    A --davis-root that is given must be a DAVIS folder (UserError naming it); the default ($SIAMPOLAR_DAVIS_ROOT,
    else data/DAVIS) is used when it is one, else the check falls back to the synthetic frame.
    """
    if explicit is None:
        check_davis_env()
    root = davis_root(explicit)
    if explicit is not None and not davis_available(root):
        raise UserError(f"--davis-root {root}: not a DAVIS folder (no JPEGImages/480p and Annotations/480p in it)")
    if not davis_available(root):
        return None
    flag = "--davis-root" if explicit is not None else \
        "$SIAMPOLAR_DAVIS_ROOT" if os.environ.get("SIAMPOLAR_DAVIS_ROOT") else "DAVIS folder"
    return flag, root


def davis_check_frames(root: Path) -> CheckFrames:
    """Frames 0 and 1 of the first DAVIS val sequence and the box of its first mask: what the export is checked on."""
    names = list_sequences(root, "val")
    if not names:
        raise UserError(f"{root}: the DAVIS folder lists no val sequence for the check frames")
    seq = load_sequence(root, names[0])
    frames = tuple(read_frame(p) for p in seq.frame_paths[:2])
    if len(frames) < 2:
        raise UserError(f"{seq.frame_paths[0].parent}: the check needs two frames, the sequence has one")
    return CheckFrames(frames, first_box(seq), f"DAVIS {names[0]} frames 0-1")


@cli_main
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for bad input, with a one-line message)."""
    ap = ArgumentParser(prog="siampolar-export-onnx", description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="a SiamPolar checkpoint (.pt)")
    ap.add_argument("--out", required=True, help="folder for template.onnx, search.onnx and siampolar_onnx.json")
    ap.add_argument("--davis-root", default=None,
                    help="DAVIS folder for the check frames (default: $SIAMPOLAR_DAVIS_ROOT, else data/DAVIS when "
                         "present, else a synthetic frame)")
    ap.add_argument("--overwrite", action="store_true", help="replace a non-empty --out (as a whole, when done)")
    args = ap.parse_args(argv)
    davis = check_davis(args.davis_root)
    # --out is replaced whole: it may not be, contain or lie inside what the run reads
    check_output_apart(args.out, {"--checkpoint": args.checkpoint, **dict([davis] if davis else [])})
    out = check_export_output(check_output_folder(args.out), args.overwrite)
    model = load_model(args.checkpoint, device="cpu")
    frames = davis_check_frames(davis[1]) if davis else None
    meta = export_onnx(model, out, frames, overwrite=args.overwrite)
    worst = max(meta["max_abs_diff"].values())
    print(f"wrote {out / TEMPLATE_NAME}, {out / SEARCH_NAME} and {out / META_NAME} ({meta['config']['name']}); "
          f"ONNX Runtime matches PyTorch on {meta['checked_on']} (max abs difference {worst:.2g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
