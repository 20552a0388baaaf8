"""The benchmarks' one timing helper: wall (and CPU) time of callables, the device synchronised around them."""
from __future__ import annotations

import statistics
import time
from typing import Callable, Sequence

from siampolar_lib.device import sync


def time_runs(fn: Callable[[], object], runs: int, warmup: int = 0, device=None) -> tuple[list[float], list[float]]:
    """Run fn `warmup` times untimed, then `runs` times: (wall seconds, process CPU seconds) per run.

    The device (CUDA/MPS; None or CPU: nothing) is synchronised before each start and before each stop.
    """
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(runs):
        sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        sync(device)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def best_seconds(fn: Callable[[], object], repeat: int, device=None) -> float:
    """Best-of-`repeat` wall seconds of fn()."""
    return min(time_runs(fn, repeat, device=device)[0])


def median_ms(fn: Callable[[], object], runs: int, warmup: int = 0, device=None) -> tuple[float, float]:
    """(median wall ms, median process CPU ms) of fn over `runs` after `warmup` untimed calls."""
    wall, cpu = time_runs(fn, runs, warmup, device)
    return 1000.0 * statistics.median(wall), 1000.0 * statistics.median(cpu)


def items_per_second(fn: Callable[[object], object], items: Sequence, device=None) -> float:
    """Items per second of fn over items, one timed pass (device synchronised before and after)."""
    def run_all():
        for it in items:
            fn(it)
    return len(items) / time_runs(run_all, 1, device=device)[0][0]


def interleaved_best(fns: Sequence[Callable[[], object]], repeats: int) -> tuple[list[float], list]:
    """Best wall seconds of each function over `repeats` rounds run interleaved (load from other processes
    hits all alike), and the last result of each."""
    times: list[list[float]] = [[] for _ in fns]
    results: list = [None] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            results[i] = fn()
            times[i].append(time.perf_counter() - t0)
    return [min(t) for t in times], results
