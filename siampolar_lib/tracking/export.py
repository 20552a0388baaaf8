"""Export a SiamPolar network to ONNX: `siampolar-export-onnx --checkpoint CKPT --out DIR`
(or `python -m siampolar_lib.tracking.export`).

Writes into DIR (each file atomically: a temporary file, then a rename):
    template.onnx        z (1, 127, 127, 3) uint8 RGB -> zf0, zf1: template features (1, C, k, k) per level
    search.onnx          x (1, 255, 255, 3) uint8 RGB, zf0, zf1 -> per level score (H, W) = sigmoid(cls) x
                         sigmoid(ctr), rays (R, H, W) crop pixels
    siampolar_onnx.json  the model config, the levels (H, W, stride), the check against PyTorch
The HWC -> CHW float conversion and the score are inside the graphs, so the tracker hands ONNX Runtime its
uint8 crops as they are. The depth-wise correlation takes the template features as a graph input, which only
the dynamo exporter handles (`torch.onnx.export(dynamo=False)` fails: "convolution for kernel of unknown shape").
Before it reports success the export runs both graphs in ONNX Runtime on a real frame (the first DAVIS
sequence when a DAVIS folder is found, else a synthetic frame) and compares every output with PyTorch's.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checkpoint import load_model
from ..cli import ArgumentParser, cli_main
from ..data.davis import first_box, list_sequences, load_sequence, read_frame
from ..errors import ExportError
from ..geometry.crops import context_side, crop_square
from ..paths import davis_available
from ..paths import davis_root as resolve_davis_root

TEMPLATE_NAME = "template.onnx"
SEARCH_NAME = "search.onnx"
META_NAME = "siampolar_onnx.json"
FORMAT = "siampolar-onnx-v1"  # bump when the graphs' inputs or outputs change (invalidates the cache)
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


def model_digest(model: nn.Module) -> str:
    """sha256 of a network's whole config and weights (names, shapes, bytes) plus the export format: hex str."""
    h = hashlib.sha256(f"{FORMAT}|{torch.__version__}|{json.dumps(model.config.to_dict(), sort_keys=True)}".encode())
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def sample_crops(model: nn.Module, davis_root=None) -> tuple[np.ndarray, np.ndarray, str]:
    """A template and a search crop, (127, 127, 3) and (255, 255, 3) uint8 RGB, from a real frame if possible.

    Real: frame 0 of the first DAVIS val sequence, around its first mask's box, the search crop from frame 1.
    Otherwise a synthetic frame (seeded noise with a bright disk). Returns (z, x, description).
    """
    cfg = model.config
    root = resolve_davis_root(davis_root)
    frames = None
    if davis_available(root):
        names = list_sequences(root, "val")
        if names:
            seq = load_sequence(root, names[0])
            box = first_box(seq)
            frames = [read_frame(p) for p in seq.frame_paths[:2]]
            what = f"DAVIS {names[0]} frames 0-1"
    if frames is None:
        rng = np.random.default_rng(0)
        frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
        yy, xx = np.mgrid[:240, :320]
        frame[(xx - 160) ** 2 + (yy - 120) ** 2 < 40 ** 2] = (230, 200, 60)
        frames, box, what = [frame, np.roll(frame, 6, axis=1)], np.array([120.0, 80.0, 80.0, 80.0]), "synthetic frame"
    centre = box[:2] + box[2:] / 2.0
    s_z = context_side(box[2], box[3], cfg.context)
    z, _ = crop_square(frames[0], centre, s_z, cfg.template_size)
    x, _ = crop_square(frames[1], centre, s_z * cfg.search_size / cfg.template_size, cfg.search_size)
    return z, x, what


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


def _check_graphs(folder: Path, z: np.ndarray, x: np.ndarray, zf: tuple, ref: tuple, names: list[str],
                  what: str, threads: int | None) -> dict[str, float]:
    """Run both exported graphs in ONNX Runtime and compare every output with PyTorch's: {name: max |diff|}.

    The search graph is fed PyTorch's template features, so each graph is checked on its own. ExportError when
    an output's shape differs or a value differs by more than ATOL + RTOL |torch|.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
    opts.log_severity_level = 3
    st = ort.InferenceSession(str(folder / TEMPLATE_NAME), opts, providers=["CPUExecutionProvider"])
    ss = ort.InferenceSession(str(folder / SEARCH_NAME), opts, providers=["CPUExecutionProvider"])
    n = len(zf)
    ozf = st.run(None, {"z": z[None]})
    oout = ss.run(None, {"x": x[None], **{k: t.numpy() for k, t in zip(names[:n], zf)}})
    diffs = {}
    for name, a, b in zip(names, ozf + oout, list(zf) + list(ref)):
        b = b.numpy()
        if a.shape != b.shape:
            raise ExportError(f"ONNX output {name} has shape {a.shape}, PyTorch {b.shape}")
        diffs[name] = float(np.abs(a - b).max())
        if (np.abs(a - b) > ATOL + RTOL * np.abs(b)).any():
            raise ExportError(f"ONNX output {name} differs from PyTorch by up to {diffs[name]:.3g} on {what}")
    return diffs


def export_onnx(model: nn.Module, out: str | os.PathLike, davis_root=None, threads: int | None = None) -> dict:
    """Export `model` (a SiamPolar network) to out/template.onnx, out/search.onnx and out/siampolar_onnx.json.

    Checks both graphs in ONNX Runtime against PyTorch on `sample_crops` and raises ExportError (nothing
    written into `out`) when an output differs by more than ATOL + RTOL |torch|. Returns the meta dict.
    """
    import onnxruntime as ort

    if not hasattr(model, "config") or not hasattr(model, "template_features"):
        raise ExportError(f"{type(model).__name__} is not a SiamPolar network (no config/template_features)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: exists and is not a folder")
    model = model.to("cpu").eval()
    cfg = model.config
    z, x, what = sample_crops(model, davis_root)
    zt, xt = torch.from_numpy(z)[None], torch.from_numpy(x)[None]
    tstep, sstep = TemplateStep(model).eval(), SearchStep(model).eval()
    with torch.inference_mode():
        zf = tstep(zt)
        ref = sstep(xt, *zf)
    zf_names = [f"zf{i}" for i in range(len(cfg.strides))]
    out_names = [f"{k}{i}" for i in range(len(cfg.strides)) for k in ("score", "rays")]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".onnx-export-", dir=out.parent) as tmp:
        tmp = Path(tmp)
        try:
            _export_graph(tstep, (zt,), tmp / TEMPLATE_NAME, ["z"], zf_names)
            _export_graph(sstep, (xt, *[t.clone() for t in zf]), tmp / SEARCH_NAME, ["x", *zf_names], out_names)
        except Exception as err:  # the exporter raises many types (torch._dynamo, onnxscript, ...): all mean "cannot"
            first = (str(err).strip().splitlines() or [""])[0][:300]
            raise ExportError(f"torch.onnx.export failed for {cfg.name}: {type(err).__name__}: {first}") from err
        diffs = _check_graphs(tmp, z, x, zf, ref, zf_names + out_names, what, threads)
        meta = {"format": FORMAT, "config": cfg.to_dict(), "torch": torch.__version__, "onnxruntime": ort.__version__,
                "search_size": cfg.search_size, "template_size": cfg.template_size,
                "levels": [[int(r.shape[0]), int(r.shape[1]), int(s)] for r, s in zip(ref[0::2], cfg.strides)],
                "inputs": {"template": ["z"], "search": ["x", *zf_names]}, "outputs": out_names,
                "checked_on": what, "max_abs_diff": diffs}
        (tmp / META_NAME).write_text(json.dumps(meta, indent=2) + "\n")
        out.mkdir(parents=True, exist_ok=True)
        for name in (TEMPLATE_NAME, SEARCH_NAME, META_NAME):  # same file system: each rename is atomic
            os.replace(tmp / name, out / name)
    return meta


def cache_root() -> Path:
    """Where exported graphs are cached: $SIAMPOLAR_ONNX_CACHE, else <temp dir>/siampolar-onnx."""
    env = os.environ.get("SIAMPOLAR_ONNX_CACHE")
    return Path(env) if env else Path(tempfile.gettempdir()) / "siampolar-onnx"


def cached_export(model: nn.Module) -> Path:
    """The folder of `model`'s exported graphs, keyed by model_digest: exported (and checked) on first use only."""
    if not hasattr(model, "config") or not hasattr(model, "template_features"):
        raise ExportError(f"{type(model).__name__} is not a SiamPolar network (no config/template_features)")
    folder = cache_root() / model_digest(model)[:24]
    meta = folder / META_NAME
    if meta.is_file() and (folder / SEARCH_NAME).is_file() and (folder / TEMPLATE_NAME).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder.parent))
    try:
        export_onnx(model, staging)
        try:
            os.rename(staging, folder)  # atomic; a concurrent export that finished first wins
        except OSError:
            if not (folder / META_NAME).is_file():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return folder


@cli_main
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for bad input, with a one-line message)."""
    ap = ArgumentParser(prog="siampolar-export-onnx", description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="a SiamPolar checkpoint (.pt)")
    ap.add_argument("--out", required=True, help="folder for template.onnx, search.onnx and siampolar_onnx.json")
    ap.add_argument("--davis-root", default=None, help="DAVIS folder for the check frame (default: $SIAMPOLAR_DAVIS_ROOT)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out}: exists and is not a folder")
    if Path(args.checkpoint).resolve() in [(out / n).resolve() for n in (TEMPLATE_NAME, SEARCH_NAME, META_NAME)]:
        raise ExportError(f"--out {out} would overwrite the checkpoint {args.checkpoint}")
    model = load_model(args.checkpoint, device="cpu")
    meta = export_onnx(model, out, davis_root=args.davis_root)
    worst = max(meta["max_abs_diff"].values())
    print(f"wrote {out / TEMPLATE_NAME}, {out / SEARCH_NAME} and {out / META_NAME} ({meta['config']['name']}); "
          f"ONNX Runtime matches PyTorch on {meta['checked_on']} (max abs difference {worst:.2g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
