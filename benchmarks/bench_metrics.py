"""Time our DAVIS evaluator against vos-benchmark on the same folders, side by side, and check they agree.

    python -m benchmarks.bench_metrics [--pred ../shared/data/davis_osvos_results/480p]
        [--gt ../shared/data/DAVIS] [--processes 2] [--repeats 3]

The predictions are first binarised into a temporary folder as 0/255 PNGs (vos-benchmark matches objects
by pixel value and writes results.csv into the prediction folder, so it never sees the real one). Both
tools then score that same copy with the same number of processes, interleaved; the best of `--repeats` runs each is
reported, with the speed ratio and the largest per-sequence J and F difference.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.timing import interleaved_best
from siampolar_lib.evaluation.folders import annotations_dir, binarise_folder, evaluate_folder
from siampolar_lib.paths import SHARED_DATA, davis_root


def run_vos_benchmark(gt_root: Path, pred_root: Path, processes: int) -> dict[str, tuple[float, float]]:
    """vos-benchmark's per-sequence (J, F) as fractions; it also writes results.csv into pred_root."""
    from vos_benchmark.benchmark import benchmark

    _, _, _, per_object = benchmark([str(gt_root)], [str(pred_root)], num_processes=processes, verbose=False)
    out = {}
    for seq, (iou, bf) in per_object[0].items():
        if list(iou) != [255]:
            raise ValueError(f"{seq}: expected one object with value 255, vos-benchmark found {list(iou)}")
        out[seq] = (iou[255] / 100, bf[255] / 100)
    return out


def best_times(fns: list, repeats: int) -> tuple[list[float], list]:
    """Min wall-clock seconds of each function over `repeats` rounds, run interleaved so that load
    from other processes hits both alike; also the last result of each."""
    return interleaved_best(fns, repeats)


def main(argv=None) -> int:
    """Benchmark both evaluators and print timings, the ratio and the agreement."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--gt", default=str(davis_root()), help="DAVIS root or Annotations/480p")
    ap.add_argument("--pred", default=str(SHARED_DATA / "davis_osvos_results" / "480p"))
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    gt_root = annotations_dir(args.gt)
    with tempfile.TemporaryDirectory(prefix="bench_metrics_") as tmp:
        pred = binarise_folder(args.pred, Path(tmp) / "pred")
        n_frames = sum(len(list(p.glob("*.png"))) for p in pred.iterdir() if p.is_dir())
        print(f"{n_frames} frames, {len(list(pred.iterdir()))} sequences, {args.processes} processes, "
              f"best of {args.repeats}")
        (t_vos, t_ours), (vos, ours) = best_times(
            [lambda: run_vos_benchmark(gt_root, pred, args.processes),
             lambda: evaluate_folder(gt_root, pred, processes=args.processes)], args.repeats)

    dj = max(abs(ours["sequences"][s]["J_M"] - vos[s][0]) for s in vos)
    df = max(abs(ours["sequences"][s]["F_M"] - vos[s][1]) for s in vos)
    print(f"vos-benchmark : {t_vos:6.2f} s  ({n_frames / t_vos:6.1f} frames/s, scores frames [1:-1])")
    print(f"siampolar_lib : {t_ours:6.2f} s  ({n_frames / t_ours:6.1f} frames/s, scores all frames)")
    print(f"speed ratio (vos-benchmark time / ours): {t_vos / t_ours:.2f}x")
    print(f"max |dJ| = {dj:.2e}, max |dF| = {df:.2e} over {len(vos)} sequences")
    print(f"mean J {np.mean([v[0] for v in vos.values()]):.5f} (vos) vs {ours['J_M']:.5f} (ours)")
    return 0 if max(dj, df) < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
