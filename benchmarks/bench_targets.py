"""Where the targets are built: in the training step vs in the DataLoader (workers), steps/s side by side.

    python -m benchmarks.bench_targets [--configs quick lite0] [--workers 0 2] [--iters 8] [--batch 8] [--threads 2]

For each config and worker count, two fresh runs of `siampolar_lib.training.train.train` on the same small synthetic
DAVIS set, one with `worker_targets=False` (targets built in numpy inside `train_step`, the old path) and one
with `worker_targets=True` (`targets.TargetCollate` in the DataLoader); the median steps/s of steps 3..iters
and the ratio. Also the time `build_targets` itself takes per batch, and the machine's load average.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import torch

from benchmarks.timing import median_ms
from siampolar_lib.data.pairs import PairDataset
from siampolar_lib.data.sources import videos_from_davis
from siampolar_lib.data.synthetic import make_synthetic_davis
from siampolar_lib.models.config import get_config
from siampolar_lib.training.config import OptimConfig, TrainConfig
from siampolar_lib.training.log import read_log
from siampolar_lib.training.targets import config_points, config_targets
from siampolar_lib.training.train import train


def steps_per_s(config: str, data: Path, out: Path, iters: int, batch: int, workers: int, in_workers: bool) -> float:
    """Median steps/s over steps 3..iters of a fresh CPU run."""
    cfg = TrainConfig(model=get_config(config), data=(str(data),), out=str(out), iters=iters, batch=batch,
                      optim=OptimConfig(warmup=0), ckpt_every=0, device="cpu", workers=workers,
                      worker_targets=in_workers, progress=False)
    rows = read_log(train(cfg)["log"])[2:]
    return statistics.median(r["pairs_per_s"] for r in rows) / batch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["quick", "lite0"])
    p.add_argument("--workers", nargs="+", type=int, default=[0, 2])
    p.add_argument("--iters", type=int, default=8)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    if a.iters < 3:
        p.error("--iters must be >= 3 (the first two steps are warm-up)")
    torch.set_num_threads(a.threads)
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        data = make_synthetic_davis(Path(tmp) / "DAVIS", sequences=4, frames=12, seed=0)
        videos = videos_from_davis(data)
        rows = []
        for c in a.configs:
            mcfg = get_config(c)
            pairs = PairDataset(videos, length=a.batch, seed=0, geometry=mcfg)
            masks = torch.stack([pairs[i]["search_mask"] for i in range(a.batch)])
            points = config_points(mcfg)
            build_ms, _ = median_ms(lambda: config_targets(masks, mcfg, points), runs=5, warmup=1)
            for w in a.workers:
                old = steps_per_s(c, data, Path(tmp) / f"{c}_w{w}_step", a.iters, a.batch, w, False)
                new = steps_per_s(c, data, Path(tmp) / f"{c}_w{w}_loader", a.iters, a.batch, w, True)
                rows.append((c, w, build_ms, old, new))
    load1 = os.getloadavg()
    print(f"CPU, {a.threads} torch threads, batch {a.batch}, median of steps 3..{a.iters}; load average "
          f"(1 min) {load0[0]:.1f} at the start, {load1[0]:.1f} at the end, on {os.cpu_count()} cores")
    print(f"{'config':7s} {'workers':>7s} {'targets ms/batch':>17s} {'in step':>9s} {'in loader':>10s} {'ratio':>6s}")
    for c, w, ms, old, new in rows:
        print(f"{c:7s} {w:7d} {ms:17.1f} {old:7.3f}/s {new:8.3f}/s {new / old:6.2f}")


if __name__ == "__main__":
    main()
