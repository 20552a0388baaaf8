"""Inference engines: the tracker's network step run by PyTorch (`torch`) or by ONNX Runtime (`onnxruntime`).

An engine turns crops into score maps; the tracker (siampolar_lib.tracking.tracker) does everything else:

    state  = engine.template(z)          z (127, 127, 3) uint8 RGB -> the target's template features
    levels = engine.search(x, state)     x (255, 255, 3) uint8 RGB -> one dict per level:
        score (H, W) float64 = sigmoid(cls) x sigmoid(ctr); rays (R, H, W) float64, crop pixels;
        points (H, W, 2) float64, crop-pixel (x, y) of each location
    rays   = engine.refine(r, rays)      only when engine.refines (a network with a refinement stage):
        r (S_r, S_r, 3) uint8 RGB around a polygon's centre, rays (R,) crop pixels -> refined rays (R,) float64

The engine returns the template state instead of keeping it, so several targets share one engine (one network,
one ONNX Runtime session). The engine is built once, at the edge: commands and apps turn an `--engine` string into
one with `make_engine`; library functions (Tracker, MultiTracker, evaluation) take a network or an Engine
(`as_engine`). `make_engine(model, "onnxruntime")` exports the network once per set of weights
(`tracking.onnx_export`, cached on disk by `tracking.onnx_cache`) and falls back to torch, with a one-line message,
when it cannot.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from siampolar_lib.device import pick_device, sync
from siampolar_lib.errors import ExportError
from siampolar_lib.models.config import get_config
from siampolar_lib.models.grid import location_grid
from siampolar_lib.tracking.onnx_cache import cached_export
from siampolar_lib.tracking.onnx_export import META_NAME, REFINE_NAME, SEARCH_NAME, TEMPLATE_NAME

ENGINES = ("torch", "onnxruntime")
DEFAULT_ENGINE = "onnxruntime"  # for tracking; training always uses torch


def to_tensor(img: np.ndarray, device) -> torch.Tensor:
    """(S, S, 3) uint8 RGB -> (1, 3, S, S) float32 RGB 0..255 on device (the model normalises inside)."""
    device = torch.device(device)
    if device.type != "cpu":  # send 1 byte a pixel, convert on the device
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].to(device).float()
    # numpy does the HWC -> CHW float copy: torch's strided uint8 -> float conversion is ~20x slower on CPU.
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))[None]


def location_score(cls: torch.Tensor, ctr: torch.Tensor) -> torch.Tensor:
    """The tracker's score of every location: sigmoid(cls) x sigmoid(ctr), in [0, 1], computed in float32."""
    return torch.sigmoid(cls.float()) * torch.sigmoid(ctr.float())


def decode_levels(out: dict) -> list[dict]:
    """Model output dict -> per level numpy dict: score (H, W), rays (R, H, W), points (H, W, 2), float64."""
    levels = []
    for cls, ctr, rays, pts in zip(out["cls"], out["ctr"], out["rays"], out["points"]):
        score = location_score(cls[0, 0], ctr[0, 0])
        levels.append({"score": score.cpu().numpy().astype(np.float64),
                       "rays": rays[0].float().cpu().numpy().astype(np.float64),
                       "points": pts.float().cpu().numpy().astype(np.float64)})
    return levels


class Engine:
    """Base class of the engines (see the module docstring for `template` and `search`)."""

    name = "engine"
    device = torch.device("cpu")
    config = None  # the network's ModelConfig (crop sizes, context, rays), which the tracker reads
    refines = False  # True when the network has an object-scale refinement stage (`refine`)

    def template(self, z: np.ndarray):
        """z (127, 127, 3) uint8 RGB -> template state for `search`."""
        raise NotImplementedError

    def search(self, x: np.ndarray, state) -> list[dict]:
        """x (255, 255, 3) uint8 RGB against a template state -> per level dict (module docstring)."""
        raise NotImplementedError

    def refine(self, r: np.ndarray, rays: np.ndarray) -> np.ndarray:
        """r (S_r, S_r, 3) uint8 RGB, rays (R,) crop pixels from its middle pixel -> refined rays (R,) float64."""
        raise NotImplementedError(f"the {self.name} engine's network has no refinement stage")

    def sync(self) -> None:
        """Wait for queued device work (so a timer measures it)."""
        sync(self.device)


class TorchEngine(Engine):
    """PyTorch eager: any module with the SiamPolar tracking API (`template(z)`, `track(x)` -> output dict)."""

    name = "torch"

    def __init__(self, model: torch.nn.Module, device=None):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"a tracker needs a SiamPolar network or an Engine, got {type(model).__name__} "
                            "(load one with training.checkpoint.load_model)")
        if device is None:
            p = next(iter(model.parameters()), None)
            device = p.device if p is not None else torch.device("cpu")
        else:  # a device this machine lacks is a clear error here, not a CUDA traceback at the first frame
            device = pick_device(str(device))
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.config = getattr(model, "config", None)
        self.refines = getattr(model, "refiner", None) is not None

    @torch.inference_mode()
    def template(self, z: np.ndarray):
        """Template features, one (1, C, k, k) tensor per level, also cached in the module (its `track(x)` API).

        A module whose `template` returns nothing (tests' fakes) gives None: `search` then uses its cache.
        """
        return self.model.template(to_tensor(z, self.device))

    @torch.inference_mode()
    def search(self, x: np.ndarray, state) -> list[dict]:
        """The network on the search crop against `state` -> per level numpy dict."""
        t = to_tensor(x, self.device)
        out = self.model.track(t) if state is None else self.model.track(t, state)
        return decode_levels(out)

    @torch.inference_mode()
    def refine(self, r: np.ndarray, rays: np.ndarray) -> np.ndarray:
        """The network's refinement stage on crop r and rays (R,) crop pixels -> refined rays (R,) float64."""
        if not self.refines:
            return super().refine(r, rays)
        t = torch.as_tensor(np.asarray(rays, np.float32), device=self.device)[None]
        return self.model.refine(to_tensor(r, self.device), t)[0].float().cpu().numpy().astype(np.float64)


def level_points(meta: dict) -> list[np.ndarray]:
    """Crop-pixel (x, y) of each location, per level of an exported graph's meta: (H, W, 2) float64 each."""
    return [location_grid(h, w, s, meta["search_size"]).numpy().astype(np.float64)
            for h, w, s in meta["levels"]]


class OrtEngine(Engine):
    """ONNX Runtime (CPUExecutionProvider) on graphs written by siampolar_lib.tracking.onnx_export."""

    name = "onnxruntime"

    def __init__(self, folder: str | os.PathLike, threads: int | None = None, spinning: bool = False):
        """Sessions on the graphs in folder: `threads` intra-op threads (None: ONNX Runtime's choice, one per core);
        `spinning`: whether the template and search sessions' threads spin after a run (the refinement session's
        never do). Off by default: beside one busy core the loop kept 0.71-0.93x of its idle fps without spinning
        and 0.49-0.65x with it, and idle it ran 0.97-1.08x as fast (`python -m benchmarks.bench_busy`, two runs)."""
        import onnxruntime as ort

        folder = Path(folder)
        self.folder = folder
        self.meta = json.loads((folder / META_NAME).read_text())
        self.config = get_config(self.meta["config"])
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # warnings about unused initialisers are not the user's business
        if not spinning:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        self._template = ort.InferenceSession(str(folder / TEMPLATE_NAME), opts, providers=providers)
        self._search = ort.InferenceSession(str(folder / SEARCH_NAME), opts, providers=providers)
        self._zf_names = [i.name for i in self._search.get_inputs()][1:]
        self._points = level_points(self.meta)
        self.refines = REFINE_NAME in self.meta.get("sha256", {})
        self._refine = None
        if self.refines:
            # Its threads must not spin after a run: they would take the cores from the search graph's next run
            # (16.4 ms a frame for search + refine with spinning, 10.8 without; 2 cores, idle).
            if spinning:  # else already set for every session
                opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._refine = ort.InferenceSession(str(folder / REFINE_NAME), opts, providers=providers)

    def template(self, z: np.ndarray) -> list[np.ndarray]:
        """Template features, one (1, C, k, k) float32 array per level."""
        return self._template.run(None, {"z": np.ascontiguousarray(z)[None]})

    def search(self, x: np.ndarray, state: list[np.ndarray]) -> list[dict]:
        """The exported step on the search crop -> per level numpy dict (score and rays computed in the graph)."""
        feeds = {"x": np.ascontiguousarray(x)[None], **dict(zip(self._zf_names, state))}
        outs = self._search.run(None, feeds)
        return [{"score": outs[2 * i].astype(np.float64), "rays": outs[2 * i + 1].astype(np.float64),
                 "points": pts} for i, pts in enumerate(self._points)]

    def refine(self, r: np.ndarray, rays: np.ndarray) -> np.ndarray:
        """The exported refinement graph on crop r and rays (R,) crop pixels -> refined rays (R,) float64."""
        if self._refine is None:
            return super().refine(r, rays)
        feeds = {"r": np.ascontiguousarray(r)[None], "rays": np.asarray(rays, np.float32)[None]}
        return self._refine.run(None, feeds)[0][0].astype(np.float64)


def as_engine(model: torch.nn.Module | Engine, device=None) -> Engine:
    """What library code runs: an Engine as is, or a network in PyTorch eager (`TorchEngine` on device).

    The runtime is chosen once, where a command or app parses its `--engine` (`make_engine`); the library
    only takes the result.
    """
    return model if isinstance(model, Engine) else TorchEngine(model, device)


def make_engine(model, engine: str = DEFAULT_ENGINE, device=None, threads: int | None = None,
                quiet: bool = False) -> Engine:
    """An Engine for a network: `torch`, or `onnxruntime` (exported once per weights, cached on disk).

    onnxruntime runs on the CPU: with a CUDA/MPS device, or a network that cannot be exported, it falls back
    to torch and prints one line saying why (unless quiet). An Engine passed as `model` is returned as is.
    """
    if isinstance(model, Engine):
        return model
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "torch":
        return TorchEngine(model, device)
    dev = torch.device(device) if device is not None else None
    reason = None
    if dev is not None and dev.type != "cpu":
        reason = f"it runs on the CPU and the device is {dev.type}"
    else:
        try:
            return OrtEngine(cached_export(model), threads=threads)
        except (ExportError, ImportError) as err:
            reason = str(err)
    if not quiet:
        print(f"engine onnxruntime unavailable ({reason}); using torch", file=sys.stderr)
    return TorchEngine(model, device)
