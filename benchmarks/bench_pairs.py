"""Benchmark: training-pair throughput (DataLoader, 0 and N workers) against a model's train step, side by side.

The loader keeps up when its pairs/s is at least the train step's pairs/s (ratio >= 1).

    python -m benchmarks.bench_pairs --model quick --workers 0 2 --batch 16 --batches 6
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from siampolar_lib import build_model
from siampolar_lib.data.pairs import PairConfig, PairDataset, worker_loader_kwargs
from siampolar_lib.data.sources import videos_from_davis
from siampolar_lib.device import describe_device, pick_device, sync
from siampolar_lib.models.config import get_config
from siampolar_lib.paths import davis_available, davis_train_sample_root
from siampolar_lib.training.losses import compute_losses
from siampolar_lib.training.targets import model_targets


def loader_rate(ds: PairDataset, batch: int, batches: int, workers: int) -> float:
    """Pairs per second over `batches` batches after the first (worker start-up excluded)."""
    dl = DataLoader(ds, batch_size=batch, shuffle=False, **worker_loader_kwargs(workers))
    it = iter(dl)
    next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batch * batches / (time.perf_counter() - t0)


def train_rates(name: str, batch_data: dict, steps: int, device: torch.device) -> tuple[float, float]:
    """(train-step pairs/s, build_targets pairs/s) for model `name` on one batch, after one warm-up step."""
    cfg = get_config(name)
    model = build_model(name, pretrained=False).to(device).train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    z, x = batch_data["template"].to(device), batch_data["search"].to(device)
    t_targets = 0.0
    for i in range(steps + 1):
        if i == 1:
            sync(device)
            t0, t_targets = time.perf_counter(), 0.0
        out = model(z, x)
        ta = time.perf_counter()
        tg = model_targets(batch_data["search_mask"], out, cfg)
        t_targets += time.perf_counter() - ta
        loss = compute_losses(out, tg)["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    n = batch_data["template"].shape[0] * steps
    return n / (time.perf_counter() - t0), n / t_targets


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=None, help="DAVIS folder with training sequences "
                   "(default: the shared train sample)")
    p.add_argument("--split", default="train")
    p.add_argument("--model", nargs="+", default=["quick"], help="model configs to time (quick, lite0, ...)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--batches", type=int, default=6, help="timed loader batches (after one warm-up batch)")
    p.add_argument("--steps", type=int, default=3, help="timed train steps (after one warm-up step)")
    p.add_argument("--threads", type=int, default=2, help="torch threads in the main process")
    p.add_argument("--device", default="auto")
    a = p.parse_args(argv)
    root = a.root or davis_train_sample_root()
    if not davis_available(root):
        print(f"no DAVIS folder at {root}: pass --root", file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    device = pick_device(a.device)
    t0 = time.perf_counter()
    videos = videos_from_davis(root, a.split)
    print(f"{len(videos)} videos, {sum(len(v.frames) for v in videos)} frames indexed in "
          f"{time.perf_counter() - t0:.1f} s; device {describe_device(device)}")
    ds = PairDataset(videos, PairConfig(), length=a.batch * (a.batches + 2) * 4, seed=0)
    rates = {w: loader_rate(ds, a.batch, a.batches, w) for w in a.workers}
    for w, r in rates.items():
        print(f"loader  workers={w}: {r:7.1f} pairs/s")
    batch_data = next(iter(DataLoader(ds, batch_size=a.batch)))
    for name in a.model:
        step, targets = train_rates(name, batch_data, a.steps, device)
        print(f"train   {name:6s} batch {a.batch}: {step:7.1f} pairs/s  (build_targets alone {targets:.0f} pairs/s)")
        for w, r in rates.items():
            verdict = "keeps up" if r >= step else "is the bottleneck"
            print(f"  loader({w} workers) / train({name}) = {r / step:5.2f}: the loader {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
