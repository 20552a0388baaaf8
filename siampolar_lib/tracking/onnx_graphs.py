"""The graphs `tracking.onnx_export` writes, as modules, and their check against PyTorch in ONNX Runtime.

    TemplateStep  z (1, 127, 127, 3) uint8 RGB -> per level template features (1, C, k, k)
    SearchStep    x (1, 255, 255, 3) uint8 RGB, template features -> per level score (H, W), rays (R, H, W)
    RefineStep    r (1, S_r, S_r, 3) uint8 RGB, rays (1, R) crop pixels -> refined rays (1, R) (networks with
                  a refinement stage only)
"""
from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from siampolar_lib.errors import ExportError

TEMPLATE_NAME = "template.onnx"
SEARCH_NAME = "search.onnx"
REFINE_NAME = "refine.onnx"
ATOL, RTOL = 1e-3, 1e-4  # |ort - torch| <= ATOL + RTOL |torch| for every output (measured: <= 1.1e-4 on rays)


class TemplateStep(nn.Module):
    """The template graph: z (1, 127, 127, 3) uint8 RGB -> per level template features (1, C, k, k)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model.template_features(z.permute(0, 3, 1, 2).float()))


class SearchStep(nn.Module):
    """The per-frame graph: x (1, 255, 255, 3) uint8 RGB and template features -> per level (score, rays)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, *zf: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = self.model.features(x.permute(0, 3, 1, 2).float())
        outs: list[torch.Tensor] = []
        for level, (z, f) in enumerate(zip(zf, feats)):
            _, (cls, ctr, rays) = self.model.level_outputs(z, f, level)
            outs += [(torch.sigmoid(cls) * torch.sigmoid(ctr))[0, 0], rays[0]]  # (H, W), (R, H, W)
        return tuple(outs)


class RefineStep(nn.Module):
    """The refinement graph: r (1, S_r, S_r, 3) uint8 RGB, rays (1, R) crop pixels -> refined rays (1, R)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, r: torch.Tensor, rays: torch.Tensor) -> torch.Tensor:
        return self.model.refine(r.permute(0, 3, 1, 2).float(), rays)


def sample_refine_input(x: np.ndarray, size: int, num_rays: int) -> tuple[np.ndarray, np.ndarray]:
    """A refinement input from a search crop x (S, S, 3): its middle half resized to (size, size, 3), rays (R,)
    of a third of the side (the first polygon a tracker would hand the stage)."""
    import cv2

    S = x.shape[0]
    r = cv2.resize(np.ascontiguousarray(x[S // 4:S - S // 4, S // 4:S - S // 4]), (size, size),
                   interpolation=cv2.INTER_LINEAR)
    return r, np.full(num_rays, size / 3.0, np.float32)


def _quiet():
    """Silence the exporter's progress prints and warnings (its errors still raise)."""
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack


def _export_graph(module: nn.Module, args: tuple, path: Path, input_names, output_names) -> None:
    """torch.export (strict) -> ONNX file at path (dynamo exporter, weights inside the file)."""
    with _quiet(), torch.no_grad():
        program = torch.export.export(module, args, strict=True)
        onnx_program = torch.onnx.export(program, args, dynamo=True, input_names=list(input_names),
                                         output_names=list(output_names), external_data=False)
        onnx_program.save(str(path), external_data=False)


def check_graphs(folder: Path, z: np.ndarray, x: np.ndarray, zf: tuple, ref: tuple, names: list[str],
                 what: str, threads: int | None, refine: tuple | None = None) -> dict[str, float]:
    """Run the exported graphs in ONNX Runtime and compare every output with PyTorch's: {name: max |diff|}.

    The search graph is fed PyTorch's template features, so each graph is checked on its own; refine, when
    given, is (r, rays, torch's refined rays) for the refinement graph. ExportError when an output's shape
    differs or a value differs by more than ATOL + RTOL |torch|.
    """
    n = len(zf)
    ozf = session(folder / TEMPLATE_NAME, threads).run(None, {"z": z[None]})
    feeds = {"x": x[None], **{k: t.numpy() for k, t in zip(names[:n], zf)}}
    oout = session(folder / SEARCH_NAME, threads).run(None, feeds)
    diffs = check_outputs(names, ozf + oout, list(zf) + list(ref), what)
    if refine is not None:
        r, rays, want = refine
        got = session(folder / REFINE_NAME, threads).run(None, {"r": r[None], "rays": rays[None]})
        diffs |= check_outputs(["refined"], got, [want], what)
    return diffs


def check_outputs(names: list[str], ort_outs: list[np.ndarray], torch_outs: list, what: str) -> dict[str, float]:
    """{name: max |ort - torch|}; ExportError when a shape differs or a value by more than ATOL + RTOL |torch|."""
    diffs = {}
    for name, a, b in zip(names, ort_outs, torch_outs):
        b = b.numpy() if torch.is_tensor(b) else np.asarray(b)
        if a.shape != b.shape:
            raise ExportError(f"ONNX output {name} has shape {a.shape}, PyTorch {b.shape}")
        diffs[name] = float(np.abs(a - b).max())
        if (np.abs(a - b) > ATOL + RTOL * np.abs(b)).any():
            raise ExportError(f"ONNX output {name} differs from PyTorch by up to {diffs[name]:.3g} on {what}")
    return diffs


def session(path: Path, threads: int | None):
    """An ONNX Runtime CPU session on one graph file (warnings off)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
