"""The main job, `python -m siampolar_lib.demo --out runs/demo` (what `make demo` runs); nothing is downloaded.

It tracks the held-out fold of the real DAVIS sample with the shipped checkpoint when a DAVIS folder is
found (`paths.davis_root()`), else a synthetic DAVIS set it generates under OUT; scores the model and the
baselines (static, oracle_box, polar_bound, csrt) with `evaluate.evaluate_tracker`, prints the J&F tables,
and writes under OUT: `results.json` (the model), `<method>/...` (masks and per-method results),
`summary.txt` (the J&F table of every method) and `<sequence>.gif` (one sequence with its overlays).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import cv2
import torch

from .checkpoint import CheckpointError, load_model
from .data.davis import DavisError, first_box, list_sequences, load_sequence, read_frame
from .data.synthetic import make_synthetic_davis
from .device import describe_device, pick_device, seed_everything
from .evaluate import MODEL_METHODS, evaluate_tracker
from .io import write_text
from .paths import SHIPPED_CHECKPOINT, davis_available, davis_root, default_checkpoint  # noqa: F401
from .results import format_table
from .splits import HELDOUT_SEQUENCES
from .tracker import Tracker
from .video import write_gif
from .video_tracking import render_results, track_frames

DEMO_BASELINES = ("static", "oracle_box", "polar_bound", "csrt")


def demo_data(out: str | os.PathLike, sequences: int = 4, frames: int = 24) -> tuple[Path, list[str], bool]:
    """Where the demo's videos come from: (DAVIS root, sequence names, real?).

    Real: the held-out fold (splits.HELDOUT_SEQUENCES) of the DAVIS folder. Otherwise a synthetic DAVIS
    set (seed 0) is generated once under out/synthetic_davis and its val split is used.
    """
    if davis_available():
        root = davis_root()
        present = set(list_sequences(root, "val"))
        names = [s for s in HELDOUT_SEQUENCES if s in present]
        if names:
            return root, names, True
    root = Path(out) / "synthetic_davis"
    if not (root / "JPEGImages").is_dir():
        make_synthetic_davis(root, sequences=sequences, frames=frames, seed=0)
    return root, list_sequences(root, "val"), False


def sequence_gif(path: str | os.PathLike, model, root: str | os.PathLike, name: str,
                 max_frames: int | None = None, scale: float = 0.5, fps: float = 12.0, device=None) -> Path:
    """Track one DAVIS sequence from its first box and write the overlays (mask, contour, rays, score) as a GIF.

    scale shrinks the GIF's frames (0.5: 427 x 240 for DAVIS 480p) to keep the file small.
    """
    seq = load_sequence(root, name)
    frames = [read_frame(p) for p in seq.frame_paths[:max_frames]]
    results = track_frames(Tracker(model, device=device), frames, first_box(seq), progress=False)
    images = render_results(frames, results)
    if scale != 1.0:
        images = [cv2.resize(im, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for im in images]
    return write_gif(path, images, fps=fps)


def run_demo(out: str | os.PathLike = "runs/demo", checkpoint: str | os.PathLike | None = None,
             sequences: list[str] | int | None = None, max_frames: int | None = None,
             baselines=DEMO_BASELINES, device: str = "auto", progress: bool = True) -> dict:
    """Evaluate the shipped model and the baselines on the demo data; write results and a GIF under `out`.

    sequences: names, or an int N for the first N of the default list (held-out fold or synthetic val).
    Returns {"data": "real"|"synthetic", "sequences": [...], "methods": evaluate_tracker's dict, "gif": path}.
    """
    out = Path(out)
    seed_everything(0)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    ckpt = Path(checkpoint) if checkpoint is not None else default_checkpoint()
    dev = pick_device(device)
    model = load_model(ckpt, device=dev)  # a bad checkpoint fails here, before any work
    root, names, real = demo_data(out)
    if isinstance(sequences, int):
        names = names[:sequences]
    elif sequences:
        names = list(sequences)
    print(f"SiamPolar demo: checkpoint {ckpt.name}, {'real DAVIS held-out fold' if real else 'synthetic DAVIS'} "
          f"({len(names)} sequence{'s' * (len(names) != 1)}: {', '.join(names)}), device {describe_device(dev)}")
    methods = evaluate_tracker(model, root, out, sequences=names, baselines=list(baselines), device=dev,
                               max_frames=max_frames, progress=progress, verbose=False)
    table = format_table({m: r["summary"] for m, r in methods.items()},
                         columns=("JF_M", "J_M", "J_O", "J_D", "F_M", "F_O", "F_D", "fps"))
    print("\nJ&F on", "the held-out fold" if real else "synthetic val", "(percent; fps = frames/s):")
    print(table)
    write_text(out / "summary.txt", table + "\n")
    gif = sequence_gif(out / f"{names[0]}.gif", model, root, names[0], max_frames=max_frames, device=dev)
    model_method = MODEL_METHODS["search"]
    jf = methods[model_method]["summary"]["JF_M"]
    print(f"\n{model_method} J&F mean {100 * jf:.1f}; wrote {out}/results.json, {out}/summary.txt, {gif}")
    return {"data": "real" if real else "synthetic", "sequences": names, "methods": methods, "gif": gif}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for bad input, with a one-line message)."""
    ap = argparse.ArgumentParser(prog="python -m siampolar_lib.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    ap.add_argument("--checkpoint", default=None, help="default: the shipped checkpoints/siampolar_lite0.pt")
    ap.add_argument("--sequences", default=None,
                    help="comma-separated names, or a number N for the first N (default: the held-out fold)")
    ap.add_argument("--max-frames", type=int, default=None, help="keep only the first N frames of each sequence")
    ap.add_argument("--baselines", default=",".join(DEMO_BASELINES), help="comma-separated; '' for none")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    ap.add_argument("--no-progress", action="store_true", help="hide the tqdm progress bars")
    args = ap.parse_args(argv)
    seqs: list[str] | int | None = None
    if args.sequences:
        seqs = int(args.sequences) if args.sequences.isdigit() else [s for s in args.sequences.split(",") if s]
    try:
        run_demo(args.out, args.checkpoint, seqs, args.max_frames, [b for b in args.baselines.split(",") if b],
                 args.device, progress=not args.no_progress)
    except (CheckpointError, DavisError, FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
