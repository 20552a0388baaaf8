"""Export a SiamPolar network to ONNX: `siampolar-export-onnx --checkpoint CKPT --out DIR`
(or `python -m siampolar_lib.commands.export_onnx`).

Writes DIR whole (staged beside it, swapped in once checked; `outputs.owned_output`):
    template.onnx        z (1, 127, 127, 3) uint8 RGB -> zf0, zf1: template features (1, C, k, k) per level
    search.onnx          x (1, 255, 255, 3) uint8 RGB, zf0, zf1 -> per level score (H, W) = sigmoid(cls) x
                         sigmoid(ctr), rays (R, H, W) crop pixels
    siampolar_onnx.json  the model config and digest, the levels (H, W, stride), the graphs' sha256, the check
                         against PyTorch
The HWC -> CHW float conversion and the score are inside the graphs, so the tracker hands ONNX Runtime its
uint8 crops as they are. The depth-wise correlation takes the template features as a graph input, which only
the dynamo exporter handles (`torch.onnx.export(dynamo=False)` fails: "convolution for kernel of unknown shape").
Before it reports success the export runs both graphs in ONNX Runtime on two check frames its caller gives
(`CheckFrames`: the command reads the first DAVIS val sequence; the default is a seeded synthetic frame) and
compares every output with PyTorch's. `tracking.onnx_cache` keeps such a folder per set of weights.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from siampolar_lib.errors import DISK_ERRNOS, DiskError, ExportError
from siampolar_lib.geometry.crops import context_side, crop_square
from siampolar_lib.outputs import is_empty_folder, owned_output
from siampolar_lib.tracking.onnx_graphs import (
    REFINE_NAME,
    SEARCH_NAME,
    TEMPLATE_NAME,
    RefineStep,
    SearchStep,
    TemplateStep,
    _export_graph,
    check_graphs,
    sample_refine_input,
)

META_NAME = "siampolar_onnx.json"
FORMAT = "siampolar-onnx-v1"  # bump when the graphs' inputs or outputs change (invalidates the cache)


def model_digest(model: nn.Module) -> str:
    """sha256 of a network's whole config and weights (names, shapes, bytes) plus the export format: hex str."""
    h = hashlib.sha256(f"{FORMAT}|{torch.__version__}|{json.dumps(model.config.to_dict(), sort_keys=True)}".encode())
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class CheckFrames:
    """What an export is checked on: two frames of one video and the object's box in the first."""

    frames: tuple[np.ndarray, np.ndarray]  # (H, W, 3) uint8 RGB each: the template's frame, then the search's
    box_xywh: np.ndarray  # (4,) float, input pixels: the object in frames[0]; both crops are centred on it
    what: str  # names the frames in a failed check's message and in the meta's checked_on


def synthetic_check_frames() -> CheckFrames:
    """The default check: a seeded noise frame (240, 320, 3) with a bright disk, and the same frame moved 6 px right."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:240, :320]
    frame[(xx - 160) ** 2 + (yy - 120) ** 2 < 40 ** 2] = (230, 200, 60)
    return CheckFrames((frame, np.roll(frame, 6, axis=1)), np.array([120.0, 80.0, 80.0, 80.0]), "synthetic frame")


def sample_crops(model: nn.Module, check: CheckFrames | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """A template and a search crop, (127, 127, 3) and (255, 255, 3) uint8 RGB, cut as the tracker cuts them.

    check: the frames and box (default `synthetic_check_frames()`): z from frames[0] around the box, x from
    frames[1] around the same centre. Returns (z, x, check.what).
    """
    cfg = model.config
    check = check if check is not None else synthetic_check_frames()
    box = np.asarray(check.box_xywh, dtype=np.float64)
    centre = box[:2] + box[2:] / 2.0
    s_z = context_side(box[2], box[3], cfg.context)
    z, _ = crop_square(check.frames[0], centre, s_z, cfg.template_size)
    x, _ = crop_square(check.frames[1], centre, s_z * cfg.search_size / cfg.template_size, cfg.search_size)
    return z, x, check.what


def graph_names(model: nn.Module) -> tuple[str, ...]:
    """The graph files an export of `model` holds: template and search, and refine for a refinement stage."""
    return (TEMPLATE_NAME, SEARCH_NAME) + ((REFINE_NAME,) if model.config.refine_iters else ())


def export_onnx(model: nn.Module, out: str | os.PathLike, check_frames: CheckFrames | None = None,
                threads: int | None = None, overwrite: bool | None = None) -> dict:
    """Export `model` (a SiamPolar network) into the folder `out`: template.onnx, search.onnx (refine.onnx for a
    refinement stage) and siampolar_onnx.json; returns the meta dict.

    The run owns `out` (`outputs.owned_output`): it holds `out`'s lock, writes into a staging folder beside it and
    swaps that in whole only once ONNX Runtime reproduces PyTorch on `check_frames` (default: the synthetic
    frame), so an ExportError (an output differs by more than ATOL + RTOL |torch|), a second run into `out` or any
    other failure leaves `out` as it was. overwrite: None (the library's default) replaces an earlier export, True
    whatever `out` holds, False only an empty folder.
    """
    check_network(model)
    with owned_output(out) as staging:
        check_export_output(out, overwrite)  # under the lock: another run cannot fill `out` after the check
        meta = write_export(model, staging, check_frames, threads)
    return meta


def check_network(model: nn.Module) -> None:
    """ExportError unless `model` is a SiamPolar network (a config and template_features)."""
    if not hasattr(model, "config") or not hasattr(model, "template_features"):
        raise ExportError(f"{type(model).__name__} is not a SiamPolar network (no config/template_features)")


def check_export_output(out: str | os.PathLike, overwrite: bool | None = None, option: str = "--out") -> Path:
    """An export's output folder before any work: not a file; missing or empty, or else replaceable as `overwrite`
    says (see `export_onnx`). ExportError naming `option` and what the folder holds."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{option} {out}: exists and is not a folder")
    if overwrite is True or is_empty_folder(out):
        return out
    held = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    export_files = (TEMPLATE_NAME, SEARCH_NAME, REFINE_NAME, META_NAME)
    if overwrite is None and META_NAME in held and set(held) <= set(export_files):
        return out
    what = "an earlier export" if set(held) <= set(export_files) else "files that are not an export"
    raise ExportError(f"{option} {out}: holds {what} ({', '.join(held[:4])}{', ...' if len(held) > 4 else ''}); "
                      "pass --overwrite to replace it (as a whole), or choose another folder")


def write_export(model: nn.Module, folder: Path, check_frames: CheckFrames | None = None,
                 threads: int | None = None) -> dict:
    """Export `model`'s graphs into the existing folder `folder` and check them, then write the meta: the meta dict.

    No staging of its own: callers own `folder` (`export_onnx` stages beside its output, `cached_export` in the
    cache). ExportError when torch.onnx.export fails or ONNX Runtime does not reproduce PyTorch.
    """
    model = model.to("cpu").eval()
    cfg = model.config
    z, x, what = sample_crops(model, check_frames)
    zt, xt = torch.from_numpy(z)[None], torch.from_numpy(x)[None]
    tstep, sstep = TemplateStep(model).eval(), SearchStep(model).eval()
    rstep = RefineStep(model).eval() if cfg.refine_iters else None
    refine = sample_refine_input(x, cfg.refine_size, cfg.num_rays) if rstep is not None else None
    rin = tuple(torch.from_numpy(a)[None] for a in refine) if refine is not None else None
    with torch.inference_mode():
        zf = tstep(zt)
        ref = sstep(xt, *zf)
        if rstep is not None:
            refine = (*refine, rstep(*rin))
    zf_names = [f"zf{i}" for i in range(len(cfg.strides))]
    out_names = [f"{k}{i}" for i in range(len(cfg.strides)) for k in ("score", "rays")]
    try:
        _export_graph(tstep, (zt,), folder / TEMPLATE_NAME, ["z"], zf_names)
        # clone: the features were made in inference mode, which the exporter cannot trace
        _export_graph(sstep, (xt, *[t.clone() for t in zf]), folder / SEARCH_NAME, ["x", *zf_names], out_names)
        if rstep is not None:
            _export_graph(rstep, rin, folder / REFINE_NAME, ["r", "rays"], ["refined"])
    except Exception as err:  # the exporter raises many types (torch._dynamo, onnxscript, ...): all mean "cannot"
        if isinstance(err, OSError) and err.errno in DISK_ERRNOS:  # the disk's fault, not the network's
            raise DiskError(err.errno, f"{err.strerror}: not written (any earlier copy is kept)", str(folder)) from err
        first = (str(err).strip().splitlines() or [""])[0][:300]
        raise ExportError(f"torch.onnx.export failed for {cfg.name}: {type(err).__name__}: {first}") from err
    diffs = check_graphs(folder, z, x, zf, ref, zf_names + out_names, what, threads, refine)
    meta = _meta(model, folder, [tuple(r.shape[:2]) for r in ref[0::2]], zf_names, out_names, what, diffs)
    (folder / META_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _meta(model: nn.Module, folder: Path, score_shapes: list, zf_names: list[str], out_names: list[str], what: str,
          diffs: dict[str, float]) -> dict:
    """The meta of an export in `folder`: config, digest, levels (H, W, stride), graph inputs/outputs, sha256, check."""
    import onnxruntime as ort

    cfg = model.config
    refine = {"refine": ["r", "rays"]} if cfg.refine_iters else {}
    return {"format": FORMAT, "config": cfg.to_dict(), "torch": torch.__version__, "onnxruntime": ort.__version__,
            "search_size": cfg.search_size, "template_size": cfg.template_size,
            "levels": [[int(h), int(w), int(s)] for (h, w), s in zip(score_shapes, cfg.strides)],
            "inputs": {"template": ["z"], "search": ["x", *zf_names], **refine}, "outputs": out_names,
            "checked_on": what, "max_abs_diff": diffs, "model_digest": model_digest(model),
            "sha256": {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in graph_names(model)}}
