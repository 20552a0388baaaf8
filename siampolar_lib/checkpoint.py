"""SiamPolar checkpoints: one dict saved with torch.save, loadable with torch.load(weights_only=True).

    {"format": "siampolar-checkpoint-v1", "config": ModelConfig.to_dict() (every field), "model": state_dict,
     "step": int, "meta": {plain types}, ...optional "optimizer", "scheduler", "rng", ...}

Older files store only the config's name ("config": "lite0"); they load as today's preset of that name.

Writes are atomic (temp file in the same folder, then os.replace). Every problem on load (missing,
truncated, foreign, wrong architecture) is a CheckpointError naming the file and the problem.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .io import atomic_write
from .models.config import ModelConfig, get_config
from .models.siampolar import SiamPolar

FORMAT = "siampolar-checkpoint-v1"
_PLAIN = (str, int, float, bool, type(None))


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used; the message names the file and the problem."""


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
    ckpt = {"format": FORMAT, "config": config.to_dict(), "model": model.state_dict(), "step": int(step), "meta": meta, **extra}
    with atomic_write(path) as tmp:
        torch.save(ckpt, tmp)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read and validate a checkpoint dict (on CPU, weights_only=True); problems raise CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zips, random bytes and pickles raise many types; all mean unreadable
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(err).__name__}: {first})") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: not a SiamPolar checkpoint (format {found!r}, expected {FORMAT!r})")
    for key, kind in (("config", (str, dict)), ("model", dict), ("step", int), ("meta", dict)):
        if not isinstance(ckpt.get(key), kind):
            raise CheckpointError(f"{path}: field {key!r} missing or of the wrong type")
    return ckpt


def checkpoint_config(ckpt: dict, path: str | os.PathLike) -> ModelConfig:
    """The ModelConfig a loaded checkpoint holds (a stored dict, or an old file's name -> today's preset)."""
    try:
        return get_config(ckpt["config"])
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: bad model config: {err}") from err


def load_model(path: str | os.PathLike, device=None):
    """Build the checkpoint's config (no ImageNet download), load its weights strictly; eval mode on device."""
    path = Path(path)
    return model_from_checkpoint(load_checkpoint(path), path, device)


def model_from_checkpoint(ckpt: dict, path: str | os.PathLike, device=None):
    """The network held by a loaded checkpoint dict (read from `path`, named in errors); eval mode on device."""
    cfg = checkpoint_config(ckpt, path)
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
