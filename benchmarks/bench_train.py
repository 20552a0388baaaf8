"""Training throughput on this machine: pairs per second of a full train step (data, forward, targets, backward).

    python -m benchmarks.bench_train [--runs lite0:frozen lite0:cached lite0:trainable] [--iters 12] [--batch 16]
                                     [--precision bf16] [--threads 2] [--data DAVIS_ROOT]

Each run is CONFIG:MODE, trained side by side in one process on the same data (a small synthetic DAVIS set unless
--data is given): "trainable" trains the config's unfrozen backbone blocks, "frozen" keeps the whole backbone
frozen (the backbone still runs on every crop), "cached" is the frozen step on cached backbone maps
(`siampolar_lib.training.feature_cache`: only neck and head run per step; the cache is built once before the first step
and its build time is printed by the trainer, not counted here). Prints the median pairs/s of the steps after
the first two (warm-up) and each run's speed relative to the first.
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
from siampolar_lib.training.config import OptimConfig, TrainConfig
from siampolar_lib.training.log import read_log
from siampolar_lib.training.train import train

MODES = ("trainable", "frozen", "cached")


def bench(run: str, data: Path, out: Path, a: argparse.Namespace) -> float:
    """Median pairs/s over steps 3..iters of a fresh CONFIG:MODE run."""
    config, _, mode = run.partition(":")
    mode = mode or "trainable"
    if mode not in MODES:
        raise SystemExit(f"error: --runs {run}: mode must be one of {', '.join(MODES)}")
    frozen = a.iters if mode in ("frozen", "cached") else 0
    cfg = TrainConfig(model=get_config(config), data=(str(data),), out=str(out / run.replace(":", "_")),
                      iters=a.iters, batch=a.batch, optim=OptimConfig(warmup=0, freeze_backbone_iters=frozen),
                      ckpt_every=0, device=a.device, workers=a.workers, progress=False, precision=a.precision,
                      feature_cache=a.variants if mode == "cached" else 0)
    rows = read_log(train(cfg)["log"])[2:]
    return statistics.median(r["pairs_per_s"] for r in rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", default=["lite0:frozen", "lite0:cached"])
    p.add_argument("--iters", type=int, default=12)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--precision", default="bf16", choices=("auto", "fp32", "bf16"))
    p.add_argument("--variants", type=int, default=2, help="context crops per frame for the cached runs")
    p.add_argument("--data", default=None, help="a DAVIS root (default: a synthetic set of 4 x 12 frames)")
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    if a.iters < 3:
        p.error("--iters must be >= 3 (the first two steps are warm-up)")
    torch.set_num_threads(a.threads)
    device = pick_device(a.device)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(a.data) if a.data else make_synthetic_davis(Path(tmp) / "DAVIS", sequences=4, frames=12, seed=0)
        rates = {r: bench(r, data, Path(tmp), a) for r in a.runs}
    print(f"device: {describe_device(device)}, batch {a.batch}, {a.precision}, {a.iters} steps "
          f"(median of steps 3..{a.iters}), data {a.data or 'synthetic'}")
    first = a.runs[0]
    for r, rate in rates.items():
        print(f"  {r:18s} {rate:7.2f} pairs/s   {1000 * a.batch / rate:8.1f} ms/step   "
              f"{rate / rates[first]:5.2f}x {first}", flush=True)


if __name__ == "__main__":
    main()
