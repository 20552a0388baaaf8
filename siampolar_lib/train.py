"""Train a SiamPolar network on template-search pairs: `train(TrainConfig)` and `python -m siampolar_lib.train`.

One step = one batch of pairs -> model -> targets -> losses -> SGD/AdamW step (grad clip 35, AMP on CUDA).
The pairs of step s are a pure function of (seed, s): the dataset item i is seeded by (seed, i), and step s
of rank r reads items s*B*W + r*B ... + B-1 (W processes). So `--resume` after a kill repeats exactly what
an uninterrupted run does, and `torchrun --nproc_per_node=N` splits each step's items over the ranks.
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .cli import cli_main
from .device import describe_device, pick_device, seed_everything
from .schedule import lr_factor, make_optimizer, make_scheduler, set_backbone_frozen, trainable_backbone
from .trainlog import read_log, save_loss_curve, write_log

GRAD_CLIP = 35.0  # REF: gradient clipping at L2 norm 35


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; the CLI is a thin layer over it."""
    config: str = "quick"                # model size: lite0, r18, r50, r101, quick
    data: tuple[str, ...] = ()           # COCO jsons (from davis2coco) and/or DAVIS roots
    out: str = "runs/train"              # run folder: last.pt, train_log.csv, loss_curve.png
    iters: int = 100                     # TOTAL number of steps (a resume continues up to it)
    batch: int = 8                       # pairs per step per process
    lr: float = 0.01                     # base lr (head); backbone gets 0.1x once unfrozen
    optimizer: str = "sgd"               # sgd (momentum 0.9) or adamw
    weight_decay: float = 1e-4           # REF 1e-4; biases and norm scales get none
    schedule: str = "cosine"             # cosine or step decay after warm-up
    warmup: int = 500                    # linear warm-up steps from lr/3 (REF 500)
    freeze_backbone_iters: int = 0       # backbone frozen (no grad, BN fixed) for this many steps
    ckpt_every: int = 100                # write last.pt every K steps (and at the end)
    workers: int = 0                     # DataLoader worker processes
    device: str = "auto"                 # auto (CUDA, MPS, CPU), cpu, cuda, mps
    resume: bool = False                 # continue from out/last.pt
    overwrite: bool = False              # start afresh in an `out` that holds a run (its files are replaced)
    seed: int = 0                        # data order, augmentation and init all follow from it
    exclude_sequences: tuple[str, ...] = ()  # sequence names never used (e.g. the held-out fold)
    image_root: str | None = None        # image root for COCO jsons (default: inferred from the json)
    pretrained: bool = True              # ImageNet backbone weights (only if present locally)
    progress: bool = True                # tqdm bar
    stop_at: int | None = None           # stop (checkpoint) after this step, schedule unchanged: a clean "kill"
    init_from: str | None = None         # fine-tune: start from this checkpoint's weights (new optimiser, step 0)
    frozen_stages: int | None = None     # backbone stages kept frozen throughout (None: the model config's)
    precision: str = "auto"              # auto (fp16 AMP on CUDA, fp32 elsewhere), fp32, bf16 (autocast, CPU or CUDA)


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
    from .data.coco import davis_to_coco, load_coco_videos
    from .data.davis import folder_sequences

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
    return {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision setting on a device (None: plain fp32)."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"unknown precision {precision!r}: choose auto, fp32 or bf16")
    if precision == "bf16":
        return torch.bfloat16
    return torch.float16 if precision == "auto" and device.type == "cuda" else None


def train_step(model: nn.Module, batch: dict, mcfg, loss_cfg, optimizer, scaler, device: torch.device,
               amp: bool | torch.dtype | None) -> dict:
    """One optimiser step on a batch of pairs; returns the loss terms as floats (and num_pos).

    amp: the autocast dtype (True means float16, False/None plain fp32); losses are always computed in fp32.
    """
    from .losses import compute_losses
    from .targets import build_targets

    dtype = torch.float16 if amp is True else (amp or None)
    with torch.autocast(device_type=device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        out = model(batch["template"], batch["search"])
    out = {k: ([t.float() for t in v] if k in ("cls", "ctr", "rays") else v) for k, v in out.items()}
    with torch.no_grad():
        targets = build_targets(batch["search_mask"], out["points"], out["strides"], mcfg.regress_ranges,
                                mcfg.centre_radius, mcfg.num_rays)
    losses = compute_losses(out, targets, loss_cfg)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(losses["total"]).backward()
    scaler.unscale_(optimizer)
    params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
    scaler.step(optimizer)
    scaler.update()
    return {k: float(losses[k].detach()) for k in ("total", "cls", "ctr", "rays", "num_pos")}


# ------------------------------------------------------------------------------------ training

def _check_resume(ckpt: dict, path: Path, cfg: TrainConfig) -> None:
    """Refuse a checkpoint made for another architecture or without training state."""
    from .checkpoint import CheckpointError

    if ckpt.get("config") != cfg.config:
        raise CheckpointError(f"{path}: it holds a {ckpt.get('config')!r} network, but --config is {cfg.config!r}")
    missing = [k for k in ("optimizer", "scheduler", "scaler", "rng") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: no training state to resume from (missing {missing}); it is a model-only file")
    saved = (ckpt.get("meta") or {}).get("train_config") or {}
    for key in ("batch", "seed", "optimizer", "schedule", "warmup", "lr", "data", "exclude_sequences"):
        now = getattr(cfg, key)
        now = list(now) if isinstance(now, tuple) else now
        if key in saved and saved[key] != now:
            print(f"warning: resuming with --{key.replace('_', '-')} {now!r}, the run used {saved[key]!r}: "
                  "the result will differ from an uninterrupted run", file=sys.stderr)


def resume_log(ckpt: dict, ckpt_path: Path, log_path: Path) -> list[dict]:
    """The log rows of steps 1..ckpt["step"]: from the checkpoint (where they are saved with the weights), else
    (a checkpoint from before the log moved into it) from the CSV; a gap or a duplicate is a CheckpointError."""
    from .checkpoint import CheckpointError

    start = int(ckpt["step"])
    if "log" in ckpt:
        rows = [dict(r) for r in ckpt["log"] if r["step"] <= start]
    elif log_path.is_file():
        rows = [r for r in read_log(log_path) if r["step"] <= start]
    else:
        rows = []
    steps = [r["step"] for r in rows]
    if rows and steps != list(range(steps[0], start + 1)):
        raise CheckpointError(f"{ckpt_path}: its log does not hold each step up to {start} exactly once")
    return rows


def init_weights(model: torch.nn.Module, path: str | os.PathLike, config: str) -> None:
    """Load a checkpoint's weights (strictly) into model to fine-tune from them; its config must match."""
    from .checkpoint import CheckpointError, load_checkpoint

    ckpt = load_checkpoint(path)
    if ckpt.get("config") != config:
        raise CheckpointError(f"{path}: it holds a {ckpt.get('config')!r} network, but --config is {config!r}")
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: its weights do not fit the {config!r} network ({str(err).splitlines()[0]})") from err


RUN_FILES = ("last.pt", "train_log.csv", "loss_curve.png")
STALE_TEMPS = ("last.pt.*.tmp", ".train_log.csv.tmp*", ".loss_curve.png.tmp*", "data/*/.*.json.*")


def check_run_folder(cfg: TrainConfig) -> Path:
    """Check a run's arguments before any work: the out folder, --resume/--overwrite, data and init paths.

    A folder holding a run (last.pt or train_log.csv) is refused unless --resume (continue it) or
    --overwrite (start afresh): training into it silently replaced a 30-step run by a 3-step one.
    """
    from .cli import UserError, check_output_folder

    out = check_output_folder(cfg.out)
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
    return out


def train(cfg: TrainConfig) -> dict:
    """Train (or resume) per `cfg`; returns {"checkpoint", "log", "curve", "steps", "final_loss", "device"}.

    The run owns `cfg.out`: every argument is checked first (`check_run_folder`), a second run into the same
    folder is refused while this one holds its lock, and temp files a killed run left are removed.
    """
    from .cli import clean_stale_temps, output_lock

    out = check_run_folder(cfg)
    if dist_info()[0] != 0:
        return _train(cfg)
    with output_lock(out):
        clean_stale_temps(out, STALE_TEMPS)
        if cfg.overwrite:
            for name in RUN_FILES:
                (out / name).unlink(missing_ok=True)
        return _train(cfg)


def _train(cfg: TrainConfig) -> dict:
    """The training run itself (arguments already checked by `train`)."""
    from tqdm.auto import tqdm

    from . import build_model
    from .checkpoint import load_checkpoint, save_checkpoint
    from .data.pairs import PairConfig, PairDataset, worker_loader_kwargs
    from .losses import LossConfig
    from .models.config import get_config

    rank, world, local_rank = dist_info()
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and cfg.device in ("auto", "cuda") else "gloo"
        torch.distributed.init_process_group(backend=backend)
    device = pick_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    amp = autocast_dtype(cfg.precision, device)
    out = Path(cfg.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path, curve_path = out / "last.pt", out / "train_log.csv", out / "loss_curve.png"

    seed_everything(cfg.seed)
    mcfg = get_config(cfg.config)
    if cfg.frozen_stages is not None:
        mcfg = dataclasses.replace(mcfg, frozen_stages=cfg.frozen_stages)
    model = build_model(mcfg, pretrained=cfg.pretrained and cfg.init_from is None).to(device)
    if cfg.init_from is not None and not cfg.resume:
        init_weights(model, cfg.init_from, cfg.config)
    trainable = trainable_backbone(model)
    optimizer = make_optimizer(model, cfg.optimizer, cfg.lr, cfg.weight_decay)
    scheduler = make_scheduler(optimizer, cfg.iters, cfg.warmup, cfg.schedule)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)

    start, rows = 0, []
    if cfg.resume:
        ckpt = load_checkpoint(ckpt_path)
        _check_resume(ckpt, ckpt_path, cfg)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        start = int(ckpt["step"])
        # A changed --iters re-plans the rest of the schedule (the factor is a pure function of step, total).
        scheduler.last_epoch = start
        for group, base in zip(optimizer.param_groups, scheduler.base_lrs):
            group["lr"] = base * lr_factor(start, cfg.iters, cfg.warmup, cfg.schedule)
        scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]
        rows = resume_log(ckpt, ckpt_path, log_path)
        if rank == 0:
            write_log(log_path, rows)  # a kill between the checkpoint and the CSV left it stale: rebuild it
    if start >= cfg.iters and rank == 0:
        print(f"{ckpt_path.name} is already at step {start} >= --iters {cfg.iters}: nothing to do")

    # The DAVIS -> COCO conversion happens once, on rank 0, before the others read it.
    work = out / "data"
    if rank == 0:
        videos = load_training_videos(cfg.data, work, cfg.image_root, cfg.exclude_sequences)
    if world > 1:
        torch.distributed.barrier()
    if rank != 0:
        videos = load_training_videos(cfg.data, work, cfg.image_root, cfg.exclude_sequences)
    length = max(1, cfg.iters) * cfg.batch * world
    dataset = PairDataset(videos, PairConfig(), length=length, seed=cfg.seed)
    end = cfg.iters if cfg.stop_at is None else max(start, min(cfg.iters, cfg.stop_at))
    sampler = StepSampler(start, end, cfg.batch, rank, world)
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch, sampler=sampler,
                                         pin_memory=device.type == "cuda", drop_last=True,
                                         **worker_loader_kwargs(cfg.workers))

    model.train()
    frozen = start < cfg.freeze_backbone_iters
    set_backbone_frozen(model, frozen, trainable)
    net = _wrap(model, world, device)
    loss_cfg = LossConfig()
    bar = tqdm(total=cfg.iters, initial=start, disable=not (cfg.progress and rank == 0),
               desc=f"train {cfg.config}", dynamic_ncols=True)

    def save(step: int) -> None:
        if rank != 0:
            return
        meta = {"train_config": dataclasses.asdict(cfg), "world_size": world, "device": device.type}
        meta["train_config"]["data"] = list(cfg.data)
        meta["train_config"]["exclude_sequences"] = list(cfg.exclude_sequences)
        # The log rides inside the checkpoint, so both are written in one atomic step; the CSV is a copy.
        save_checkpoint(ckpt_path, model, step=step, meta=meta, optimizer=optimizer.state_dict(),
                        scheduler=scheduler.state_dict(), scaler=scaler.state_dict(), rng=rng_state(), log=rows)
        write_log(log_path, rows)
        if rows:
            save_loss_curve(curve_path, rows)

    step, tick = start, time.perf_counter()
    for batch in loader:
        if frozen and step >= cfg.freeze_backbone_iters:
            frozen = False
            set_backbone_frozen(model, False, trainable)
            net = _wrap(model, world, device)  # DDP must see the newly trainable parameters
        lr = optimizer.param_groups[-1]["lr"]  # the head's (non-backbone) lr at this step
        terms = train_step(net, _batch_to(batch, device), mcfg, loss_cfg, optimizer, scaler, device, amp)
        scheduler.step()
        step += 1
        now = time.perf_counter()
        rows.append({"step": step, "loss": terms["total"], "cls": terms["cls"], "ctr": terms["ctr"],
                     "rays": terms["rays"], "lr": lr, "num_pos": int(terms["num_pos"]),
                     "pairs_per_s": cfg.batch * world / max(now - tick, 1e-9)})
        tick = now
        if not np.isfinite(terms["total"]):
            raise FloatingPointError(f"step {step}: the loss is {terms['total']} (lr {lr:.2e}); stopping")
        bar.update(1)
        bar.set_postfix(loss=f"{terms['total']:.3f}", cls=f"{terms['cls']:.3f}", ctr=f"{terms['ctr']:.3f}",
                        rays=f"{terms['rays']:.3f}", lr=f"{lr:.1e}")
        if cfg.ckpt_every > 0 and step % cfg.ckpt_every == 0 and step < end:
            save(step)
    bar.close()
    if step > start or not ckpt_path.is_file():
        save(step)
    if world > 1:
        torch.distributed.barrier()
    return {"checkpoint": ckpt_path, "log": log_path, "curve": curve_path, "steps": step,
            "final_loss": rows[-1]["loss"] if rows else float("nan"), "device": describe_device(device)}


# ----------------------------------------------------------------------------------------- CLI

def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """Command line -> TrainConfig (see the module docstring)."""
    from .cli import ArgumentParser

    p = ArgumentParser(prog="python -m siampolar_lib.train", description=__doc__.splitlines()[0])
    p.add_argument("--config", default="quick", choices=["lite0", "r18", "r50", "r101", "quick"])
    p.add_argument("--data", action="append", required=True, help="davis2coco json or DAVIS root (repeatable)")
    p.add_argument("--image-root", default=None, help="DAVIS root the json's file names are relative to")
    p.add_argument("--out", required=True, help="run folder, e.g. runs/NAME")
    p.add_argument("--iters", type=int, required=True, help="TOTAL steps (a resume continues up to it)")
    p.add_argument("--batch", type=int, default=TrainConfig.batch)
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--weight-decay", type=float, default=TrainConfig.weight_decay)
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adamw"])
    p.add_argument("--schedule", default="cosine", choices=["cosine", "step"])
    p.add_argument("--warmup", type=int, default=TrainConfig.warmup)
    p.add_argument("--freeze-backbone-iters", type=int, default=0)
    p.add_argument("--ckpt-every", type=int, default=TrainConfig.ckpt_every)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--overwrite", action="store_true", help="start afresh in an OUT that holds a run (replacing it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--exclude-sequences", default="", help="comma-separated sequence names to leave out")
    p.add_argument("--no-pretrained", action="store_true", help="random backbone init")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    p.add_argument("--init-from", default=None, metavar="CKPT",
                   help="fine-tune: start from this checkpoint's weights with a fresh optimiser and schedule")
    p.add_argument("--frozen-stages", type=int, default=None, metavar="K",
                   help="keep the first K backbone stages frozen for the whole run (default: the model config's)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="auto: fp16 AMP on CUDA, fp32 elsewhere; bf16: bfloat16 autocast (fast on AVX-512 BF16 CPUs)")
    p.add_argument("--stop-at", type=int, default=None,
                   help="stop after this step without changing the schedule (time-sliced runs; --resume continues)")
    a = p.parse_args(argv)
    for name in ("iters", "batch"):
        if getattr(a, name) < 1:
            p.error(f"--{name} must be >= 1")
    return TrainConfig(config=a.config, data=tuple(a.data), out=a.out, iters=a.iters, batch=a.batch, lr=a.lr,
                       optimizer=a.optimizer, weight_decay=a.weight_decay, schedule=a.schedule,
                       warmup=a.warmup, freeze_backbone_iters=a.freeze_backbone_iters, ckpt_every=a.ckpt_every,
                       workers=a.workers, device=a.device, resume=a.resume, overwrite=a.overwrite, seed=a.seed,
                       exclude_sequences=tuple(s for s in a.exclude_sequences.split(",") if s),
                       image_root=a.image_root, pretrained=not a.no_pretrained, progress=not a.no_progress,
                       stop_at=a.stop_at, init_from=a.init_from, frozen_stages=a.frozen_stages,
                       precision=a.precision)


@cli_main
def main(argv: list[str] | None = None) -> int:
    """CLI entry point; bad input is one line on stderr and exit status 2."""
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
