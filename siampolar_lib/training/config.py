"""One experiment config: `TrainConfig` nests model, pairs, loss and optimisation settings.

    TrainConfig(model=ModelConfig, pairs=PairConfig, loss=LossConfig, optim=OptimConfig,
                data=..., out=..., iters=..., batch=..., ...run settings)

Everything is a frozen dataclass of plain values. `to_dict` / `from_dict` convert to nested plain dicts (what a
checkpoint's meta stores), `load_preset` reads a small YAML file under `configs/` (any subset of the fields,
nested by section; `model:` may be a preset name or a dict with `name:` plus overrides). The training command's
flags are generated from these dataclasses in `siampolar_lib.commands.train_flags`.
How a trained network tracks is not part of it: tracking reads its own `tracking.tracker.TrackerConfig`.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import yaml

from siampolar_lib.data.pairs import PairConfig
from siampolar_lib.models.config import CONFIGS, QUICK, ModelConfig, get_config, to_plain, to_tuples
from siampolar_lib.training.losses import LossConfig

PRESET_DIR = Path(__file__).resolve().parents[2] / "configs"


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and learning-rate schedule."""

    lr: float = 0.01  # base lr (head); backbone gets 0.1x once unfrozen
    optimizer: str = "sgd"  # sgd (momentum 0.9) or adamw
    weight_decay: float = 1e-4  # biases and norm scales get none
    schedule: str = "cosine"  # cosine or step decay after warm-up
    warmup: int = 500  # linear warm-up steps from lr/3
    freeze_backbone_iters: int = 0  # backbone frozen (no grad, BN fixed) for this many steps

    def __post_init__(self):
        """Refuse a rate or a step count no run can use, naming its flag (before any folder is made)."""
        for flag, v, lo in (("--lr", self.lr, 0.0), ("--weight-decay", self.weight_decay, None)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or \
                    (v <= lo if lo is not None else v < 0):
                raise ValueError(f"{flag} {v}: must be a finite number {'> 0' if lo is not None else '>= 0'}")
        _check_counts({"--warmup": self.warmup, "--freeze-backbone-iters": self.freeze_backbone_iters}, 0)


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; the CLI is generated from it (see the module docstring)."""

    model: ModelConfig = QUICK  # the network: architecture, crop geometry, ray count, frozen stages
    pairs: PairConfig = field(default_factory=PairConfig)  # pair sampling and augmentation
    loss: LossConfig = field(default_factory=LossConfig)  # loss weights
    optim: OptimConfig = field(default_factory=OptimConfig)  # optimiser and schedule
    data: tuple[str, ...] = ()  # COCO jsons (from davis2coco) and/or DAVIS roots
    out: str = "runs/train"  # run folder: last.pt, train_log.csv, loss_curve.png
    iters: int = 100  # TOTAL number of steps (a resume continues up to it)
    batch: int = 8  # pairs per step per process
    ckpt_every: int = 100  # write last.pt every K steps (and at the end)
    workers: int = 0  # DataLoader worker processes
    worker_targets: bool = True  # build targets in the DataLoader's collate (in its workers); False: in the step
    device: str = "auto"  # auto (CUDA, MPS, CPU), cpu, cuda, mps
    resume: bool = False  # continue from out/last.pt
    overwrite: bool = False  # start afresh in an `out` that holds a run (replaced at this run's first save)
    seed: int = 0  # data order, augmentation and init all follow from it
    exclude_sequences: tuple[str, ...] = ()  # sequence names never used (e.g. the held-out fold)
    image_root: str | None = None  # image root for COCO jsons (default: inferred from the json)
    pretrained: bool = True  # ImageNet backbone weights (only if present locally)
    progress: bool = True  # tqdm bar
    stop_at: int | None = None  # stop (checkpoint) after this step, schedule unchanged: a clean "kill"
    init_from: str | None = None  # fine-tune: start from this checkpoint's weights (new optimiser, step 0)
    precision: str = "auto"  # auto (fp16 AMP on CUDA, fp32 elsewhere), fp32, bf16 (autocast, CPU or CUDA)
    feature_cache: int = 0  # > 0: a frozen-backbone run on cached backbone maps, this many crops per frame

    def __post_init__(self):
        """Refuse counts no run can use, naming their flags (before any folder is made)."""
        _check_counts({"--iters": self.iters, "--batch": self.batch}, 1)
        _check_counts({"--seed": self.seed, "--workers": self.workers, "--ckpt-every": self.ckpt_every,
                       "--feature-cache": self.feature_cache}, 0)
        if self.stop_at is not None:
            _check_counts({"--stop-at": self.stop_at}, 1)

    def to_dict(self) -> dict:
        """The whole config as nested plain dicts and lists (checkpoint meta, logs, YAML)."""
        return to_plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict, base: "TrainConfig | None" = None) -> "TrainConfig":
        """`base` (default TrainConfig()) with the (possibly partial, nested) values of `d` applied.

        `d` may be a checkpoint's meta.train_config: sections of NOT_TRAINING_SECTIONS in it are skipped.
        """
        if not isinstance(d, dict):
            raise ValueError(f"config: expected a mapping of config fields, got {type(d).__name__}")
        return apply_overrides(base or cls(), {k: v for k, v in d.items() if k not in NOT_TRAINING_SECTIONS})


def _check_counts(values: dict[str, int], low: int) -> None:
    """ValueError naming the first flag whose value is not an integer >= low."""
    for flag, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{flag} {v!r}: must be an integer >= {low}")


SECTIONS: dict[str, type] = {"model": ModelConfig, "pairs": PairConfig, "loss": LossConfig, "optim": OptimConfig}
# Sections a saved train_config can hold that configure no part of training: "tracker" (TrackerConfig values, which
# tracking reads from its own defaults, never from a checkpoint). `from_dict` skips them; presets and flags refuse them.
NOT_TRAINING_SECTIONS = ("tracker",)
FLAT_SECTIONS = ("optim",)  # sections whose CLI flags carry no prefix (--lr rather than --optim.lr)
CHOICES = {"optim.optimizer": ("sgd", "adamw"), "optim.schedule": ("cosine", "step"),
           "device": ("auto", "cpu", "cuda", "mps"), "precision": ("auto", "fp32", "bf16"),
           "model.bn_mode": ("frozen", "train")}
HELP = {"data": "davis2coco json or DAVIS root (repeatable)", "out": "run folder, e.g. runs/NAME",
        "feature_cache": "N > 0: cache the frozen backbone's maps of N context crops per frame and train only the "
                         "neck and head on them (siampolar_lib.training.feature_cache; the backbone must stay frozen)",
        "iters": "TOTAL steps (a resume continues up to it)", "resume": "continue from OUT/last.pt",
        "exclude_sequences": "comma-separated sequence names to leave out",
        "image_root": "DAVIS root the json's file names are relative to",
        "init_from": "fine-tune: start from this checkpoint's weights with a fresh optimiser and schedule",
        "stop_at": "stop after this step without changing the schedule (time-sliced runs; --resume continues)",
        "precision": "auto: fp16 AMP on CUDA, fp32 elsewhere; bf16: bfloat16 autocast",
        "worker_targets": "build the targets in the DataLoader (its workers with --workers N; default) "
                          "or, with --no-worker-targets, in the training step",
        "model.frozen_stages": "backbone stages kept frozen for the whole run (alias --frozen-stages)"}


def _replace_checked(obj, values: dict, where: str):
    """dataclasses.replace with list -> tuple and a clear error for unknown fields."""
    names = {f.name for f in fields(obj)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; known: {sorted(names)}")
    return replace(obj, **{k: to_tuples(v) for k, v in values.items()})


def model_from_value(value: str | dict | ModelConfig, current: ModelConfig) -> ModelConfig:
    """A `model:` value: a preset name, a ModelConfig, or a dict (its `name` picks the preset it overrides)."""
    if isinstance(value, (str, ModelConfig)):
        return get_config(value)
    if isinstance(value, dict):
        name = value.get("name", current.name)
        base = get_config(name) if name in CONFIGS else current
        return _replace_checked(base, value, "model")
    raise ValueError(f"model must be a preset name or a mapping, got {type(value).__name__}")


def apply_overrides(cfg: TrainConfig, d: dict, where: str = "config") -> TrainConfig:
    """cfg with a nested dict of values applied (sections as dicts, or a preset name for `model`)."""
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a mapping of config fields, got {type(d).__name__}")
    top = {}
    for key, value in d.items():
        if key == "model":
            top["model"] = model_from_value(value, cfg.model)
        elif key in SECTIONS:
            if not isinstance(value, dict):
                raise ValueError(f"{where}: section {key!r} must be a mapping, got {value!r}")
            top[key] = _replace_checked(getattr(cfg, key), value, f"{where}: {key}")
        else:
            top[key] = value
    return _replace_checked(cfg, top, where)


def preset_path(name: str | Path) -> Path:
    """A preset file: a path, or a bare name looked up as configs/<name>.yaml."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    return PRESET_DIR / f"{name}.yaml"


def load_preset(name: str | Path, base: TrainConfig | None = None) -> TrainConfig:
    """TrainConfig from a YAML preset (a path or a name under configs/), applied over `base`."""
    path = preset_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such config preset")
    try:
        with open(path) as f:
            d = yaml.safe_load(f) or {}
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        raise ValueError(f"{path}: not valid YAML{at}: {getattr(err, 'problem', None) or err}") from err
    try:
        return apply_overrides(base or TrainConfig(), d, where=str(path))
    except (TypeError, ValueError) as err:  # a field of the wrong type fails inside a comparison or a check
        raise ValueError(f"{path}: {err}" if str(path) not in str(err) else str(err)) from err
