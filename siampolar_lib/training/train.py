"""Train a SiamPolar network on template-search pairs: `train(TrainConfig)` (the command: `siampolar-train`).

One step = one batch of pairs -> model -> targets -> losses -> SGD/AdamW step (grad clip 35, AMP on CUDA).
The targets depend only on the search masks and the model config's location grid, so the DataLoader builds
them (`targets.TargetCollate`, in its worker processes when --workers > 0) and the step only moves them.
The pairs of step s are a pure function of (seed, s): the dataset item i is seeded by (seed, i), and step s
of rank r reads items s*B*W + r*B ... + B-1 (W processes). So `--resume` after a kill repeats exactly what
an uninterrupted run does, and `torchrun --nproc_per_node=N` splits each step's items over the ranks.
The run's whole configuration is one `training.config.TrainConfig` (presets: configs/*.yaml, `--preset NAME`).
Its parts live beside it: videos from `--data` in `data.sources`, ranks and the step sampler in
`distributed`, the checks a checkpoint must pass (and its log read back) in `checkpoint`, RNG state in `device`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from siampolar_lib.data.pairs import PairDataset, worker_loader_kwargs
from siampolar_lib.data.sources import load_training_videos
from siampolar_lib.device import describe_device, rng_state, seed_everything, set_rng_state
from siampolar_lib.errors import UserError
from siampolar_lib.models.config import ModelConfig
from siampolar_lib.models.siampolar import SiamPolar
from siampolar_lib.outputs import (
    check_output_apart,
    check_output_folder,
    clean_stale_temps,
    made_folders_removed_on_error,
    output_lock,
)
from siampolar_lib.training.checkpoint import (
    check_resume,
    checkpoint_log,
    init_weights,
    load_checkpoint,
    save_checkpoint,
)
from siampolar_lib.training.config import TrainConfig
from siampolar_lib.training.distributed import StepSampler, barrier, dist_info, init_distributed, wrap_ddp
from siampolar_lib.training.feature_cache import CacheConfig, CachedPairs, build_feature_cache
from siampolar_lib.training.log import save_loss_curve, write_log
from siampolar_lib.training.losses import LossConfig, compute_losses, loss_terms
from siampolar_lib.training.schedule import make_optimizer, make_scheduler, set_backbone_frozen, trainable_backbone
from siampolar_lib.training.targets import TargetCollate, model_targets

__all__ = ["GRAD_CLIP", "Run", "autocast_dtype", "train_step", "train"]

GRAD_CLIP = 35.0  # gradient clipping at L2 norm 35 (pysot)


# ------------------------------------------------------------------------------------ the step

def _batch_to(batch: dict, device: torch.device) -> dict:
    """Every tensor of a batch on device (non-blocking), also inside dicts (cached backbone maps by stride)."""
    def move(v):
        if isinstance(v, dict):
            return {k: move(x) for k, x in v.items()}
        return v.to(device, non_blocking=True) if torch.is_tensor(v) else v

    return {k: move(v) for k, v in batch.items()}


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision setting on a device (None: plain fp32)."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"unknown precision {precision!r}: choose auto, fp32 or bf16")
    if precision == "bf16":
        return torch.bfloat16
    return torch.float16 if precision == "auto" and device.type == "cuda" else None


def train_step(model: nn.Module, batch: dict, mcfg: ModelConfig, loss_cfg: LossConfig,
               optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, device: torch.device,
               amp: bool | torch.dtype | None) -> dict:
    """One optimiser step on a batch of pairs; returns total, every loss term (cls, ctr, rays, ...) and num_pos.

    batch: template (B, 3, T, T) and search (B, 3, S, S) float RGB 0..255 on `device`, plus the DataLoader's
    "targets" (`targets.TargetCollate`) or search_mask (B, S, S) bool to build them from.
    amp: the autocast dtype (True means float16, False/None plain fp32); losses are always computed in fp32.
    """
    dtype = torch.float16 if amp is True else (amp or None)
    with torch.autocast(device_type=device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        out = model(batch["template"], batch["search"])
    out = {k: ([t.float() for t in v] if k in ("cls", "ctr", "rays") else v) for k, v in out.items()}
    if "targets" in batch:  # built by the DataLoader (targets.TargetCollate), usually in its workers
        targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in batch["targets"]]
    else:
        with torch.no_grad():
            targets = model_targets(batch["search_mask"], out, mcfg)
    losses = compute_losses(out, targets, loss_cfg)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(losses["total"]).backward()
    scaler.unscale_(optimizer)
    params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
    scaler.step(optimizer)
    scaler.update()
    return {k: float(v.detach()) for k, v in losses.items()}


# ------------------------------------------------------------------------------------ training

@dataclass
class Run:
    """The state of one training run, passed between the named steps of `train`."""

    cfg: TrainConfig
    rank: int
    world: int
    device: torch.device
    amp: torch.dtype | None
    out: Path
    model: nn.Module | None = None
    net: nn.Module | None = None  # model, or its DDP wrapper
    trainable: frozenset = frozenset()
    optimizer: torch.optim.Optimizer | None = None
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    scaler: torch.amp.GradScaler | None = None
    start: int = 0
    step: int = 0
    end: int = 0
    rows: list = field(default_factory=list)
    frozen: bool = False

    @property
    def ckpt_path(self) -> Path:
        """The run's checkpoint: network, whole config, training state and log."""
        return self.out / "last.pt"

    @property
    def log_path(self) -> Path:
        """The run's train_log.csv (a copy of the checkpoint's log)."""
        return self.out / "train_log.csv"

    @property
    def curve_path(self) -> Path:
        """The run's loss_curve.png."""
        return self.out / "loss_curve.png"


def setup_run(cfg: TrainConfig) -> Run:
    """Process group (under torchrun), device, precision and seeds. The run folder is made by the first save
    (`io.atomic_write`), so a run killed before it leaves no empty folder."""
    rank, world, device = init_distributed(cfg.device)
    run = Run(cfg, rank, world, device, autocast_dtype(cfg.precision, device), Path(cfg.out))
    seed_everything(cfg.seed)
    return run


def build_training(run: Run) -> None:
    """The network (fine-tuned from init_from when given), its optimiser, schedule and loss scaler."""
    cfg = run.cfg
    run.model = SiamPolar(cfg.model, pretrained=cfg.pretrained and cfg.init_from is None).to(run.device)
    if cfg.init_from is not None and not cfg.resume:
        init_weights(run.model, cfg.init_from, cfg.model)
    run.trainable = trainable_backbone(run.model)
    run.optimizer = make_optimizer(run.model, cfg.optim.optimizer, cfg.optim.lr, cfg.optim.weight_decay)
    run.scheduler = make_scheduler(run.optimizer, cfg.iters, cfg.optim.warmup, cfg.optim.schedule)
    run.scaler = torch.amp.GradScaler(run.device.type, enabled=run.amp == torch.float16)


def restore(run: Run) -> None:
    """Continue from out/last.pt: weights, optimiser, scaler, RNG, step and log; the schedule re-planned."""
    cfg, path = run.cfg, run.ckpt_path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: --resume given but there is no checkpoint to resume from")
    ckpt = load_checkpoint(path)
    check_resume(ckpt, path, cfg)
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"])
    run.start = int(ckpt["step"])
    # A changed --iters re-plans the rest of the schedule (the factor is a pure function of step, total).
    run.scheduler = make_scheduler(run.optimizer, cfg.iters, cfg.optim.warmup, cfg.optim.schedule, start=run.start)
    run.rows = checkpoint_log(ckpt, path, run.log_path)
    if run.rank == 0:
        write_log(run.log_path, run.rows)  # a kill between the checkpoint and the CSV left it stale: rebuild it


def make_loader(run: Run, videos: list) -> torch.utils.data.DataLoader:
    """Videos (from `data.sources`) -> PairDataset with the model's crop geometry -> step-indexed loader."""
    cfg = run.cfg
    length = max(1, cfg.iters) * cfg.batch * run.world
    if cfg.feature_cache > 0:  # the frozen backbone's maps, computed once (check_run_folder: frozen throughout)
        start = time.perf_counter()
        cache = build_feature_cache(run.model, videos, cfg.pairs, CacheConfig(variants=cfg.feature_cache),
                                    seed=cfg.seed, device=run.device)
        if run.rank == 0:
            print(f"feature cache: {len(cache.search_rows)} context crops, {len(cache.template_rows)} templates "
                  f"in {time.perf_counter() - start:.0f} s")
        dataset = CachedPairs(cache, cfg.model, cfg.pairs, length=length, seed=cfg.seed)
    else:
        dataset = PairDataset(videos, cfg.pairs, length=length, seed=cfg.seed, geometry=cfg.model)
    run.end = cfg.iters if cfg.stop_at is None else max(run.start, min(cfg.iters, cfg.stop_at))
    sampler = StepSampler(run.start, run.end, cfg.batch, run.rank, run.world)
    collate = TargetCollate(cfg.model) if cfg.worker_targets else None  # None: torch's default_collate
    return torch.utils.data.DataLoader(dataset, batch_size=cfg.batch, sampler=sampler,
                                       pin_memory=run.device.type == "cuda", drop_last=True,
                                       collate_fn=collate, **worker_loader_kwargs(cfg.workers))


def save_run(run: Run, step: int) -> None:
    """last.pt (network, whole config, training state), the log and the loss curve; rank 0 only."""
    if run.rank != 0:
        return
    meta = {"train_config": run.cfg.to_dict(), "world_size": run.world, "device": run.device.type}
    # The log rides inside the checkpoint, so both are written in one atomic step; the CSV is a copy of it.
    save_checkpoint(run.ckpt_path, run.model, step=step, meta=meta, optimizer=run.optimizer.state_dict(),
                    scheduler=run.scheduler.state_dict(), scaler=run.scaler.state_dict(), rng=rng_state(),
                    log=run.rows)
    write_log(run.log_path, run.rows)
    if run.rows:
        save_loss_curve(run.curve_path, run.rows)


def _log_row(run: Run, terms: dict, lr: float, seconds: float) -> dict:
    """One train_log.csv row for the step just taken."""
    return {"step": run.step, "loss": terms["total"], **{k: terms[k] for k in loss_terms()}, "lr": lr,
            "num_pos": int(terms["num_pos"]), "pairs_per_s": run.cfg.batch * run.world / max(seconds, 1e-9)}


def one_step(run: Run, batch: dict) -> dict:
    """Unfreeze the backbone when its time comes, take one optimiser step, advance the schedule; the log row."""
    cfg = run.cfg
    if run.frozen and run.step >= cfg.optim.freeze_backbone_iters:
        run.frozen = False
        set_backbone_frozen(run.model, False, run.trainable)
        run.net = wrap_ddp(run.model, run.world, run.device)  # DDP must see the newly trainable parameters
    lr = run.optimizer.param_groups[-1]["lr"]  # the head's (non-backbone) lr at this step
    terms = train_step(run.net, _batch_to(batch, run.device), cfg.model, cfg.loss, run.optimizer, run.scaler,
                       run.device, run.amp)
    run.scheduler.step()
    run.step += 1
    if not np.isfinite(terms["total"]):
        raise FloatingPointError(f"step {run.step}: the loss is {terms['total']} (lr {lr:.2e}); stopping")
    return terms | {"lr": lr}


def run_loop(run: Run, loader: torch.utils.data.DataLoader) -> None:
    """The training loop: steps start..end, a log row each, a checkpoint every ckpt_every steps."""
    cfg = run.cfg
    run.model.train()
    run.frozen = run.start < cfg.optim.freeze_backbone_iters
    set_backbone_frozen(run.model, run.frozen, run.trainable)
    run.net = wrap_ddp(run.model, run.world, run.device)
    bar = tqdm(total=cfg.iters, initial=run.start, disable=not (cfg.progress and run.rank == 0),
               desc=f"train {cfg.model.name}", dynamic_ncols=True)
    run.step, tick = run.start, time.perf_counter()
    for batch in loader:
        terms = one_step(run, batch)
        now = time.perf_counter()
        run.rows.append(_log_row(run, terms, terms["lr"], now - tick))
        tick = now
        bar.update(1)
        bar.set_postfix(loss=f"{terms['total']:.3f}", **{k: f"{terms[k]:.3f}" for k in loss_terms()},
                        lr=f"{terms['lr']:.1e}")
        if cfg.ckpt_every > 0 and run.step % cfg.ckpt_every == 0 and run.step < run.end:
            save_run(run, run.step)
    bar.close()


RUN_FILES = ("last.pt", "train_log.csv", "loss_curve.png")
# Temp files of a write a kill interrupted (`.<stem>.XXXX.tmp<suffix>` of io.atomic_write, `last.pt.XXXX.tmp`);
# removed at the next start, under the run's lock, so never a live writer's file.
STALE_TEMPS = (".*.tmp*", "last.pt.*.tmp")


def check_run_folder(cfg: TrainConfig) -> Path:
    """Check a run's arguments before any work: the out folder, --resume/--overwrite, data and init paths.

    A folder holding a run (last.pt or train_log.csv) is refused unless --resume (continue it) or
    --overwrite (start afresh), so a new run never replaces a finished one by accident. No input (--data,
    --init-from, --image-root) may be, contain or lie inside out (`outputs.check_output_apart`).
    """
    out = check_output_folder(cfg.out)
    # A run writes into out; an input inside it (an --init-from of an earlier run there) would be replaced.
    check_output_apart(out, {"--init-from": cfg.init_from, "--image-root": cfg.image_root})
    for entry in cfg.data:
        check_output_apart(out, {"--data": entry})
    if cfg.resume and cfg.overwrite:
        raise UserError("--resume and --overwrite contradict each other: continue the run, or replace it")
    existing = [name for name in RUN_FILES[:2] if (out / name).exists()]
    if existing and not (cfg.resume or cfg.overwrite):
        raise UserError(f"{out}: holds a training run ({', '.join(existing)}); pass --resume to continue it or "
                        "--overwrite to replace it, or choose another --out")
    if cfg.resume and not (out / "last.pt").is_file():
        raise FileNotFoundError(f"{out / 'last.pt'}: --resume given but there is no checkpoint to resume from")
    if not cfg.data:
        raise UserError("no training data: pass --data PATH (a davis2coco json or a DAVIS root)")
    for entry in cfg.data:
        if not Path(entry).exists():
            raise FileNotFoundError(f"{entry}: no such training data (expected a davis2coco json or a DAVIS root)")
    if cfg.init_from is not None and not Path(cfg.init_from).is_file():
        raise FileNotFoundError(f"{cfg.init_from}: --init-from checkpoint not found")
    for name in ("iters", "batch"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name} {getattr(cfg, name)}: must be at least 1")
    if cfg.feature_cache > 0 and cfg.optim.freeze_backbone_iters < cfg.iters:
        raise UserError(f"--feature-cache {cfg.feature_cache}: cached backbone maps need the backbone frozen for the "
                        f"whole run; pass --freeze-backbone-iters {cfg.iters} (or more)")
    return out


def train(cfg: TrainConfig) -> dict:
    """Train (or resume) per `cfg`; returns {"checkpoint", "log", "curve", "steps", "final_loss", "device"}.

    The run owns `cfg.out`: every argument is checked first (`check_run_folder`), a second run into the same
    folder is refused while this one holds its lock, and the temp files a killed run left are removed. A run
    refused before it wrote anything (bad --data, an --init-from of another size) leaves no empty folder behind.
    With --overwrite nothing is deleted up front: the earlier run's last.pt, train_log.csv and loss_curve.png are
    replaced (each atomically) when this run first saves, so a run that fails to start, or stops before its first
    checkpoint, leaves the earlier run as it was.
    """
    out = check_run_folder(cfg)
    if dist_info()[0] != 0:
        return _train(cfg)
    # A run refused or stopped before its first save leaves no empty folder (nor parents) it made.
    with made_folders_removed_on_error(out), output_lock(out):
        clean_stale_temps(out, STALE_TEMPS)
        return _train(cfg)


def _train(cfg: TrainConfig) -> dict:
    """The training run itself, as named steps (arguments already checked by `train`)."""
    # Read (and so check) every --data entry before the run folder is made: a bad one leaves nothing behind.
    videos = load_training_videos(cfg.data, image_root=cfg.image_root, exclude=cfg.exclude_sequences)
    run = setup_run(cfg)
    build_training(run)
    if cfg.resume:
        restore(run)
    if run.start >= cfg.iters and run.rank == 0:
        print(f"{run.ckpt_path.name} is already at step {run.start} >= --iters {cfg.iters}: nothing to do")
    loader = make_loader(run, videos)
    run_loop(run, loader)
    if run.step > run.start or not run.ckpt_path.is_file():
        save_run(run, run.step)
    barrier(run.world)
    return {"checkpoint": run.ckpt_path, "log": run.log_path, "curve": run.curve_path, "steps": run.step,
            "final_loss": run.rows[-1]["loss"] if run.rows else float("nan"),
            "device": describe_device(run.device)}


# ----------------------------------------------------------------------------------------- CLI
