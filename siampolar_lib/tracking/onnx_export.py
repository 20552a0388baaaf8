"""Export a SiamPolar network to ONNX: `siampolar-export-onnx --checkpoint CKPT --out DIR`
(or `python -m siampolar_lib.commands.export_onnx`).

Writes into DIR (each file atomically: a temporary file, then a rename):
    template.onnx        z (1, 127, 127, 3) uint8 RGB -> zf0, zf1: template features (1, C, k, k) per level
    search.onnx          x (1, 255, 255, 3) uint8 RGB, zf0, zf1 -> per level score (H, W) = sigmoid(cls) x
                         sigmoid(ctr), rays (R, H, W) crop pixels
    siampolar_onnx.json  the model config and digest, the levels (H, W, stride), the graphs' sha256, the check
                         against PyTorch
The HWC -> CHW float conversion and the score are inside the graphs, so the tracker hands ONNX Runtime its
uint8 crops as they are. The depth-wise correlation takes the template features as a graph input, which only
the dynamo exporter handles (`torch.onnx.export(dynamo=False)` fails: "convolution for kernel of unknown shape").
Before it reports success the export runs both graphs in ONNX Runtime on a real frame (the first DAVIS
sequence when a DAVIS folder is found, else a synthetic frame) and compares every output with PyTorch's.
`cached_export` keeps such a folder per set of weights in the user's private `cache_root`, used once verified.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import stat
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from siampolar_lib.data.davis import first_box, list_sequences, load_sequence, read_frame
from siampolar_lib.errors import ExportError, UserError
from siampolar_lib.geometry.crops import context_side, crop_square
from siampolar_lib.outputs import clean_stale_temps, fresh_folder_beside, is_empty_folder, owned_output, temp_prefix
from siampolar_lib.paths import davis_available
from siampolar_lib.paths import davis_root as resolve_davis_root
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
# What killed exports leave in the cache: staging folders and entries set aside for removal (`outputs.temp_prefix`,
# so each records its owner and only dead owners' are removed; the cache holds no lock, concurrent trackers share it)
CACHE_TEMPS = (".*.partial-*", ".*.old-*")


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


def export_onnx(model: nn.Module, out: str | os.PathLike, davis_root=None, threads: int | None = None,
                overwrite: bool | None = None) -> dict:
    """Export `model` (a SiamPolar network) into the folder `out`: template.onnx, search.onnx (refine.onnx for a
    refinement stage) and siampolar_onnx.json; returns the meta dict.

    The run owns `out` (`outputs.owned_output`): it holds `out`'s lock, writes into a staging folder beside it and
    swaps that in whole only once ONNX Runtime reproduces PyTorch on `sample_crops`, so an ExportError (an output
    differs by more than ATOL + RTOL |torch|) or any other failure leaves `out` as it was. overwrite: None (the
    library's default) replaces an earlier export, True whatever `out` holds, False only an empty folder.
    """
    check_network(model)
    out = check_export_output(out, overwrite)
    with owned_output(out) as staging:
        meta = write_export(model, staging, davis_root, threads)
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


def write_export(model: nn.Module, folder: Path, davis_root=None, threads: int | None = None) -> dict:
    """Export `model`'s graphs into the existing folder `folder` and check them, then write the meta: the meta dict.

    No staging of its own: callers own `folder` (`export_onnx` stages beside its output, `cached_export` in the
    cache). ExportError when torch.onnx.export fails or ONNX Runtime does not reproduce PyTorch.
    """
    model = model.to("cpu").eval()
    cfg = model.config
    z, x, what = sample_crops(model, davis_root)
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


def _discard(path: Path, aside: bool = True) -> None:
    """Remove a cache entry, never following a link (a link is unlinked, its target kept). With `aside` a folder is
    first renamed to a temp name (`outputs.temp_prefix`), so a run killed while removing it leaves only a dead
    owner's temp, which the next run's `clean_stale_temps` clears."""
    if path.is_symlink() or not path.is_dir():
        return path.unlink()
    if aside:
        os.rename(path, trash := path.parent / f"{temp_prefix(path, 'old')}{secrets.token_hex(4)}")
        path = trash
    shutil.rmtree(path, ignore_errors=True)


def cache_root() -> Path:
    """The user's private folder of exported graphs (made mode 0700): $SIAMPOLAR_ONNX_CACHE, else
    $XDG_CACHE_HOME/siampolar/onnx, else ~/.cache/siampolar/onnx. UserError (one line) when it is not a folder,
    cannot be made, or is not private (owned by another user, or writable by group or others): whoever can write
    into it decides what every tracker using it computes.
    """
    env = os.environ.get("SIAMPOLAR_ONNX_CACHE")
    if env:
        root, what, hint = Path(env), f"SIAMPOLAR_ONNX_CACHE={env}", ""
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        try:
            base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # the XDG spec ignores a relative one
        except RuntimeError:
            raise UserError("no home folder for the ONNX cache: set SIAMPOLAR_ONNX_CACHE to a folder") from None
        root = base / "siampolar" / "onnx"
        what, hint = f"ONNX cache {root}", " (or set SIAMPOLAR_ONNX_CACHE to another folder)"
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = os.stat(root)
    except OSError as err:
        problem = "is a file, not a folder" if root.is_file() else f"cannot be made ({err.strerror})"
        raise UserError(f"{what}: {problem}{hint}") from None
    if os.name == "posix" and st.st_uid != os.geteuid():
        raise UserError(f"{what}: owned by uid {st.st_uid}, not by you (uid {os.geteuid()}); use your own{hint}")
    if os.name == "posix" and st.st_mode & 0o022:
        raise UserError(f"{what}: writable by group or others (mode {st.st_mode & 0o777:o}); chmod 700 it{hint}")
    return root


def graph_levels(search_graph: bytes, strides) -> list[list[int]]:
    """[H, W, stride] of each level: H, W from the search graph's score outputs, the strides the model's."""
    import onnx

    outputs = onnx.load_model_from_string(search_graph).graph.output
    shapes = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in outputs}
    return [[*shapes.get(f"score{i}", [0, 0]), int(s)] for i, s in enumerate(strides)]


def graph_names(model: nn.Module) -> tuple[str, ...]:
    """The graph files an export of `model` holds: template and search, and refine for a refinement stage."""
    return (TEMPLATE_NAME, SEARCH_NAME) + ((REFINE_NAME,) if model.config.refine_iters else ())


def cache_problem(folder: Path, model: nn.Module, digest: str) -> str | None:
    """Why the cached export `folder` must not be used for `model` (whose model_digest is `digest`); None: use it.

    Trusted only when the folder and its three files are no links, the meta parses and names this model's digest,
    config, sizes, levels and format, and the graphs' sha256 match the meta's.
    """
    data = {}
    graphs = graph_names(model)
    for name in ("", META_NAME, *graphs):  # "": the folder itself
        what = name or "the folder"
        try:
            mode = os.lstat(folder / name).st_mode
            if stat.S_ISLNK(mode):
                return f"{what} is a symbolic link, not trusted"
            if not (stat.S_ISREG(mode) if name else stat.S_ISDIR(mode)):
                return f"{what} is not a {'file' if name else 'folder'}"
            data[name] = (folder / name).read_bytes() if name else b""
        except OSError as err:
            return f"{what} cannot be read ({err.strerror or err})"
    try:
        meta = json.loads(data[META_NAME])
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError
        return f"{META_NAME} does not parse ({err})"
    cfg = model.config
    want = {"format": FORMAT, "model_digest": digest, "config": json.loads(json.dumps(cfg.to_dict())),
            "search_size": cfg.search_size, "template_size": cfg.template_size}
    for key, value in want.items():
        if not isinstance(meta, dict) or meta.get(key) != value:
            return f"the {key} in {META_NAME} is not this model's"
    hashes = meta["sha256"] if isinstance(meta.get("sha256"), dict) else {}
    for name in graphs:
        if hashes.get(name) != hashlib.sha256(data[name]).hexdigest():
            return f"{name} does not match its sha256 in {META_NAME}"
    levels = graph_levels(data[SEARCH_NAME], cfg.strides)  # the graph is this model's once its sha256 matched
    return None if meta.get("levels") == levels else f"the levels in {META_NAME} are not this model's"


def _install(staging: Path, folder: Path, model: nn.Module, digest: str) -> None:
    """Rename the checked export `staging` to `folder` (atomic), replacing an entry that fails cache_problem."""
    for _ in range(3):
        try:
            return os.rename(staging, folder)
        except OSError:
            if not os.path.lexists(folder):
                raise
            if cache_problem(folder, model, digest) is None:
                return  # a concurrent export of the same weights finished first
            _discard(folder)
    raise ExportError(f"cannot replace the cached export {folder}")


def cached_export(model: nn.Module) -> Path:
    """The folder of `model`'s exported graphs in `cache_root()`, keyed by model_digest: exported once, then reused.

    Used only when `cache_problem` finds nothing wrong, else exported (and checked) again with one line on stderr
    saying why; killed runs' temp folders go first. UserError when the cache is not private or not writable.
    """
    check_network(model)
    root = cache_root()
    clean_stale_temps(root, CACHE_TEMPS)
    digest = model_digest(model)
    folder = root / digest[:24]
    if os.path.lexists(folder):
        if (problem := cache_problem(folder, model, digest)) is None:
            return folder
        print(f"cached ONNX export {folder}: {' '.join(problem.split())}; exporting it again", file=sys.stderr)
    try:
        staging = fresh_folder_beside(folder)
        try:
            write_export(model, staging)
            _install(staging, folder, model, digest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as err:
        raise UserError(f"ONNX cache {root}: cannot be written ({err.strerror or err}); "
                        "set SIAMPOLAR_ONNX_CACHE to a writable folder") from None
    return folder
