"""Benchmark: do two runs of the tracker agree? Engines and thread counts, with and without the state grid.

    python -m benchmarks.bench_agreement [--checkpoint CKPT] [--davis-root ROOT] [--sequences a,b,c]
        [--grids 0,0.25] [--max-frames N]

Tracks each sequence (default: the validation fold of the DAVIS-2016 train sample, never a val sequence) with
four runs: PyTorch at 2 and at 1 thread, ONNX Runtime at 2 and at 1 thread, for each `TrackerConfig.state_grid`
in --grids, and prints the mean per-frame mask IoU of every pair of runs per sequence. PyTorch against itself
at another thread count differs only in its summation order: where that pair disagrees as much as the two
engines do, the disagreement is the tracker's sensitivity to rounding, not the export (checkpoints/README.md,
"Why the engines' masks differed"). Goal (issue 19): mean IoU >= 0.97 between the engines.
"""
from __future__ import annotations

import itertools
import os
import sys

import numpy as np
import torch

from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.errors import UserError
from siampolar_lib.evaluation.selection import check_train_sequences
from siampolar_lib.evaluation.sequence import load_eval_sequence, run_sequence
from siampolar_lib.geometry.polar import mask_iou
from siampolar_lib.paths import checkpoints_dir, davis_train_sample_root
from siampolar_lib.splits import VALIDATION_FOLD_SEQUENCES
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.engine import OrtEngine, TorchEngine
from siampolar_lib.tracking.onnx_cache import cached_export
from siampolar_lib.tracking.tracker import Tracker
from siampolar_lib.training.checkpoint import load_model

RUNS = (("torch", 2), ("torch", 1), ("onnxruntime", 2), ("onnxruntime", 1))
TARGET_IOU = 0.97


def track_runs(model, folder, sequences: dict, grid: float) -> dict:
    """{(engine, threads): {sequence: masks (T, H, W) bool}} for one state grid; sequences: {name: (paths, gt)}."""
    out = {}
    for kind, threads in RUNS:
        torch.set_num_threads(threads)
        engine = TorchEngine(model, "cpu") if kind == "torch" else OrtEngine(folder, threads=threads)
        out[kind, threads] = {name: run_sequence(Tracker(engine, TrackerConfig(state_grid=grid)), paths, gt)[0]
                              for name, (paths, gt) in sequences.items()}
    torch.set_num_threads(2)
    return out


def pair_ious(masks: dict, names) -> dict:
    """{(run a, run b): [mean per-frame IoU of their masks, per sequence]} (frame 0, the given mask, left out)."""
    return {(a, b): [float(np.mean([mask_iou(x, y) for x, y in zip(masks[a][n][1:], masks[b][n][1:])]))
                     for n in names] for a, b in itertools.combinations(RUNS, 2)}


@cli_main
def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    p = ArgumentParser(prog="benchmarks.bench_agreement", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=str(checkpoints_dir() / "siampolar_lite0.pt"))
    p.add_argument("--davis-root", default=None, help="default: the DAVIS-2016 train sample")
    p.add_argument("--sequences", default=",".join(VALIDATION_FOLD_SEQUENCES), help="comma-separated train sequences")
    p.add_argument("--grids", default="0,0.25", help="comma-separated TrackerConfig.state_grid values (frame px)")
    p.add_argument("--max-frames", type=int, default=None, help="frames per sequence")
    a = p.parse_args(argv)
    names = [n for n in a.sequences.split(",") if n]
    check_train_sequences(names)
    try:
        grids = [float(g) for g in a.grids.split(",") if g]
    except ValueError as err:
        raise UserError(f"--grids {a.grids!r}: give comma-separated numbers of frame pixels") from err
    sys.stdout.reconfigure(line_buffering=True)
    root = a.davis_root or davis_train_sample_root()
    load0 = os.getloadavg()[0]
    model = load_model(a.checkpoint, device="cpu")
    folder = cached_export(model)
    sequences = {name: load_eval_sequence(root, name, a.max_frames) for name in names}
    for grid in grids:
        ious = pair_ious(track_runs(model, folder, sequences, grid), names)
        print(f"state_grid {grid:g} px: mean per-frame mask IoU per sequence ({', '.join(names)})")
        for (ra, rb), per in ious.items():
            print(f"  {ra[0] + '@' + str(ra[1]):14} vs {rb[0] + '@' + str(rb[1]):14} "
                  + " ".join(f"{v:.4f}" for v in per) + f"   mean {np.mean(per):.4f}")
        engines = [v for (ra, rb), per in ious.items() if ra[0] != rb[0] for v in per]
        met = "met" if min(engines) >= TARGET_IOU else "MISSED"
        print(f"  engines: lowest {min(engines):.4f} (goal >= {TARGET_IOU}: {met})")
    print(f"load average (1 min) at start {load0:.1f}, at end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
