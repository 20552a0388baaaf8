"""Streaming benchmark: peak memory of `python -m siampolar_lib.commands.track` on a 1920x1080 video of 100 and
600 frames.

    python -m benchmarks.bench_stream [--frames 100,600] [--size 1920x1080] [--checkpoint CKPT]

Writes synthetic MP4s (a textured background, a bright disk moving across) to a temp folder, tracks each in
a subprocess (untrained `quick` network unless --checkpoint; the memory, not the masks, is measured) and
prints the child's peak RSS (getrusage RUSAGE_CHILDREN, one child per run) and wall time. Goal: the peak
does not grow with the number of frames and stays under 1.5 GB (issue 10).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
GOAL_MB = 1536.0


def write_video(path: Path, n: int, size: tuple[int, int] = (1920, 1080), fps: float = 25.0) -> Path:
    """An mp4v video of n frames (width x height = size): noise background, a disk moving right."""
    w, h = size
    rng = np.random.default_rng(0)
    bg = cv2.resize(rng.integers(30, 140, (h // 8, w // 8, 3), dtype=np.uint8), (w, h))
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for i in range(n):
        f = bg.copy()
        cv2.circle(f, (300 + (i * 2) % max(1, w - 600), h // 2), 120, (240, 240, 240), -1)
        wr.write(f)
    wr.release()
    return path


def peak_rss_of(cmd: list[str]) -> tuple[float, float, int]:
    """Run cmd in a fresh child (via a tiny wrapper process) -> (peak RSS MB, seconds, exit code)."""
    wrapper = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
               "rc = subprocess.call(sys.argv[1:]); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t, rc)")
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    kb, secs, rc = out.stdout.strip().splitlines()[-1].split()
    if int(rc) != 0:
        sys.stderr.write(out.stderr[-2000:])
    return int(kb) / 1024.0, float(secs), int(rc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", default="100,600", help="comma-separated video lengths")
    ap.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT of the synthetic video")
    ap.add_argument("--checkpoint", default=None, help="default: an untrained quick network")
    a = ap.parse_args(argv)
    counts = [int(v) for v in a.frames.split(",")]
    size = tuple(int(v) for v in a.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="bench_stream_") as tmp:
        tmp = Path(tmp)
        ckpt = a.checkpoint
        if ckpt is None:
            from siampolar_lib import build_model
            from siampolar_lib.training.checkpoint import save_checkpoint

            ckpt = str(save_checkpoint(tmp / "quick.pt", build_model("quick", pretrained=False)))
        rows = []
        for n in counts:
            video = write_video(tmp / f"v{n}.mp4", n, size)
            w, h = size
            cmd = [sys.executable, "-m", "siampolar_lib.commands.track", "--checkpoint", ckpt, "--video", str(video),
                   "--box", f"180,{h // 2 - 120},240,240",  # the disk of frame 0
                   "--out", str(tmp / f"out{n}"), "--device", "cpu", "--no-progress"]
            mb, secs, rc = peak_rss_of(cmd)
            masks = len(list((tmp / f"out{n}" / "masks").glob("*.png")))
            rows.append((n, mb, secs, rc, masks))
            print(f"{n:4d} frames {w}x{h}: peak RSS {mb:7.1f} MB, {secs:6.1f} s, exit {rc}, {masks} masks",
                  flush=True)
    peaks = [r[1] for r in rows]
    ratio = max(peaks) / min(peaks)
    ok = all(r[3] == 0 and r[4] == r[0] for r in rows) and max(peaks) < GOAL_MB
    print(f"peak RSS ratio longest/shortest video: {ratio:.2f} (flat = 1.00); max {max(peaks):.0f} MB "
          f"(goal < {GOAL_MB:.0f} MB): {'ok' if ok else 'NOT MET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
