"""Train a SiamPolar network on template-search pairs: `train(TrainConfig)` and `python -m siampolar_lib.train`.

One step = one batch of pairs -> model -> targets -> losses -> SGD/AdamW step (grad clip 35, AMP on CUDA).
The pairs of step s are a pure function of (seed, s): the dataset item i is seeded by (seed, i), and step s
of rank r reads items s*B*W + r*B ... + B-1 (W processes). So `--resume` after a kill repeats exactly what
an uninterrupted run does, and `torchrun --nproc_per_node=N` splits each step's items over the ranks.
The run's whole configuration is one `experiment.TrainConfig` (presets: configs/*.yaml, `--preset NAME`).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import CheckpointError, checkpoint_config, load_checkpoint, save_checkpoint
from .data.coco import davis_to_coco, load_coco_videos
from .data.davis import folder_sequences
from .data.pairs import PairDataset, worker_loader_kwargs
from .device import describe_device, pick_device, seed_everything
from .experiment import OptimConfig, TrainConfig, add_flags, config_from_args
from .losses import compute_losses
from .models.config import ModelConfig
from .models.siampolar import SiamPolar
from .schedule import make_optimizer, make_scheduler, set_backbone_frozen, trainable_backbone
from .targets import model_targets
from .trainlog import read_log, save_loss_curve, write_log

__all__ = ["OptimConfig", "TrainConfig", "train", "train_step", "parse_args", "main"]

GRAD_CLIP = 35.0  # gradient clipping at L2 norm 35 (pysot)
# Model fields that change how a network trains but not its weights' meaning: may differ on resume/fine-tune.
TRAINING_ONLY_FIELDS = ("frozen_stages", "bn_mode")


# ----------------------------------------------------------------------------------------- data

def _infer_image_root(json_path: Path) -> Path:
    """A DAVIS root for a davis2coco json: its `meta.image_root`/`image_root`, else the folder holding it."""
    with open(json_path) as f:
        info = json.load(f).get("info", {}) or {}
    for key in ("image_root", "davis_root", "root"):
        if isinstance(info, dict) and info.get(key):
            root = Path(info[key])
            return root if root.is_absolute() else (json_path.parent / root)
    for cand in (json_path.parent, json_path.parent.parent, json_path.parent.parent.parent):
        if (cand / "JPEGImages").is_dir():
            return cand
    raise FileNotFoundError(f"{json_path}: cannot infer the image root (no JPEGImages/ above it); "
                            "pass --image-root")


def load_training_videos(data: tuple[str, ...], work_dir: str | os.PathLike, image_root: str | None = None,
                         exclude: tuple[str, ...] = ()) -> list:
    """Videos (data.coco.Video) from davis2coco jsons and/or DAVIS roots, minus the `exclude` sequences.

    A DAVIS root is converted with `davis_to_coco` into `work_dir` (every split it lists, once each).
    """
    if not data:
        raise ValueError("no training data: pass --data PATH (a davis2coco json or a DAVIS root)")
    excl = set(exclude)
    videos = []
    for i, entry in enumerate(data):
        p = Path(entry)
        if p.is_dir():
            if not (p / "JPEGImages").is_dir():
                raise FileNotFoundError(f"{p}: not a DAVIS root (no JPEGImages/) and not a json file")
            keep = [n for n in folder_sequences(p) if n not in excl]
            if not keep:
                continue
            written = davis_to_coco(p, 2016, Path(work_dir) / f"data{i}_{p.name}", only=keep)
            seen = set()
            for split, json_path in written.items():
                for v in load_coco_videos(json_path, p):
                    if v.name not in seen:  # a sequence listed by two splits is used once
                        seen.add(v.name)
                        videos.append(v)
        elif p.is_file():
            root = Path(image_root) if image_root else _infer_image_root(p)
            videos += load_coco_videos(p, root)
        else:
            raise FileNotFoundError(f"{p}: no such training data (expected a davis2coco json or a DAVIS root)")
    videos = [v for v in videos if v.name not in excl]
    if not videos:
        raise ValueError(f"no training videos left in {list(data)} after excluding {sorted(excl)}")
    return videos


class StepSampler(torch.utils.data.Sampler):
    """Item indices of steps start..total-1 for one rank: step s, rank r -> s*B*W + r*B + [0, B)."""

    def __init__(self, start: int, total: int, batch: int, rank: int = 0, world: int = 1):
        self.start, self.total, self.batch, self.rank, self.world = start, total, batch, rank, world

    def __iter__(self):
        for s in range(self.start, self.total):
            base = (s * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)

    def __len__(self) -> int:
        return max(0, self.total - self.start) * self.batch


# ------------------------------------------------------------------------------------- RNG state

def rng_state() -> dict:
    """Python, NumPy, torch (and CUDA) RNG states as tensors / plain lists (weights_only-loadable)."""
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": [version, list(mt), gauss],
             "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore `rng_state()`."""
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------- distributed

def dist_info() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment; (0, 1, 0) for a plain run."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def _wrap(model: nn.Module, world: int, device: torch.device) -> nn.Module:
    """DDP wrapper for multi-process runs (rebuilt whenever the set of trainable parameters changes)."""
    if world == 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


# ------------------------------------------------------------------------------------ the step

def _batch_to(batch: dict, device: torch.device) -> dict:
    """Every tensor of a batch on device (non-blocking)."""
    return {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision setting on a device (None: plain fp32)."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"unknown precision {precision!r}: choose auto, fp32 or bf16")
    if precision == "bf16":
        return torch.bfloat16
    return torch.float16 if precision == "auto" and device.type == "cuda" else None


def train_step(model: nn.Module, batch: dict, mcfg: ModelConfig, loss_cfg, optimizer, scaler, device: torch.device,
               amp: bool | torch.dtype | None) -> dict:
    """One optimiser step on a batch of pairs; returns the loss terms as floats (and num_pos).

    amp: the autocast dtype (True means float16, False/None plain fp32); losses are always computed in fp32.
    """
    dtype = torch.float16 if amp is True else (amp or None)
    with torch.autocast(device_type=device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        out = model(batch["template"], batch["search"])
    out = {k: ([t.float() for t in v] if k in ("cls", "ctr", "rays") else v) for k, v in out.items()}
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
    return {k: float(losses[k].detach()) for k in ("total", "cls", "ctr", "rays", "num_pos")}


# ------------------------------------------------------------------------------ checks on files

def _network_differences(a: ModelConfig, b: ModelConfig) -> list[str]:
    """Fields (other than TRAINING_ONLY_FIELDS) in which two model configs differ."""
    da, db = a.to_dict(), b.to_dict()
    return [k for k in da if k not in TRAINING_ONLY_FIELDS and da[k] != db.get(k)]


def _check_network(ckpt: dict, path: Path, mcfg: ModelConfig) -> None:
    """Refuse a checkpoint whose network is not the configured one (an old name-only file: today's preset)."""
    saved = checkpoint_config(ckpt, path)
    diff = _network_differences(saved, mcfg)
    if diff:
        raise CheckpointError(f"{path}: it holds a {saved.name!r} network, but --model is {mcfg.name!r} "
                              f"(they differ in {', '.join(diff)})")


def _saved_setting(saved: dict, key: str):
    """A setting of a checkpoint's meta.train_config: nested (optim.lr) or, in older files, flat (lr)."""
    for section in ("optim",):
        if isinstance(saved.get(section), dict) and key in saved[section]:
            return saved[section][key]
    return saved.get(key)


def _check_resume(ckpt: dict, path: Path, cfg: TrainConfig) -> None:
    """Refuse a checkpoint made for another architecture or without training state; warn on changed settings."""
    _check_network(ckpt, path, cfg.model)
    missing = [k for k in ("optimizer", "scheduler", "scaler", "rng") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: no training state to resume from (missing {missing}); it is a model-only file")
    saved = (ckpt.get("meta") or {}).get("train_config") or {}
    for key in ("batch", "seed", "optimizer", "schedule", "warmup", "lr"):
        now = getattr(cfg, key) if hasattr(cfg, key) else getattr(cfg.optim, key)
        before = _saved_setting(saved, key)
        if before is not None and before != now:
            print(f"warning: resuming with {key}={now!r}, the run used {before!r}: "
                  "the result will differ from an uninterrupted run")


def init_weights(model: torch.nn.Module, path: str | os.PathLike, config: ModelConfig) -> None:
    """Load a checkpoint's weights (strictly) into model to fine-tune from them; its network must match."""
    ckpt = load_checkpoint(path)
    _check_network(ckpt, Path(path), config)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: its weights do not fit the {config.name!r} network "
                              f"({str(err).splitlines()[0]})") from err


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
        return self.out / "last.pt"

    @property
    def log_path(self) -> Path:
        return self.out / "train_log.csv"

    @property
    def curve_path(self) -> Path:
        return self.out / "loss_curve.png"


def setup_run(cfg: TrainConfig) -> Run:
    """Process group (under torchrun), device, precision, run folder and seeds."""
    rank, world, local_rank = dist_info()
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and cfg.device in ("auto", "cuda") else "gloo"
        torch.distributed.init_process_group(backend=backend)
    device = pick_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    run = Run(cfg, rank, world, device, autocast_dtype(cfg.precision, device), Path(cfg.out))
    if rank == 0:
        run.out.mkdir(parents=True, exist_ok=True)
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
    _check_resume(ckpt, path, cfg)
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"])
    run.start = int(ckpt["step"])
    # A changed --iters re-plans the rest of the schedule (the factor is a pure function of step, total).
    run.scheduler = make_scheduler(run.optimizer, cfg.iters, cfg.optim.warmup, cfg.optim.schedule, start=run.start)
    if run.log_path.is_file():
        run.rows = [r for r in read_log(run.log_path) if r["step"] <= run.start]


def make_loader(run: Run) -> torch.utils.data.DataLoader:
    """Videos (converted once, on rank 0) -> PairDataset with the model's crop geometry -> step-indexed loader."""
    cfg, work = run.cfg, run.out / "data"
    if run.rank == 0:
        videos = load_training_videos(cfg.data, work, cfg.image_root, cfg.exclude_sequences)
    if run.world > 1:
        torch.distributed.barrier()
    if run.rank != 0:
        videos = load_training_videos(cfg.data, work, cfg.image_root, cfg.exclude_sequences)
    length = max(1, cfg.iters) * cfg.batch * run.world
    dataset = PairDataset(videos, cfg.pairs, length=length, seed=cfg.seed, geometry=cfg.model)
    run.end = cfg.iters if cfg.stop_at is None else max(run.start, min(cfg.iters, cfg.stop_at))
    sampler = StepSampler(run.start, run.end, cfg.batch, run.rank, run.world)
    return torch.utils.data.DataLoader(dataset, batch_size=cfg.batch, sampler=sampler,
                                       pin_memory=run.device.type == "cuda", drop_last=True,
                                       **worker_loader_kwargs(cfg.workers))


def save_run(run: Run, step: int) -> None:
    """last.pt (network, whole config, training state), the log and the loss curve; rank 0 only."""
    if run.rank != 0:
        return
    meta = {"train_config": run.cfg.to_dict(), "world_size": run.world, "device": run.device.type}
    save_checkpoint(run.ckpt_path, run.model, step=step, meta=meta, optimizer=run.optimizer.state_dict(),
                    scheduler=run.scheduler.state_dict(), scaler=run.scaler.state_dict(), rng=rng_state())
    write_log(run.log_path, run.rows)
    if run.rows:
        save_loss_curve(run.curve_path, run.rows)


def _log_row(run: Run, terms: dict, lr: float, seconds: float) -> dict:
    """One train_log.csv row for the step just taken."""
    return {"step": run.step, "loss": terms["total"], "cls": terms["cls"], "ctr": terms["ctr"],
            "rays": terms["rays"], "lr": lr, "num_pos": int(terms["num_pos"]),
            "pairs_per_s": run.cfg.batch * run.world / max(seconds, 1e-9)}


def one_step(run: Run, batch: dict) -> dict:
    """Unfreeze the backbone when its time comes, take one optimiser step, advance the schedule; the log row."""
    cfg = run.cfg
    if run.frozen and run.step >= cfg.optim.freeze_backbone_iters:
        run.frozen = False
        set_backbone_frozen(run.model, False, run.trainable)
        run.net = _wrap(run.model, run.world, run.device)  # DDP must see the newly trainable parameters
    lr = run.optimizer.param_groups[-1]["lr"]  # the head's (non-backbone) lr at this step
    terms = train_step(run.net, _batch_to(batch, run.device), cfg.model, cfg.loss, run.optimizer, run.scaler,
                       run.device, run.amp)
    run.scheduler.step()
    run.step += 1
    if not np.isfinite(terms["total"]):
        raise FloatingPointError(f"step {run.step}: the loss is {terms['total']} (lr {lr:.2e}); stopping")
    return terms | {"lr": lr}


def run_loop(run: Run, loader) -> None:
    """The training loop: steps start..end, a log row each, a checkpoint every ckpt_every steps."""
    cfg = run.cfg
    run.model.train()
    run.frozen = run.start < cfg.optim.freeze_backbone_iters
    set_backbone_frozen(run.model, run.frozen, run.trainable)
    run.net = _wrap(run.model, run.world, run.device)
    bar = tqdm(total=cfg.iters, initial=run.start, disable=not (cfg.progress and run.rank == 0),
               desc=f"train {cfg.model.name}", dynamic_ncols=True)
    run.step, tick = run.start, time.perf_counter()
    for batch in loader:
        terms = one_step(run, batch)
        now = time.perf_counter()
        run.rows.append(_log_row(run, terms, terms["lr"], now - tick))
        tick = now
        bar.update(1)
        bar.set_postfix(loss=f"{terms['total']:.3f}", cls=f"{terms['cls']:.3f}", ctr=f"{terms['ctr']:.3f}",
                        rays=f"{terms['rays']:.3f}", lr=f"{terms['lr']:.1e}")
        if cfg.ckpt_every > 0 and run.step % cfg.ckpt_every == 0 and run.step < run.end:
            save_run(run, run.step)
    bar.close()


def train(cfg: TrainConfig) -> dict:
    """Train (or resume) per `cfg`; returns {"checkpoint", "log", "curve", "steps", "final_loss", "device"}."""
    run = setup_run(cfg)
    build_training(run)
    if cfg.resume:
        restore(run)
    if run.start >= cfg.iters and run.rank == 0:
        print(f"{run.ckpt_path.name} is already at step {run.start} >= --iters {cfg.iters}: nothing to do")
    loader = make_loader(run)
    run_loop(run, loader)
    if run.step > run.start or not run.ckpt_path.is_file():
        save_run(run, run.step)
    if run.world > 1:
        torch.distributed.barrier()
    return {"checkpoint": run.ckpt_path, "log": run.log_path, "curve": run.curve_path, "steps": run.step,
            "final_loss": run.rows[-1]["loss"] if run.rows else float("nan"),
            "device": describe_device(run.device)}


# ----------------------------------------------------------------------------------------- CLI

def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """Command line -> TrainConfig: flags generated from the config dataclasses (see `experiment`)."""
    p = argparse.ArgumentParser(prog="python -m siampolar_lib.train", description=__doc__.splitlines()[0],
                                allow_abbrev=False)
    add_flags(p)
    a = p.parse_args(argv)
    try:
        cfg = config_from_args(a)
    except (ValueError, TypeError, FileNotFoundError) as err:
        p.error(str(err))
    given = vars(a)
    for name, flag in (("data", "--data"), ("out", "--out"), ("iters", "--iters")):
        if name not in given and not (a.preset and getattr(cfg, name) != getattr(TrainConfig(), name)):
            p.error(f"the following arguments are required: {flag}")
    for name in ("iters", "batch"):
        if getattr(cfg, name) < 1:
            p.error(f"--{name} must be >= 1")
    return cfg


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    cfg = parse_args(argv)
    result = train(cfg)
    if dist_info()[0] == 0:
        print(f"done: {result['steps']} steps on {result['device']}, last loss {result['final_loss']:.4f}, "
              f"checkpoint {result['checkpoint']}")
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
