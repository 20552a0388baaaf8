"""SiamPolar checkpoints: one dict saved with torch.save, loadable with torch.load(weights_only=True).

    {"format": "siampolar-checkpoint-v1", "config": ModelConfig.to_dict() (every field), "model": state_dict,
     "step": int, "meta": {plain types}, ...optional "optimizer", "scheduler", "rng", ...}

A file may store only the config's name ("config": "lite0"): it loads as today's preset of that name.

Writes are atomic (temp file in the same folder, then os.replace). Every problem on load (missing,
truncated, foreign, wrong architecture) is a CheckpointError naming the file and the problem.
A training run's checkpoint also holds its log rows ("log") and its whole TrainConfig (meta.train_config):
`check_network`, `check_resume` and `init_weights` refuse a file that does not fit the run, `checkpoint_log`
reads its rows back.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import sys
import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from siampolar_lib.errors import CheckpointError
from siampolar_lib.io import atomic_write
from siampolar_lib.models.config import ModelConfig, get_config
from siampolar_lib.models.siampolar import SiamPolar
from siampolar_lib.training.log import read_log

if TYPE_CHECKING:  # only for the annotation: the checkpoint layer does not import the training config
    from siampolar_lib.training.config import TrainConfig

FORMAT = "siampolar-checkpoint-v1"
_PLAIN = (str, int, float, bool, type(None))
# Model fields that change how a network trains but not what its weights mean: may differ on resume/fine-tune.
TRAINING_ONLY_FIELDS = ("frozen_stages", "bn_mode")
# Model fields that add zero-initialised modules: --init-from may switch them on (the grown network starts out
# computing what the checkpoint did); field -> prefix of the state_dict keys the checkpoint then lacks.
GROWABLE_FIELDS = {"ray_search_features": "head.search_proj."}
# Settings that make a resumed run differ from an uninterrupted one when changed (a warning names each).
RESUME_SETTINGS = ("batch", "seed", "optimizer", "schedule", "warmup", "lr", "data", "exclude_sequences")



def _check_plain(value, where: str) -> None:
    """Raise TypeError unless value is built from str/int/float/bool/None, lists, tuples and str-keyed dicts."""
    if isinstance(value, _PLAIN):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: key {k!r} is not a str")
            _check_plain(v, f"{where}[{k!r}]")
        return
    raise TypeError(f"{where} is a {type(value).__name__}: checkpoint meta must hold plain types only")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, step: int = 0, meta: dict | None = None,
                    **extra) -> Path:
    """Save model (+ optional optimizer/scheduler/rng state dicts in `extra`) atomically; returns the path."""
    path = Path(path)
    meta = dict(meta or {})
    _check_plain(meta, "meta")
    config = getattr(model, "config", None)
    if not isinstance(config, ModelConfig):
        raise TypeError("save_checkpoint needs a SiamPolar model (with a ModelConfig .config)")
    ckpt = {"format": FORMAT, "config": config.to_dict(), "model": model.state_dict(), "step": int(step), "meta": meta,
            **extra}
    # Serialised in memory, then written by Python: torch's own file writer reports a full disk as a bare
    # RuntimeError ("file write failed"), Python's write as an OSError that names the disk's problem.
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    with atomic_write(path) as tmp:
        tmp.write_bytes(buf.getbuffer())
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read and validate a checkpoint dict (on CPU, weights_only=True); problems raise CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    # torch warns about a file it then refuses (a plain pickle: "Detected pickle protocol 4"): held back until the
    # file proves to be a checkpoint, so a refused file gets the error's one line and nothing before it.
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # truncated zips, random bytes and pickles raise many types; all mean unreadable
            raise CheckpointError(f"{path}: not a readable torch checkpoint ({_load_problem(path, err)})") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: not a SiamPolar checkpoint (format {found!r}, expected {FORMAT!r})")
    for key, kind in (("config", (str, dict)), ("model", dict), ("step", int), ("meta", dict)):
        if not isinstance(ckpt.get(key), kind):
            raise CheckpointError(f"{path}: field {key!r} missing or of the wrong type")
    for w in said:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return ckpt


def _load_problem(path: Path, err: Exception) -> str:
    """torch.load's error in a few words. Its weights-only refusal opens with advice to load with weights_only=False
    (running the file's code); the reason comes after "WeightsUnpickler error:" and is all that is kept."""
    if path.stat().st_size == 0:
        return "an empty file"
    if isinstance(err, pickle.UnpicklingError) and "WeightsUnpickler error:" in str(err):
        after = str(err).split("WeightsUnpickler error:", 1)[1]
        reason = next((ln for ln in after.splitlines() if ln.strip()), "").strip().split(". ")[0].rstrip(".")
        return f"the weights-only unpickler refused it: {reason}; a checkpoint holds tensors and plain types only"
    text = " ".join(str(err).split())
    first = text.split(". ")[0].rstrip(".")  # torch's zip reader goes on for three sentences of guesses
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def checkpoint_config(ckpt: dict, path: str | os.PathLike) -> ModelConfig:
    """The ModelConfig a loaded checkpoint holds (a stored dict, or a bare name -> today's preset)."""
    try:
        return get_config(ckpt["config"])
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: bad model config: {err}") from err


def load_model(path: str | os.PathLike, device=None):
    """Build the checkpoint's config (no ImageNet download), load its weights strictly; eval mode on device."""
    path = Path(path)
    return model_from_checkpoint(load_checkpoint(path), path, device)


def check_finite_weights(state: dict, path: str | os.PathLike) -> None:
    """CheckpointError naming the file and the first tensor holding NaN or inf: such weights load without a word
    and fail later, far from their cause (a NaN score map, an ONNX check that cannot match)."""
    for name, t in state.items():
        if torch.is_tensor(t) and t.is_floating_point() and not torch.isfinite(t).all():
            bad = int((~torch.isfinite(t)).sum())
            raise CheckpointError(f"{path}: weight {name} holds {bad} non-finite value{'s' * (bad != 1)} (NaN or inf); "
                                  "the checkpoint is damaged or its training diverged: use an earlier one")


def model_from_checkpoint(ckpt: dict, path: str | os.PathLike, device=None):
    """The network held by a loaded checkpoint dict (read from `path`, named in errors); eval mode on device.

    CheckpointError for weights that do not fit the config or hold NaN/inf (`check_finite_weights`)."""
    cfg = checkpoint_config(ckpt, path)
    check_finite_weights(ckpt["model"], path)
    model = SiamPolar(cfg, pretrained=False)
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        detail = " ".join(lines[1:3])[:400] if len(lines) > 1 else lines[0][:400]
        raise CheckpointError(f"{path}: weights do not fit config {cfg.name!r} (wrong architecture): {detail}") from err
    if device is not None:
        model = model.to(device)
    return model.eval()


def with_stage(first: nn.Module, staged: nn.Module) -> nn.Module:
    """A new network: `first`'s first stage with `staged`'s refinement stage on top (eval mode, CPU).

    The stage reads the backbone's early maps (`backbone.early_features`), so it fits only a first stage
    whose early blocks compute what the stage was trained on: checked on a probe image, exactly.
    """
    if getattr(staged, "refiner", None) is None:
        raise ValueError("the second network has no refinement stage (config refine_iters is 0)")
    cfg = replace(first.config, **{k: getattr(staged.config, k) for k in ("refine_iters", "refine_size",
                                                                           "refine_channels")})
    model = SiamPolar(cfg, pretrained=False).eval()
    first_state = {k: v for k, v in first.state_dict().items() if not k.startswith("refiner.")}
    missing = model.load_state_dict(first_state, strict=False).missing_keys
    if any(not k.startswith("refiner.") for k in missing):
        raise ValueError(f"the first network does not fit its own config: missing {missing[:3]}")
    model.refiner.load_state_dict(staged.refiner.state_dict())
    probe = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, cfg.refine_size, cfg.refine_size, generator=probe) * 255
    device = next(staged.parameters()).device
    with torch.no_grad():
        mine = model.backbone.early_features(x)
        theirs = [t.cpu() for t in staged.backbone.early_features(x.to(device))]
    if not all(torch.equal(a, b) for a, b in zip(mine, theirs)):
        raise ValueError("the two networks' early backbone blocks differ: the stage was trained on other features")
    return model


def first_stage_sha256(model: nn.Module) -> str:
    """Hex sha256 of a network's first stage: its config (refinement fields and TRAINING_ONLY_FIELDS aside) and every
    weight and buffer outside `refiner.` (name, dtype, shape, bytes). Equal for two networks whose first stages
    compute the same, whatever stage either carries (the first-stage cache's tag: `data.first_stage_cache`)."""
    h = hashlib.sha256()
    config = {k: v for k, v in model.config.to_dict().items()
              if not k.startswith("refine_") and k not in TRAINING_ONLY_FIELDS}
    h.update(json.dumps(config, sort_keys=True).encode())
    for name, t in sorted(model.state_dict().items()):
        if name.startswith("refiner."):
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{name} {t.dtype} {tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def export_weights(src: str | os.PathLike, dst: str | os.PathLike, step: int | None = None,
                   meta: dict | None = None) -> Path:
    """Copy a training checkpoint's network to a model-only file (optimiser, scheduler, RNG dropped).

    step defaults to the source's; meta is added to the source's meta (plain types). The source is read, never
    changed; dst must be another file.
    """
    src, dst = Path(src), Path(dst)
    if dst.exists() and dst.resolve() == src.resolve():
        raise ValueError(f"{dst}: the export would overwrite its own source; choose another path")
    ckpt = load_checkpoint(src)
    model = model_from_checkpoint(ckpt, src)
    merged = {**(ckpt.get("meta") or {}), **(meta or {})}
    return save_checkpoint(dst, model, step=ckpt["step"] if step is None else step, meta=merged)


# ------------------------------------------------------------------------------ fitting a training run

def network_differences(a: ModelConfig, b: ModelConfig) -> list[str]:
    """Names of the fields (TRAINING_ONLY_FIELDS aside) in which two model configs differ."""
    da, db = a.to_dict(), b.to_dict()
    return [k for k in da if k not in TRAINING_ONLY_FIELDS and da[k] != db.get(k)]


def check_network(ckpt: dict, path: str | os.PathLike, config: ModelConfig) -> None:
    """CheckpointError unless a loaded checkpoint holds the `config` network (a name-only file: today's preset)."""
    saved = checkpoint_config(ckpt, path)
    diff = network_differences(saved, config)
    if diff:
        raise CheckpointError(f"{path}: it holds a {saved.name!r} network, but --model is {config.name!r} "
                              f"(they differ in {', '.join(diff)})")


def _saved_setting(saved: dict, key: str):
    """One setting of a meta.train_config: in its "optim" section (optim.lr) or at the top (lr); None if absent."""
    if isinstance(saved.get("optim"), dict) and key in saved["optim"]:
        return saved["optim"][key]
    return saved.get(key)


def check_resume(ckpt: dict, path: str | os.PathLike, cfg: "TrainConfig") -> None:
    """CheckpointError for another network or a file without training state; a warning per changed setting.

    ckpt: a loaded checkpoint; cfg: the TrainConfig the run resumes with (its RESUME_SETTINGS are compared).
    """
    check_network(ckpt, path, cfg.model)
    missing = [k for k in ("optimizer", "scheduler", "scaler", "rng") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: no training state to resume from (missing {missing}); it is a model-only file")
    saved, now = (ckpt.get("meta") or {}).get("train_config") or {}, cfg.to_dict()
    for key in RESUME_SETTINGS:
        before, after = _saved_setting(saved, key), _saved_setting(now, key)
        if before is not None and before != after:
            print(f"warning: resuming with --{key.replace('_', '-')} {after!r}, the run used {before!r}: "
                  "the result will differ from an uninterrupted run", file=sys.stderr)


def init_weights(model: nn.Module, path: str | os.PathLike, config: ModelConfig) -> None:
    """Load a checkpoint's weights strictly into `model` (to fine-tune from them); its network must be `config`.

    The one exception: `config` may switch on GROWABLE_FIELDS that the checkpoint has off; their new modules
    keep their zero initialisation and every other weight must be there.
    """
    ckpt = load_checkpoint(path)
    saved = checkpoint_config(ckpt, path)
    check_finite_weights(ckpt["model"], path)
    grown = [k for k in GROWABLE_FIELDS if getattr(config, k) and not getattr(saved, k)]
    check_network(ckpt, path, config if not grown else replace(config, **{k: False for k in grown}))
    try:
        result = model.load_state_dict(ckpt["model"], strict=not grown)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: its weights do not fit the {config.name!r} network "
                              f"({str(err).splitlines()[0]})") from err
    new = tuple(GROWABLE_FIELDS[k] for k in grown)
    stray = [k for k in result.missing_keys if not k.startswith(new)] + list(result.unexpected_keys) if grown else []
    if stray:
        raise CheckpointError(f"{path}: its weights do not fit the {config.name!r} network (keys {stray[:3]})")
    if grown:
        print(f"init from {path}: {', '.join(grown)} switched on, {len(result.missing_keys)} new tensors start at zero",
              file=sys.stderr)


def checkpoint_log(ckpt: dict, ckpt_path: str | os.PathLike, log_path: str | os.PathLike) -> list[dict]:
    """The log rows of steps 1..ckpt["step"] (`log.log_columns()` each), for a resume or an export.

    They come from the checkpoint's "log" (saved with the weights in one write); a checkpoint without one
    reads the train_log.csv at log_path. Rows past the checkpoint's step are dropped; a missing, repeated or
    out-of-order step is a CheckpointError (the log would not describe these weights).
    """
    step = int(ckpt["step"])
    if "log" in ckpt:
        rows = [dict(r) for r in ckpt["log"]]
    elif Path(log_path).is_file():
        rows = read_log(log_path)
    else:
        rows = []
    rows = [r for r in rows if r["step"] <= step]
    steps = [r["step"] for r in rows]
    if steps != list(range(1, step + 1)):
        source = ckpt_path if "log" in ckpt else log_path
        raise CheckpointError(f"{source}: the log holds {len(steps)} rows up to step {steps[-1] if steps else 0}, "
                              f"but {ckpt_path} is at step {step}: each step 1..{step} must be there exactly once")
    return rows
