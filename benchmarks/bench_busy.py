"""Benchmark: tracking fps with the machine idle and with one core busy, per ONNX Runtime setting, in one run.

    python -m benchmarks.bench_busy [--checkpoint CKPT] [--frames 40] [--rounds 3]

Issue 29 section 3: on a 2-core machine a learner's other work (a browser, a notebook) takes a core. How the engine
shares the machine then is decided by ONNX Runtime's intra-op thread count and by whether its threads spin after a
run (they keep a core hot to start the next run sooner, which a busy core turns into waiting). For each setting and
for PyTorch the whole tracking loop (`Tracker.track` over decoded frames: crop, network, decode, refinement stage,
mask, state) is timed in interleaved rounds, first idle, then beside a busy-loop process this benchmark starts on
one core itself. Reported: median fps of the rounds, and busy / idle per setting. Goal: a setting whose loop keeps
>= 0.6x its idle fps with one core busy and loses nothing idle against ONNX Runtime's defaults (the same run).
OrtEngine() runs the second setting (threads that do not spin): 30.3 fps idle against 28.2 spinning, and 0.71x
against 0.49x of that beside a busy core (`--rounds 5 --frames 40`, blackswan, load 0.8 before).
The load average before each phase is printed: run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys

import numpy as np
import torch

from benchmarks.bench_engines import loop_runner
from siampolar_lib.data.davis import first_box, load_sequence, read_frame
from siampolar_lib.paths import checkpoints_dir, davis_available, davis_root
from siampolar_lib.splits import REAL_VAL_SEQUENCES
from siampolar_lib.tracking.engine import OrtEngine, TorchEngine
from siampolar_lib.tracking.onnx_cache import cached_export
from siampolar_lib.tracking.tracker import Tracker
from siampolar_lib.training.checkpoint import load_model

TARGET_BUSY_RATIO = 0.6
# (label, intra-op threads (None: ONNX Runtime's default, one per core), spinning after a run)
# The first is ONNX Runtime's own default, the reference of the last column; OrtEngine's default is the second.
SETTINGS = (("ort's default (2 thr, spin)", None, True), ("ort 2 thr, no spin (ours)", None, False),
            ("ort 1 thr, no spin", 1, False), ("ort 1 thr, spin", 1, True))


def busy_loop() -> None:
    """Keep one core busy until killed (a learner's other work)."""
    while True:
        pass


def measure(runners: dict, rounds: int, n: int) -> dict[str, float]:
    """Median fps over interleaved rounds of each runner (one warm-up each)."""
    for fn in runners.values():
        fn()
    seconds = {k: [] for k in runners}
    for _ in range(rounds):
        for k, fn in runners.items():
            seconds[k].append(fn())
    return {k: (n - 1) / float(np.median(v)) for k, v in seconds.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=str(checkpoints_dir() / "siampolar_lite0.pt"))
    p.add_argument("--davis-root", default=None)
    p.add_argument("--sequence", default=REAL_VAL_SEQUENCES[0])
    p.add_argument("--frames", type=int, default=40, help="frames per timing round")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    root = davis_root(a.davis_root)
    if not davis_available(root):
        print(f"no DAVIS folder at {root}: set SIAMPOLAR_DAVIS_ROOT or pass --davis-root", file=sys.stderr)
        return 2
    torch.set_num_threads(2)
    model = load_model(a.checkpoint, device="cpu")
    folder = cached_export(model)
    seq = load_sequence(root, a.sequence)
    n = min(a.frames, len(seq))
    frames, box = [read_frame(f) for f in seq.frame_paths[:n]], first_box(seq)
    engines = {label: OrtEngine(folder, threads=t, spinning=s) for label, t, s in SETTINGS}
    engines["torch (2 threads)"] = TorchEngine(model, "cpu")
    runners = {k: loop_runner(Tracker(e), frames, box) for k, e in engines.items()}
    print(f"{a.checkpoint}, {seq.name} {n} frames, median of {a.rounds} interleaved rounds, {os.cpu_count()} cores")
    print(f"idle: load average {os.getloadavg()[0]:.2f}")
    idle = measure(runners, a.rounds, n)
    hog = mp.get_context("spawn").Process(target=busy_loop, daemon=True)
    hog.start()
    try:
        print(f"busy: one busy-loop process started (pid {hog.pid}); load average {os.getloadavg()[0]:.2f}")
        busy = measure(runners, a.rounds, n)
    finally:
        hog.kill()
        hog.join()
    base = idle[SETTINGS[0][0]]
    print(f"{'setting':28}{'idle fps':>10}{'busy fps':>10}{'busy/idle':>11}{'idle vs default':>17}")
    for k in runners:
        ratio = busy[k] / idle[k]
        mark = "ok" if ratio >= TARGET_BUSY_RATIO else "below"
        print(f"{k:28}{idle[k]:10.1f}{busy[k]:10.1f}{ratio:9.2f}x {mark:5}{idle[k] / base:10.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
