"""Training throughput on this machine: pairs per second of a full train step (data, forward, targets, backward).

    python -m benchmarks.bench_train [--configs quick lite0] [--iters 12] [--batch 8] [--threads 2]

Runs `siampolar_lib.train.train` for each config on the same small synthetic DAVIS set, side by side in one
process, and prints the median pairs/s of the steps after the first two (warm-up), and the ratios.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from siampolar_lib.data.synthetic import make_synthetic_davis
from siampolar_lib.device import describe_device, pick_device
from siampolar_lib.models.config import get_config
from siampolar_lib.experiment import OptimConfig, TrainConfig
from siampolar_lib.train import train
from siampolar_lib.trainlog import read_log


def bench(config: str, data: Path, out: Path, iters: int, batch: int, device: str, workers: int) -> float:
    """Median pairs/s over steps 3..iters of a fresh `config` run."""
    cfg = TrainConfig(model=get_config(config), data=(str(data),), out=str(out / config), iters=iters, batch=batch,
                      optim=OptimConfig(warmup=0), ckpt_every=0, device=device, workers=workers, progress=False)
    result = train(cfg)
    rows = read_log(result["log"])[2:]
    return statistics.median(r["pairs_per_s"] for r in rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["quick", "lite0"])
    p.add_argument("--iters", type=int, default=12)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    if a.iters < 3:
        p.error("--iters must be >= 3 (the first two steps are warm-up)")
    torch.set_num_threads(a.threads)
    device = pick_device(a.device)
    with tempfile.TemporaryDirectory() as tmp:
        data = make_synthetic_davis(Path(tmp) / "DAVIS", sequences=4, frames=12, seed=0)
        rates = {c: bench(c, data, Path(tmp), a.iters, a.batch, a.device, a.workers) for c in a.configs}
    print(f"device: {describe_device(device)}, batch {a.batch}, {a.iters} steps (median of steps 3..{a.iters})")
    for c, r in rates.items():
        print(f"  {c:6s} {r:7.2f} pairs/s   {1000 * a.batch / r:8.1f} ms/step")
    ref = a.configs[0]
    for c in a.configs[1:]:
        print(f"  {ref}/{c} speed ratio: {rates[ref] / rates[c]:.2f}x")


if __name__ == "__main__":
    main()
