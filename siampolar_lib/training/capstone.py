"""The capstone's recipe (notebook 09): the lite0 first stage from ImageNet weights, then the refinement stage on top of
it, on the DAVIS-2016 train split with the validation fold held out, sized to about 30 minutes on 2 CPU cores.

    recipe = CapstoneConfig(seed=0)                        every number of the recipe, one frozen dataclass
    claim_run_folder(recipe, data, out)                    out/recipe.json: a folder holds one recipe's run
    first = train_first_stage(recipe, data, out)           `training.train.train` into out/first_stage/
    stage = train_stage(recipe, first["checkpoint"], data, out)   `train_refine.train_refine` into out/stage/

Both steps resume a run that was stopped (their run folders keep last.pt), and return what they did: checkpoint,
log, steps and the training time read from the log. Scoring the result is `apps.capstone` (it tracks, so it sits
above this floor); `CAPSTONE_RECIPE` is the recipe the band of `data_scripts/capstone_band.py` measures.
"""
from __future__ import annotations

import dataclasses
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from siampolar_lib.data.sources import training_sequences
from siampolar_lib.errors import UserError
from siampolar_lib.io import write_text
from siampolar_lib.models.backbone import PretrainedWeightsUnavailable, lite0_weights_path
from siampolar_lib.models.config import CONFIGS, get_config
from siampolar_lib.splits import REAL_VAL_SEQUENCES, VALIDATION_FOLD_SEQUENCES
from siampolar_lib.training.config import OptimConfig, TrainConfig
from siampolar_lib.training.log import read_log
from siampolar_lib.training.train import train
from siampolar_lib.training.train_refine import RefineConfig, train_refine

FIRST_CKPT_EVERY = 200  # the first stage's last.pt every 200 steps: a stopped run loses at most that many
STAGE_CKPT_EVERY = 250  # the stage's checkpoint (and its score on the fold's samples) every 250 steps
RECIPE_FILE = "recipe.json"  # in a run folder: the recipe and data it trains, so a resume cannot mix two recipes
PRECISIONS = ("fp32", "bf16")


def _check_int(name: str, v, low: int) -> None:
    """UserError naming the field when v is not an integer >= low."""
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise UserError(f"{name} {v!r}: must be an integer >= {low}")


@dataclass(frozen=True)
class CapstoneConfig:
    """The capstone's recipe: both stages' steps, batches and rates, what is held out, the precision and the seed."""

    model: str = "lite0"  # the network preset (models.config); its backbone starts from ImageNet weights
    first_iters: int = 450  # first stage: SGD steps, the backbone frozen throughout (as in the shipped phase 1)
    first_batch: int = 16  # first stage: pairs per step
    first_lr: float = 0.01  # first stage: peak lr of the neck and head (SGD, momentum 0.9)
    first_warmup: int = 100  # first stage: linear warm-up steps from lr/3, then cosine
    stage_iters: int = 500  # refinement stage: AdamW steps, the first stage frozen (issue 30's screening length)
    stage_batch: int = 32  # refinement stage: samples per step
    stage_lr: float = 1e-3  # refinement stage: AdamW peak lr
    stage_warmup: int = 100  # refinement stage: linear warm-up steps, then cosine
    stage_channels: int = 32  # refinement stage: feature width (the shipped stage's)
    stage_refine_iters: int = 2  # refinement stage: iterations, one set of weights (the shipped stage's)
    exclude_sequences: tuple[str, ...] = VALIDATION_FOLD_SEQUENCES  # never trained on: the fold that scores the run
    precision: str = "fp32"  # both stages: fixed, so the recipe computes the same on every CPU (AVX2 emulates bf16)
    seed: int = 0  # pairs, refinement samples, and the initial weights of the new layers

    def __post_init__(self):
        """Refuse a recipe no run can use, in one line naming the field (before any file is made)."""
        object.__setattr__(self, "exclude_sequences", tuple(self.exclude_sequences))
        if self.model not in CONFIGS:
            raise UserError(f"model {self.model!r}: choose one of {', '.join(CONFIGS)}")
        for name in ("first_iters", "first_batch", "stage_iters", "stage_batch", "stage_refine_iters"):
            _check_int(name, getattr(self, name), 1)
        for name in ("first_warmup", "stage_warmup", "seed"):
            _check_int(name, getattr(self, name), 0)
        _check_int("stage_channels", self.stage_channels, 16)
        for name in ("first_lr", "stage_lr"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf"):
                raise UserError(f"{name} {v!r}: must be a finite number > 0")
        if self.precision not in PRECISIONS:
            raise UserError(f"precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}")
        if not self.exclude_sequences:  # the run is scored on sequences it never trained on: some must stay out
            raise UserError("exclude_sequences is empty: hold out the sequences the run is scored on (by default the "
                            f"validation fold, {', '.join(VALIDATION_FOLD_SEQUENCES)})")

    def to_dict(self) -> dict:
        """The recipe as plain values (tuples as lists): what recipe.json and the band's JSON record."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


CAPSTONE_RECIPE = CapstoneConfig()  # the full recipe (seed 0); the band measures it for seeds 0 and 1


def same_recipe(a: dict, b: dict) -> bool:
    """Whether two recipes (`to_dict` form) train the same thing but for the seed."""
    return {k: v for k, v in a.items() if k != "seed"} == {k: v for k, v in b.items() if k != "seed"}


def imagenet_missing(model: str) -> str | None:
    """Why the network's backbone has no ImageNet weights on this machine (one line), or None when it has them."""
    backbone = get_config(model).backbone
    if backbone != "lite0":
        return f"{backbone}: the course ships ImageNet weights offline for lite0 only"
    try:
        lite0_weights_path()
    except FileNotFoundError as err:
        return str(err)
    return None


def check_held_out(cfg: CapstoneConfig, data: Sequence[str | os.PathLike], scored: Sequence[str]) -> None:
    """UserError when a sequence to be scored would be trained on: each must be excluded or absent from the data
    (its DAVIS roots' training sequences), and no DAVIS-2016 val sequence may be trained on at all."""
    trained: set[str] = set()
    for entry in data:
        if Path(entry).is_dir():
            trained |= set(training_sequences(entry, cfg.exclude_sequences))
    leaked = sorted(trained & (set(scored) | set(REAL_VAL_SEQUENCES)))
    if leaked:
        raise UserError(f"{leaked[0]}: would be trained on and scored (or is a DAVIS-2016 val sequence); add it to "
                        "exclude_sequences or leave its root out of the data")


def claim_run_folder(cfg: CapstoneConfig, data: Sequence[str | os.PathLike], out: str | os.PathLike) -> Path:
    """The run folder for this recipe and data: new, or one holding the same recipe's run (which then resumes);
    writes out/recipe.json. UserError for a folder holding another recipe's run, or other files."""
    out = Path(out)
    record = {"recipe": cfg.to_dict(), "data": [str(d) for d in data]}
    path = out / RECIPE_FILE
    if path.is_file():
        if json.loads(path.read_text()) != record:
            raise UserError(f"{out}: holds a run of another recipe or data ({path.name}); choose another folder")
        return out
    if out.is_dir() and any(out.iterdir()):
        raise UserError(f"{out}: holds files but no {RECIPE_FILE} (not a capstone run); choose another folder")
    write_text(path, json.dumps(record, indent=1) + "\n")
    return out


def first_stage_config(cfg: CapstoneConfig, data: Sequence[str | os.PathLike], out: str | os.PathLike, *,
                       device: str = "cpu", workers: int = 1, progress: bool = False,
                       imagenet: bool = True) -> TrainConfig:
    """The recipe's first stage as the trainer's whole config: ImageNet backbone, frozen for every step, into
    out/first_stage (resumed when its last.pt is there)."""
    folder = Path(out) / "first_stage"
    return TrainConfig(model=get_config(cfg.model), data=tuple(str(d) for d in data), out=str(folder),
                       iters=cfg.first_iters, batch=cfg.first_batch,
                       optim=OptimConfig(lr=cfg.first_lr, warmup=cfg.first_warmup,
                                         freeze_backbone_iters=cfg.first_iters),
                       ckpt_every=FIRST_CKPT_EVERY, workers=workers, device=device, seed=cfg.seed,
                       exclude_sequences=cfg.exclude_sequences, pretrained=imagenet, progress=progress,
                       precision=cfg.precision, resume=(folder / "last.pt").is_file())


def train_first_stage(cfg: CapstoneConfig, data: Sequence[str | os.PathLike], out: str | os.PathLike, *,
                      device: str = "cpu", workers: int = 1, progress: bool = False) -> dict:
    """Step 1: train the first stage (`first_stage_config`); {checkpoint, log, steps, seconds, pairs_per_s,
    final_loss, imagenet}. seconds: the training time in the log (the steps only, resumed parts included).

    Where the ImageNet weights are not installed, the backbone starts random, with a warning saying so: such a run
    is not the recipe (imagenet False) and is not comparable with its band."""
    missing = imagenet_missing(cfg.model)
    if missing:
        warnings.warn(f"ImageNet weights unavailable ({missing}); the first stage starts from a random backbone, so "
                      "this run is not the capstone's recipe and cannot be compared with its band",
                      PretrainedWeightsUnavailable, stacklevel=2)
    result = train(first_stage_config(cfg, data, out, device=device, workers=workers, progress=progress,
                                      imagenet=missing is None))
    rows = read_log(result["log"])
    rates = [r["pairs_per_s"] for r in rows]
    return {"checkpoint": Path(result["checkpoint"]), "log": Path(result["log"]), "steps": int(result["steps"]),
            "seconds": float(sum(cfg.first_batch / r for r in rates)), "pairs_per_s": float(np.median(rates)),
            "final_loss": float(rows[-1]["loss"]), "imagenet": missing is None}


def stage_config(cfg: CapstoneConfig, first_checkpoint: str | os.PathLike, data: Sequence[str | os.PathLike],
                 out: str | os.PathLike, *, device: str = "cpu", workers: int = 1,
                 progress: bool = False) -> RefineConfig:
    """The recipe's refinement stage as train_refine's whole config: a new stage on the frozen first stage, into
    out/stage (resumed when its last.pt is there)."""
    folder = Path(out) / "stage"
    return RefineConfig(init_from=str(first_checkpoint), data=tuple(str(d) for d in data), out=str(folder),
                        exclude_sequences=cfg.exclude_sequences, iters=cfg.stage_iters, batch=cfg.stage_batch,
                        lr=cfg.stage_lr, warmup=cfg.stage_warmup, refine_iters=cfg.stage_refine_iters,
                        refine_channels=cfg.stage_channels, ckpt_every=min(STAGE_CKPT_EVERY, cfg.stage_iters),
                        log_every=max(1, min(50, cfg.stage_iters // 10)), seed=cfg.seed, workers=workers,
                        precision=cfg.precision, device=device, progress=progress,
                        resume=(folder / "last.pt").is_file())


def train_stage(cfg: CapstoneConfig, first_checkpoint: str | os.PathLike, data: Sequence[str | os.PathLike],
                out: str | os.PathLike, *, device: str = "cpu", workers: int = 1, progress: bool = False) -> dict:
    """Step 2: train the refinement stage on the first stage (`stage_config`); {checkpoint (the whole network, model
    only), log, steps, seconds, samples_per_s, val_iou_first, val_iou_refined}: the last two the stage's polar IoU on
    the fold's fixed samples before and after it (NaN when the run holds no fold sequence out)."""
    rcfg = stage_config(cfg, first_checkpoint, data, out, device=device, workers=workers, progress=progress)
    train_refine(rcfg)
    folder = Path(rcfg.out)
    rows = read_log(folder / "train_log.csv")
    steps = np.diff([0] + [r["step"] for r in rows])  # steps behind each row (rows every log_every steps)
    return {"checkpoint": folder / f"step{cfg.stage_iters}.pt", "log": folder / "train_log.csv",
            "steps": int(rows[-1]["step"]),
            "seconds": float(sum(n * cfg.stage_batch / r["samples_per_s"] for n, r in zip(steps, rows))),
            "samples_per_s": float(np.median([r["samples_per_s"] for r in rows])),
            "val_iou_first": float(rows[-1]["val_iou_first"]), "val_iou_refined": float(rows[-1]["val_iou_refined"])}
