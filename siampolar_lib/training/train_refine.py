"""Train the object-scale refinement stage on a trained SiamPolar network: `train_refine(RefineConfig(...))`, what
`python -m siampolar_lib.commands.train_refine` runs.

The first stage (backbone, neck, head) is loaded from init_from and frozen; only `models.refine.RayRefiner`
trains, on `data.refine_samples.RefineDataset` samples (a blurred first outline around a centre near the object's
mass centre, the true rays from that centre; with real_first_p, that share of them the first stage's own centre and
rays on the frame, from a first-stage cache recorded from the same first stage: `data.first_stage_cache`). Loss: the
Polar IoU loss (-log IoU of the rays) after every iteration, averaged. AdamW, linear warm-up then cosine
(`schedule.lr_factor`); precision auto: bf16 autocast where the hardware has native bf16 (`native_bf16`), else fp32.
A log row every log_every steps; every ckpt_every steps and at the end: `last.pt` (the whole network, first stage
included, with the optimiser, RNG and log rows: what `resume` continues from), a model-only `step{N}.pt`, and
`train_log.csv` (a copy of the checkpoint's rows, `log.write_log`), whose checkpoint rows add the stage's polar
IoU on samples from the validation fold (held out of training): first rays, and refined rays, against the truth.
The samples of step s are a pure function of (seed, s), so a resumed run computes what an uninterrupted one does.

    python -m siampolar_lib.commands.train_refine --init-from checkpoints/siampolar_lite0.pt --data DAVIS_TRAIN_ROOT \
        --exclude-sequences dog-agility,motorbike,surf --out runs/refine --iters 3000
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from siampolar_lib.data.first_stage_cache import FirstStageCache, read_first_stage_cache
from siampolar_lib.data.pairs import worker_loader_kwargs
from siampolar_lib.data.refine_samples import RefineDataset, RefineSampleConfig
from siampolar_lib.data.sources import load_training_videos
from siampolar_lib.device import pick_device, rng_state, seed_everything, set_rng_state
from siampolar_lib.errors import CheckpointError, UserError
from siampolar_lib.io import sha256
from siampolar_lib.models.siampolar import SiamPolar
from siampolar_lib.outputs import check_output_folder, clean_stale_temps, output_lock
from siampolar_lib.splits import VALIDATION_FOLD_SEQUENCES
from siampolar_lib.training.checkpoint import checkpoint_config, first_stage_sha256, load_checkpoint, save_checkpoint
from siampolar_lib.training.distributed import StepSampler
from siampolar_lib.training.log import write_log
from siampolar_lib.training.losses import polar_iou
from siampolar_lib.training.schedule import lr_factor

LOG_COLUMNS = ("step", "samples", "loss", "iou_first", "iou_refined", "lr", "samples_per_s", "val_iou_first",
               "val_iou_refined")
VAL_SAMPLES = 256  # fixed validation-fold samples scored at every checkpoint
GRAD_CLIP = 10.0  # the stage's gradient norm is clipped here
# Temp files of a write a kill interrupted (io.atomic_write's `.<stem>.XXXX.tmp<suffix>`); removed at the next
# start, under the run's lock, so never a live writer's file.
STALE_TEMPS = (".*.tmp*",)
# What a resumed run must share with the run it continues (else it would not compute what one run computes);
# iters may change (the schedule is re-planned from the step reached), and so may every setting not listed.
RESUME_FIELDS = ("init_from", "data", "exclude_sequences", "batch", "lr", "warmup", "refine_iters", "refine_channels",
                 "refine_size", "seed", "precision", "real_first_p", "real_first_cache")

PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 natively: CUDA that supports it, or a CPU with AVX-512 BF16 (or AMX).

    Elsewhere (AVX2 CPUs, most laptops) autocast emulates bf16: on a 2-core AVX2 EPYC a stage step ran at 5.7
    samples/s in bf16 against about 38 in fp32 (checkpoints/README.md, cross-validation).
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = torch.cpu
        checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        return any(check() for check in checks if check is not None)
    return False


def stage_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The stage's autocast dtype: bf16 (bf16, or auto on hardware with native bf16) or None (fp32)."""
    return torch.bfloat16 if precision == "bf16" or (precision == "auto" and native_bf16(device)) else None


@dataclass(frozen=True)
class RefineConfig:
    """One refinement phase: every setting of `commands.train_refine`, checked before any work."""

    init_from: str  # the trained SiamPolar checkpoint (with or without a stage); its first stage is frozen
    data: tuple[str, ...]  # DAVIS roots and/or davis2coco JSONs the samples are cut from
    out: str  # run folder: last.pt, step{N}.pt, train_log.csv (new or empty, or a run to resume)
    exclude_sequences: tuple[str, ...] = VALIDATION_FOLD_SEQUENCES  # kept out of training; those of the
    # validation fold are scored at each checkpoint
    iters: int = 3000  # TOTAL optimiser steps (the schedule's length; a resume continues up to it)
    batch: int = 32  # samples per step
    lr: float = 1e-3  # AdamW's peak learning rate
    warmup: int = 100  # linear warm-up steps before the cosine decay
    refine_iters: int = 2  # iterations of the stage (1-4); the weights are shared by iterations
    refine_channels: int = 64  # feature width of a new stage (a multiple of 16); a checkpoint's own stage keeps its
    refine_size: int = 128  # crop side of a new stage, pixels (a multiple of 32)
    ckpt_every: int = 500  # last.pt, step{N}.pt and the fold's score every K steps (and at the end)
    log_every: int = 20  # a log row every K steps
    stop_at: int | None = None  # stop after this step, the schedule still planned for iters (resume continues)
    seed: int = 0  # the samples of step s are a function of (seed, s); also seeds a new stage's weights
    real_first_p: float = 0.0  # share of samples with the first stage's real centre and rays (where the cache has
    # the frame; the others synthetic); 0: every sample synthetic
    real_first_cache: str = ""  # a first-stage cache (.npz, data_scripts/cache_first_stage.py) of init_from's first
    # stage; "": none
    workers: int = 1  # DataLoader worker processes (0: in this process)
    precision: str = "auto"  # auto: bf16 where the hardware has it natively (stage_dtype), else fp32; bf16; fp32
    device: str = "auto"  # auto (CUDA, MPS, CPU), cpu, cuda, mps
    progress: bool = True  # print each log row
    resume: bool = False  # continue the run in out/last.pt (same RESUME_FIELDS)

    def __post_init__(self):
        """Refuse a setting no run can use, in one line naming its flag (before any file is made; a first-stage
        cache is read, so that a missing or damaged one is refused here)."""
        object.__setattr__(self, "data", tuple(str(d) for d in self.data))  # lists from a notebook are fine
        object.__setattr__(self, "exclude_sequences", tuple(self.exclude_sequences))
        if not self.data:
            raise UserError("no training data: pass --data PATH (a DAVIS root or a davis2coco json)")
        counts = {"--iters": (self.iters, 1), "--batch": (self.batch, 1), "--ckpt-every": (self.ckpt_every, 1),
                  "--log-every": (self.log_every, 1), "--warmup": (self.warmup, 0), "--workers": (self.workers, 0),
                  "--seed": (self.seed, 0), "--stop-at": (1 if self.stop_at is None else self.stop_at, 1)}
        for flag, (v, lo) in counts.items():
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise UserError(f"{flag} {v!r}: must be an integer >= {lo}")
        for flag, v, k, lo, hi in (("--refine-iters", self.refine_iters, 1, 1, 4),
                                   ("--refine-channels", self.refine_channels, 16, 16, 512),
                                   ("--refine-size", self.refine_size, 32, 32, 512)):
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi or v % k:
                raise UserError(f"{flag} {v!r}: must be an integer in [{lo}, {hi}]"
                                + (f", a multiple of {k}" if k > 1 else ""))
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not 0 < self.lr < float("inf"):
            raise UserError(f"--lr {self.lr!r}: must be a finite number > 0")
        if self.precision not in PRECISIONS:
            raise UserError(f"--precision {self.precision!r}: must be one of {', '.join(PRECISIONS)}")
        p = self.real_first_p
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise UserError(f"--real-first-p {p!r}: must be a probability in [0, 1]")
        if p > 0 and not self.real_first_cache:
            raise UserError(f"--real-first-p {p}: needs --real-first-cache (data_scripts/cache_first_stage.py)")
        if self.real_first_cache:
            read_first_stage_cache(self.real_first_cache)

    def to_dict(self) -> dict:
        """The config as plain values (tuples as lists): the checkpoint's meta.refine_config."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def refine_model(init_from: str | Path, iters: int, device: torch.device, channels: int = 64,
                 size: int = 128) -> SiamPolar:
    """The network of init_from with a refinement stage of `iters` iterations; only the stage's weights train.

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


def check_refine_folder(cfg: RefineConfig) -> Path:
    """The run folder before any work: new or empty, or, with resume, a run's folder holding last.pt."""
    out = check_output_folder(cfg.out)
    if cfg.resume and not (out / "last.pt").is_file():
        raise FileNotFoundError(f"{out / 'last.pt'}: --resume given but there is no checkpoint to resume from")
    if not cfg.resume and out.exists() and any(out.iterdir()):
        raise UserError(f"{out}: --out already holds files (an earlier run?); pass --resume to continue it, or "
                        "choose a new folder")
    return out


def check_first_stage_cache(cache: FirstStageCache, model: SiamPolar) -> None:
    """UserError naming the cache when it was recorded from another first stage than `model`'s (its first_stage_sha256,
    `training.checkpoint.first_stage_sha256`) or holds another number of rays."""
    mine, theirs = first_stage_sha256(model), cache.meta.get("first_stage_sha256")
    if theirs != mine:
        raise UserError(f"{cache.path}: --real-first-cache was recorded from another first stage "
                        f"({cache.meta.get('checkpoint')}, {str(theirs)[:12]}) than --init-from's ({mine[:12]}); "
                        "record it from --init-from's first stage (data_scripts/cache_first_stage.py)")
    if cache.num_rays != model.config.num_rays:
        raise UserError(f"{cache.path}: --real-first-cache holds {cache.num_rays} rays a frame, the network "
                        f"{model.config.num_rays}")


def prepare(cfg: RefineConfig) -> tuple[SiamPolar, list, list, torch.device, FirstStageCache | None]:
    """The network, the videos and the first-stage cache of a run, read before anything is written: (model, train
    videos, fold videos, device, cache or None). The fold is the validation-fold sequences the run excludes (scored
    at each checkpoint); the cache must come from the network's first stage (`check_first_stage_cache`)."""
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    videos = load_training_videos(list(cfg.data), exclude=list(cfg.exclude_sequences))
    held = set(VALIDATION_FOLD_SEQUENCES) & set(cfg.exclude_sequences)
    fold = [v for v in load_training_videos(list(cfg.data)) if v.name.split("/")[0] in held]
    model = refine_model(cfg.init_from, cfg.refine_iters, device, cfg.refine_channels, cfg.refine_size)
    cache = read_first_stage_cache(cfg.real_first_cache) if cfg.real_first_cache else None
    if cache is not None:
        check_first_stage_cache(cache, model)
    return model, videos, fold, device, cache


def _comparable(key: str, value):
    """A RESUME_FIELDS value as compared: paths resolved (a run may be resumed from another working folder)."""
    if key == "init_from" and value is not None:
        return os.path.realpath(value)
    if key == "data" and value is not None:
        return [os.path.realpath(v) for v in value]
    if key == "real_first_cache" and value:
        return os.path.realpath(value)
    return list(value) if isinstance(value, tuple) else value


def check_refine_resume(ckpt: dict, path: Path, cfg: RefineConfig) -> None:
    """One line when `ckpt` (out/last.pt, loaded) cannot be continued by `cfg`: no training state, another setting
    of RESUME_FIELDS (a field the run's config predates counts as its default, what such a run did) or another
    first-stage cache file; a changed iters is allowed, with a warning (the schedule is re-planned)."""
    missing = [k for k in ("optimizer", "rng", "log") if k not in ckpt]
    saved = ckpt["meta"].get("refine_config")
    if missing or not isinstance(saved, dict):
        raise CheckpointError(f"{path}: not a refinement run's checkpoint with training state (missing "
                              f"{missing or ['meta.refine_config']}); start a new --out")
    now = cfg.to_dict()
    saved = {f.name: f.default for f in dataclasses.fields(RefineConfig)
             if f.name in RESUME_FIELDS and f.default is not dataclasses.MISSING} | saved
    diff = [k for k in RESUME_FIELDS if _comparable(k, saved.get(k)) != _comparable(k, now[k])]
    if diff:
        k = diff[0]
        raise UserError(f"{path}: --resume with another {', '.join('--' + d.replace('_', '-') for d in diff)} than "
                        f"the run ({k}: {saved.get(k)!r}, now {now[k]!r}); resume with the run's settings, or start "
                        "a new --out")
    cache_sha = ckpt["meta"].get("real_first_cache_sha256")
    if cfg.real_first_cache and cache_sha and cache_sha != sha256(cfg.real_first_cache):
        raise UserError(f"{cfg.real_first_cache}: --real-first-cache is not the file the run in {path.parent} "
                        "started with (rebuilt since?); start a new --out")
    if saved.get("iters") != cfg.iters:
        print(f"warning: resuming with --iters {cfg.iters}, the run planned {saved.get('iters')}: the schedule is "
              "re-planned, so the result differs from an uninterrupted run", file=sys.stderr)


def restore(cfg: RefineConfig, model: SiamPolar, opt: torch.optim.Optimizer) -> tuple[int, list[dict]]:
    """Continue from out/last.pt: the weights, optimiser and RNG restored; returns (step reached, log rows)."""
    path = Path(cfg.out) / "last.pt"
    ckpt = load_checkpoint(path)
    check_refine_resume(ckpt, path, cfg)
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    set_rng_state(ckpt["rng"])
    step = int(ckpt["step"])
    return step, [dict(r) for r in ckpt["log"] if r["step"] <= step]


def save_refine(cfg: RefineConfig, model: SiamPolar, opt: torch.optim.Optimizer, step: int, rows: list[dict]) -> None:
    """last.pt (network, optimiser, RNG and log rows in one atomic write), a model-only step{N}.pt, the CSV copy."""
    out = Path(cfg.out)
    meta = {"stage": "refine", "init_from": str(cfg.init_from), "samples": step * cfg.batch,
            "refine_config": cfg.to_dict(),
            "real_first_cache_sha256": sha256(cfg.real_first_cache) if cfg.real_first_cache else None}
    save_checkpoint(out / "last.pt", model, step, meta=meta, optimizer=opt.state_dict(), rng=rng_state(), log=rows)
    save_checkpoint(out / f"step{step}.pt", model, step, meta=meta)
    write_log(out / "train_log.csv", rows, LOG_COLUMNS)


def train_refine(cfg: RefineConfig) -> Path:
    """One refinement phase (module docstring) per `cfg`, or its continuation (resume); returns out/last.pt.

    The run owns cfg.out: checked first (`check_refine_folder`), the checkpoint and data read before the folder
    is made (a refused run leaves nothing), a second run into it refused while this one holds its lock, and the
    temps a killed run left removed.
    """
    out = check_refine_folder(cfg)
    prepared = prepare(cfg)
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        clean_stale_temps(out, STALE_TEMPS)
        try:
            return run_phase(cfg, *prepared)
        except BaseException:
            if made and not any(out.iterdir()):
                out.rmdir()  # only an empty folder: whatever the run wrote stays
            raise


def _log_row(cfg: RefineConfig, step: int, loss, rays, batch: dict, lr: float, steps: int, seconds: float) -> dict:
    """One log row for the step just taken, the speed over the `steps` since the last row (the validation columns
    NaN until a checkpoint fills them)."""
    return {"step": step, "samples": step * cfg.batch, "loss": round(float(loss.detach()), 5),
            "iou_first": round(float(polar_iou(batch["first"], batch["rays"]).mean()), 5),
            "iou_refined": round(float(polar_iou(rays.detach().float(), batch["rays"]).mean()), 5),
            "lr": lr, "samples_per_s": round(steps * cfg.batch / max(seconds, 1e-9), 1),
            "val_iou_first": float("nan"), "val_iou_refined": float("nan")}


def run_phase(cfg: RefineConfig, model: SiamPolar, videos: list, fold: list, device: torch.device,
              cache: FirstStageCache | None = None) -> Path:
    """The loop of `prepare`'s network on its videos (and first-stage cache), steps start..end, from a resume's step
    or 0: out/last.pt."""
    size = model.config.refine_size
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4)
    start, rows = restore(cfg, model, opt) if cfg.resume else (0, [])
    end = cfg.iters if cfg.stop_at is None else max(start, min(cfg.iters, cfg.stop_at))
    data = RefineDataset(videos, RefineSampleConfig(real_first_p=cfg.real_first_p), length=cfg.iters * cfg.batch,
                         seed=cfg.seed, size=size, first_stage=cache)
    loader = DataLoader(data, batch_size=cfg.batch, sampler=StepSampler(start, end, cfg.batch), drop_last=True,
                        **worker_loader_kwargs(cfg.workers))
    val = fold_samples(fold, size) if fold else None
    dtype = stage_dtype(cfg.precision, device)
    t_last, step, logged = time.perf_counter(), start, start
    for step, batch in enumerate(loader, start=start + 1):
        lr = cfg.lr * lr_factor(step - 1, cfg.iters, cfg.warmup)  # a pure function of the step: resumes exactly
        for g in opt.param_groups:
            g["lr"] = lr
        batch = {k: v.to(device) for k, v in batch.items() if torch.is_tensor(v)}
        model.refiner.train()
        loss, rays = refine_loss(model, batch, dtype)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
        opt.step()
        last = step == end
        if step % cfg.log_every and step % cfg.ckpt_every and not last:
            continue
        rows.append(_log_row(cfg, step, loss, rays, batch, lr, step - logged, time.perf_counter() - t_last))
        if step % cfg.ckpt_every == 0 or last:
            model.refiner.eval()
            if val is not None:
                rows[-1]["val_iou_first"], rows[-1]["val_iou_refined"] = (round(x, 5) for x in
                                                                          score_fold(model, val, device))
            save_refine(cfg, model, opt, step, rows)
        if cfg.progress:
            print(" ".join(f"{k}={v}" for k, v in rows[-1].items()), flush=True)
        t_last, logged = time.perf_counter(), step  # the checkpoint's time is not the samples'
    if step < end:
        raise UserError(f"the data gave {step} of {end} steps")
    return Path(cfg.out) / "last.pt"
