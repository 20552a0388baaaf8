"""Device choice and seeding: the one place that decides where tensors live."""
from __future__ import annotations

import os
import random

import numpy as np
import torch


def pick_device(prefer: str = "auto") -> torch.device:
    """Return the device to use: CUDA, then MPS, then CPU for "auto"; else the named one.

    A named device that is not available is a clear error rather than a silent fallback.
    """
    prefer = (prefer or "auto").lower()
    if prefer == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if prefer == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but torch.cuda.is_available() is False")
    if prefer == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise RuntimeError("device 'mps' was requested but torch.backends.mps.is_available() is False")
    if prefer not in {"cpu", "cuda", "mps"} and not prefer.startswith("cuda:"):
        raise ValueError(f"unknown device {prefer!r}: use auto, cpu, cuda or mps")
    return torch.device(prefer)


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch (all devices) so a run repeats."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def describe_device(device: torch.device) -> str:
    """One line naming the device, e.g. 'cuda (NVIDIA H100)' or 'cpu (2 threads)'."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def sync(device: torch.device | str | None) -> None:
    """Wait for queued device work (CUDA/MPS) so a timer measures it; a no-op on CPU or None."""
    if device is None:
        return
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
