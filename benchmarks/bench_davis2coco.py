"""Benchmark: time DAVIS-to-COCO on the real frames, 1 process against N, printed side by side.

Target: the 1047 real frames in under 30 s on 2 cores.

    SIAMPOLAR_DAVIS_ROOT=../shared/data/DAVIS python -m benchmarks.bench_davis2coco --workers 2
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from benchmarks.timing import best_seconds
from siampolar_lib.data.coco import davis_to_coco
from siampolar_lib.paths import davis_available, davis_root

TARGET_S = 30.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--davis-root", type=Path, default=None)
    p.add_argument("--workers", type=int, default=2, help="processes for the parallel run (default 2)")
    a = p.parse_args(argv)
    root = davis_root(a.davis_root)
    if not davis_available(root):
        print(f"no DAVIS folder at {root}: set SIAMPOLAR_DAVIS_ROOT or pass --davis-root", file=sys.stderr)
        return 2
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        for w in sorted({1, a.workers}):
            out = {}
            times[w] = best_seconds(lambda: out.update(davis_to_coco(root, out_dir=Path(tmp) / f"w{w}", workers=w)), 1)
            written = out
        n = sum(len(json.loads(p.read_text())["images"]) for k, p in written.items() if k != "trainval")
    for w, t in times.items():
        print(f"workers={w}: {n} frames in {t:.2f} s ({n / t:.0f} frames/s), target {TARGET_S:.0f} s: "
              f"{'met' if t < TARGET_S else 'MISSED'}")
    if len(times) > 1:
        print(f"speed-up {a.workers} processes vs 1: {times[1] / times[a.workers]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
