"""Train the object-scale refinement stage on a trained SiamPolar network: `python -m siampolar_lib.commands.train_refine`.

The first stage (backbone, neck, head) is loaded from --init-from and frozen; only `models.refine.RayRefiner`
trains, on `data.refine_samples.RefineDataset` samples (a blurred first outline around a centre near the object's
mass centre, the true rays from that centre). Loss: the Polar IoU loss (-log IoU of the rays) after every
iteration, averaged. AdamW, linear warm-up then cosine (`schedule.lr_factor`), bf16 autocast on CPUs that have it.
Every --ckpt-every steps and at the end: `last.pt` (the whole network, model-only, first stage included), a copy
`step{N}.pt`, `train_log.csv`, and the stage's polar IoU on samples from the validation fold (held out of training):
first rays against the truth, and refined rays against the truth. The samples of step s are a pure function of
(seed, s). A phase is short (minutes): an interrupted one is run again, or continued with --init-from its last.pt.

    python -m siampolar_lib.commands.train_refine --init-from checkpoints/siampolar_lite0.pt --data DAVIS_TRAIN_ROOT ...
        --exclude-sequences dog-agility,motorbike,surf --out runs/refine --iters 3000
"""
from __future__ import annotations

import csv
import dataclasses
import shutil
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from siampolar_lib.data.pairs import worker_loader_kwargs
from siampolar_lib.data.refine_samples import RefineDataset
from siampolar_lib.data.sources import load_training_videos
from siampolar_lib.device import pick_device, seed_everything
from siampolar_lib.errors import UserError
from siampolar_lib.io import atomic_write
from siampolar_lib.models.siampolar import SiamPolar
from siampolar_lib.splits import VALIDATION_FOLD_SEQUENCES
from siampolar_lib.training.checkpoint import checkpoint_config, load_checkpoint, save_checkpoint
from siampolar_lib.training.losses import polar_iou
from siampolar_lib.training.schedule import lr_factor

LOG_COLUMNS = ("step", "samples", "loss", "iou_first", "iou_refined", "lr", "samples_per_s", "val_iou_first",
               "val_iou_refined")
VAL_SAMPLES = 256  # fixed validation-fold samples scored at every checkpoint


def refine_model(init_from: str | Path, iters: int, device: torch.device, channels: int = 64,
                 size: int = 128) -> SiamPolar:
    """The network of --init-from with a refinement stage of `iters` iterations; only the stage's weights train.

    A checkpoint without the stage gets a fresh one of `channels` and crop `size` (it starts as the identity);
    one with it continues (its own channels and size; `iters` may change, the weights are shared by iterations).
    """
    ckpt = load_checkpoint(init_from)
    cfg = checkpoint_config(ckpt, init_from)
    if not cfg.refine_iters:
        cfg = dataclasses.replace(cfg, refine_channels=channels, refine_size=size)
    try:
        cfg = dataclasses.replace(cfg, refine_iters=iters)
    except ValueError as err:
        raise UserError(str(err)) from None
    model = SiamPolar(cfg, pretrained=False)
    missing, unexpected = model.load_state_dict(ckpt["model"], strict=False)
    wrong = [k for k in missing if not k.startswith("refiner.")] + list(unexpected)
    if wrong:
        raise UserError(f"{init_from}: weights do not fit its config (e.g. {wrong[0]})")
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("refiner."))
    return model.to(device).eval()


def refine_loss(model: SiamPolar, batch: dict, dtype: torch.dtype | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over iterations of the Polar IoU loss, and the last iteration's rays (B, R); the backbone gets no grad."""
    with torch.autocast(batch["crop"].device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        with torch.no_grad():
            s4, s8 = model.backbone.early_features(batch["crop"])
        outs = model.refiner(s4, s8, batch["first"])
    losses = [-torch.log(polar_iou(o.float(), batch["rays"]).clamp(min=1e-6)).mean() for o in outs]
    return torch.stack(losses).mean(), outs[-1]


@torch.no_grad()
def score_fold(model: SiamPolar, loader: DataLoader, device: torch.device) -> tuple[float, float]:
    """Mean polar IoU of the first and of the refined rays against the truth over a fixed set of samples."""
    first, refined, n = 0.0, 0.0, 0
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items() if torch.is_tensor(v)}
        rays = model.refine(batch["crop"], batch["first"])
        first += float(polar_iou(batch["first"], batch["rays"]).sum())
        refined += float(polar_iou(rays, batch["rays"]).sum())
        n += batch["rays"].shape[0]
    return first / n, refined / n


def fold_samples(fold: list, size: int) -> DataLoader:
    """The fixed validation-fold samples every checkpoint is scored on: VAL_SAMPLES of `fold`'s videos, seed 999."""
    return DataLoader(RefineDataset(fold, length=VAL_SAMPLES, seed=999, size=size), batch_size=64)


def write_rows(path: Path, rows: list[dict]) -> None:
    """The log as CSV (temp file, then rename)."""
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=LOG_COLUMNS)
        w.writeheader()
        w.writerows(rows)


def prepare(args) -> tuple[SiamPolar, list, list, torch.device]:
    """The network and the videos of a run, read before anything is written: (model, train videos, fold videos,
    device). The fold is the validation-fold sequences the run excludes (scored at each checkpoint)."""
    device = pick_device(args.device)
    seed_everything(args.seed)
    exclude = [s for s in args.exclude_sequences.split(",") if s]
    videos = load_training_videos(args.data, exclude=exclude)
    fold = [v for v in load_training_videos(args.data) if v.name.split("/")[0] in set(VALIDATION_FOLD_SEQUENCES)
            and v.name.split("/")[0] in set(exclude)]
    model = refine_model(args.init_from, args.refine_iters, device, args.refine_channels, args.refine_size)
    return model, videos, fold, device


def train_refine(args, model: SiamPolar, videos: list, fold: list, device: torch.device) -> Path:
    """One refinement phase (module docstring) of `prepare`'s network on its videos; returns the path of last.pt."""
    size = model.config.refine_size
    data = RefineDataset(videos, length=args.iters * args.batch, seed=args.seed, size=size)
    loader = DataLoader(data, batch_size=args.batch, shuffle=False, drop_last=True, **worker_loader_kwargs(args.workers))
    val = fold_samples(fold, size) if fold else None
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    dtype = torch.bfloat16 if args.precision == "bf16" else None
    out = Path(args.out)
    rows: list[dict] = []
    t_last, step = time.perf_counter(), 0
    for step, batch in enumerate(loader, start=1):
        for g in opt.param_groups:
            g["lr"] = args.lr * lr_factor(step - 1, args.iters, args.warmup)
        batch = {k: v.to(device) for k, v in batch.items() if torch.is_tensor(v)}
        model.refiner.train()
        loss, rays = refine_loss(model, batch, dtype)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        opt.step()
        if step % args.log_every == 0 or step == args.iters:
            now = time.perf_counter()
            row = {"step": step, "samples": step * args.batch, "loss": round(float(loss.detach()), 5),
                   "iou_first": round(float(polar_iou(batch["first"], batch["rays"]).mean()), 5),
                   "iou_refined": round(float(polar_iou(rays.detach().float(), batch["rays"]).mean()), 5),
                   "lr": opt.param_groups[0]["lr"], "samples_per_s": round(args.log_every * args.batch / (now - t_last), 1),
                   "val_iou_first": "", "val_iou_refined": ""}
            t_last = now
            if step % args.ckpt_every == 0 or step == args.iters:
                model.refiner.eval()
                if val is not None:
                    row["val_iou_first"], row["val_iou_refined"] = (round(x, 5) for x in score_fold(model, val, device))
                save_checkpoint(out / "last.pt", model, step, meta={"stage": "refine", "init_from": str(args.init_from),
                                                                   "samples": step * args.batch})
                shutil.copyfile(out / "last.pt", out / f"step{step}.pt")
                t_last = time.perf_counter()
            rows.append(row)
            write_rows(out / "train_log.csv", rows)
            if not args.no_progress:
                print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    if step < args.iters:
        raise UserError(f"the data gave {step} of {args.iters} steps")
    return out / "last.pt"
