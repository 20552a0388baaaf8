"""Device choice, seeding and RNG state: where tensors live, and how a run repeats its random numbers."""
from __future__ import annotations

import os
import random

import numpy as np
import torch

from siampolar_lib.errors import DeviceUnavailable


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
    if prefer == "cuda" or prefer.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceUnavailable(f"--device {prefer}: CUDA is not available here (torch.cuda.is_available() is "
                                    "False); use --device cpu or auto")
        index = prefer.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise DeviceUnavailable(f"--device {prefer}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                                    f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if prefer == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceUnavailable("--device mps: MPS is not available here; use --device cpu or auto")
    if prefer not in {"cpu", "cuda", "mps"} and not prefer.startswith("cuda:"):
        raise ValueError(f"unknown device {prefer!r}: use auto, cpu, cuda or mps")
    return torch.device(prefer)


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch (all devices) so a run repeats."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def rng_state() -> dict:
    """Python, NumPy, torch (and CUDA) RNG states as tensors and plain lists, loadable with weights_only=True."""
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": [version, list(mt), gauss],
             "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore the generators to a `rng_state()` (CUDA's only where this machine has CUDA)."""
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
