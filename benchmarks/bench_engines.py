"""Benchmark: PyTorch against ONNX Runtime, the network step and the whole tracking loop, side by side in one run.

    python -m benchmarks.bench_engines [--checkpoint CKPT] [--frames 40] [--rounds 5] [--threads 2]
        [--sequences blackswan,...] [--max-frames N]

Goals (shipped lite0, 2 CPU cores): the ONNX Runtime loop >= 100 fps and >= 0.85 x the ONNX Runtime step
alone; the engines' masks agree (mean per-frame IoU >= 0.99 on every benchmark sequence) and their J_M on
those sequences differ by <= 0.2 points.

Timings, on the real frames of the first benchmark sequence, interleaved in rounds (best round reported):
  step  `engine.search(x, state)`: the network on a pre-cut 255 crop, uint8 in, per-level numpy arrays out
        (torch: HWC -> CHW float copy, forward, sigmoid/decode; ONNX Runtime: the exported graph does all);
  loop  `Tracker.track(frame)` over decoded frames: crop, step, scores/penalty/window, polygon, the refinement
        stage (a network that has one: a second crop and graph per frame), mask, state;
  decode `read_frame` (JPEG -> RGB) per frame, shown apart: it is not part of the loop (it can run ahead).
Then the benchmark sequences (BENCH_SEQUENCES: every third DAVIS-2016 val sequence by name, starting with the
first; five of the 15) are tracked with each engine: per-frame IoU between the two engines' masks and the DAVIS
J_M of each. The load average is printed: other processes slow every number.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

from siampolar_lib.data.davis import first_box, load_sequence, read_frame, sequence_masks
from siampolar_lib.evaluation.metrics import evaluate_sequence
from siampolar_lib.evaluation.sequence import run_sequence
from siampolar_lib.geometry.crops import context_side, crop_square
from siampolar_lib.geometry.polar import mask_iou
from siampolar_lib.paths import checkpoints_dir, davis_available, davis_root
from siampolar_lib.splits import REAL_VAL_SEQUENCES
from siampolar_lib.tracking.engine import OrtEngine, TorchEngine
from siampolar_lib.tracking.loop import track_sequence
from siampolar_lib.tracking.onnx_cache import cached_export
from siampolar_lib.tracking.tracker import Tracker
from siampolar_lib.training.checkpoint import load_model

TARGET_FPS = 100.0
TARGET_RATIO = 0.85
TARGET_IOU = 0.99
TARGET_DJ = 0.2  # points of J_M (percent)
BENCH_SEQUENCES = REAL_VAL_SEQUENCES[0::3]  # blackswan, camel, dog, goat, paragliding-launch


def loop_runner(tracker: Tracker, frames: list[np.ndarray], box) -> callable:
    """A function tracking frames from box on frames[0] (tracking.loop); it returns the seconds of the track calls."""
    def run():
        times: list[float] = []
        for _ in track_sequence(tracker, frames, box, times):
            pass
        return sum(times[1:])  # times[0] is init
    return run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=str(checkpoints_dir() / "siampolar_lite0.pt"))
    p.add_argument("--davis-root", default=None)
    p.add_argument("--frames", type=int, default=40, help="frames per timing round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime intra-op threads")
    p.add_argument("--sequences", default=",".join(BENCH_SEQUENCES), help="sequences for agreement and J_M")
    p.add_argument("--max-frames", type=int, default=None, help="frames per sequence for agreement and J_M")
    a = p.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress shows when the output goes to a file
    root = davis_root(a.davis_root)
    if not davis_available(root):
        print(f"no DAVIS folder at {root}: set SIAMPOLAR_DAVIS_ROOT or pass --davis-root", file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    load0 = os.getloadavg()[0]
    model = load_model(a.checkpoint, device="cpu")
    t0 = time.perf_counter()
    folder = cached_export(model)
    export_s = time.perf_counter() - t0
    engines = {"torch": TorchEngine(model, "cpu"), "onnxruntime": OrtEngine(folder, threads=a.threads)}

    names = [s for s in a.sequences.split(",") if s]
    seq = load_sequence(root, names[0])
    n = min(a.frames, len(seq))
    t0 = time.perf_counter()
    frames = [read_frame(f) for f in seq.frame_paths[:n]]
    decode_ms = 1000 * (time.perf_counter() - t0) / n
    box = first_box(seq)
    g = model.config
    side = context_side(box[2], box[3], g.context) * g.search_size / g.template_size
    centre = box[:2] + box[2:] / 2
    crops = [crop_square(f, centre, side, g.search_size)[0] for f in frames]
    z = crop_square(frames[0], centre, context_side(box[2], box[3], g.context), g.template_size)[0]
    states = {k: e.template(z) for k, e in engines.items()}

    def step(k):
        def run():
            t = time.perf_counter()
            for x in crops:
                engines[k].search(x, states[k])
            return time.perf_counter() - t
        return run

    trackers = {k: Tracker(e) for k, e in engines.items()}
    fns = [step("torch"), step("onnxruntime"), loop_runner(trackers["torch"], frames, box),
           loop_runner(trackers["onnxruntime"], frames, box)]
    for fn in fns:  # warm-up
        fn()
    per_round = [[fn() for fn in fns] for _ in range(a.rounds)]  # interleaved: load hits all four alike
    best = np.min(np.array(per_round), axis=0)
    fps = {"torch step": n / best[0], "onnxruntime step": n / best[1],
           "torch loop": (n - 1) / best[2], "onnxruntime loop": (n - 1) / best[3]}

    print(f"{a.checkpoint} ({model.config.name}), {a.threads} threads, {seq.name} {n} frames "
          f"{frames[0].shape[1]}x{frames[0].shape[0]}, best of {a.rounds} interleaved rounds; "
          f"export {'(cached) ' if export_s < 5 else ''}{export_s:.1f} s")
    print(f"{'':18}{'torch':>10}{'onnxruntime':>13}{'ratio':>8}")
    for what in ("step", "loop"):
        t, o = fps[f"torch {what}"], fps[f"onnxruntime {what}"]
        print(f"{what + ' fps':18}{t:10.1f}{o:13.1f}{o / t:7.2f}x")
    refine = " and refinement stage" if getattr(model, "refiner", None) is not None else ""
    for k in ("torch", "onnxruntime"):
        print(f"{k + ' loop/step':18}{fps[f'{k} loop'] / fps[f'{k} step']:10.2f}  "
              f"(tracker's own work{refine} {1000 / fps[f'{k} loop'] - 1000 / fps[f'{k} step']:.2f} ms a frame)")
    print(f"decode (read_frame, not in the loop): {decode_ms:.2f} ms a frame")

    ious, jm = [], {"torch": [], "onnxruntime": []}
    for name in names:
        s = load_sequence(root, name)
        paths = list(s.frame_paths[:a.max_frames])
        gt = sequence_masks(s)[: len(paths)]
        preds = {}
        for k, e in engines.items():
            preds[k], _, _ = run_sequence(Tracker(e), paths, gt)
            jm[k].append(evaluate_sequence(preds[k], gt)["J_M"])
        seq_iou = [mask_iou(x, y) for x, y in zip(preds["torch"][1:], preds["onnxruntime"][1:])]
        ious.append(float(np.mean(seq_iou)))
        print(f"  {name:20} {len(paths):4d} frames: mean IoU torch vs onnxruntime {ious[-1]:.4f} "
              f"(min {min(seq_iou):.4f}); J_M torch {100 * jm['torch'][-1]:.1f}, onnxruntime "
              f"{100 * jm['onnxruntime'][-1]:.1f}")
    j_t, j_o = 100 * float(np.mean(jm["torch"])), 100 * float(np.mean(jm["onnxruntime"]))
    print(f"J_M ({len(names)} sequences{'' if a.max_frames is None else f', first {a.max_frames} frames'}): "
          f"torch {j_t:.2f}, onnxruntime {j_o:.2f} (difference {abs(j_t - j_o):.2f} points)")
    ratio = fps["onnxruntime loop"] / fps["onnxruntime step"]
    checks = [(f"onnxruntime loop >= {TARGET_FPS:.0f} fps", fps["onnxruntime loop"] >= TARGET_FPS),
              (f"onnxruntime loop >= {TARGET_RATIO} x its step", ratio >= TARGET_RATIO),
              (f"mean IoU >= {TARGET_IOU} on every sequence", min(ious) >= TARGET_IOU),
              (f"J_M within {TARGET_DJ} points", abs(j_t - j_o) <= TARGET_DJ)]
    print("goals: " + "; ".join(f"{what}: {'met' if ok else 'MISSED'}" for what, ok in checks))
    print(f"load average (1 min) at start {load0:.1f}, at end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
