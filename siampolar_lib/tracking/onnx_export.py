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

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import stat
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from siampolar_lib.data.davis import first_box, list_sequences, load_sequence, read_frame
from siampolar_lib.errors import ExportError, UserError
from siampolar_lib.geometry.crops import context_side, crop_square
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
    rstep = RefineStep(model).eval() if cfg.refine_iters else None
    refine = sample_refine_input(x, cfg.refine_size, cfg.num_rays) if rstep is not None else None
    with torch.inference_mode():
        zf = tstep(zt)
        ref = sstep(xt, *zf)
        if refine is not None:
            refine = (*refine, rstep(torch.from_numpy(refine[0])[None], torch.from_numpy(refine[1])[None]))
    graphs = graph_names(model)
    zf_names = [f"zf{i}" for i in range(len(cfg.strides))]
    out_names = [f"{k}{i}" for i in range(len(cfg.strides)) for k in ("score", "rays")]
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temps(out.parent, kinds=(".onnx-export",))
    with tempfile.TemporaryDirectory(prefix=temp_prefix(".onnx-export"), dir=out.parent) as tmp:
        tmp = Path(tmp)
        try:
            _export_graph(tstep, (zt,), tmp / TEMPLATE_NAME, ["z"], zf_names)
            _export_graph(sstep, (xt, *[t.clone() for t in zf]), tmp / SEARCH_NAME, ["x", *zf_names], out_names)
            if refine is not None:
                _export_graph(rstep, (torch.from_numpy(refine[0])[None], torch.from_numpy(refine[1])[None]),
                              tmp / REFINE_NAME, ["r", "rays"], ["refined"])
        except Exception as err:  # the exporter raises many types (torch._dynamo, onnxscript, ...): all mean "cannot"
            first = (str(err).strip().splitlines() or [""])[0][:300]
            raise ExportError(f"torch.onnx.export failed for {cfg.name}: {type(err).__name__}: {first}") from err
        diffs = check_graphs(tmp, z, x, zf, ref, zf_names + out_names, what, threads, refine)
        meta = {"format": FORMAT, "config": cfg.to_dict(), "torch": torch.__version__, "onnxruntime": ort.__version__,
                "search_size": cfg.search_size, "template_size": cfg.template_size,
                "levels": [[int(r.shape[0]), int(r.shape[1]), int(s)] for r, s in zip(ref[0::2], cfg.strides)],
                "inputs": {"template": ["z"], "search": ["x", *zf_names], **({"refine": ["r", "rays"]} if refine else {})},
                "outputs": out_names,
                "checked_on": what, "max_abs_diff": diffs, "model_digest": model_digest(model),
                "sha256": {n: hashlib.sha256((tmp / n).read_bytes()).hexdigest() for n in graphs}}
        (tmp / META_NAME).write_text(json.dumps(meta, indent=2) + "\n")
        out.mkdir(parents=True, exist_ok=True)
        for name in graphs + (META_NAME,):  # same file system: each rename is atomic
            os.replace(tmp / name, out / name)
        if REFINE_NAME not in graphs:  # an earlier export's stage must not sit beside graphs it does not fit
            (out / REFINE_NAME).unlink(missing_ok=True)
    return meta


_HOST = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:64] or "host"
# Temp folder names: <kind>-<host>-<pid>-<random>. Only this host's are judged: a pid says nothing about another
# machine sharing the folder.
_TEMP = re.compile(r"(?P<kind>\.staging|\.onnx-export)-(?P<host>[A-Za-z0-9._]+)-(?P<pid>\d+)-[a-z0-9_]+")


def temp_prefix(kind: str, pid: int | None = None) -> str:
    """A temp folder's name prefix, `<kind>-<host>-<pid>-`: it names its owner, so a later run can tell a dead one."""
    return f"{kind}-{_HOST}-{os.getpid() if pid is None else pid}-"


def _alive(pid: int) -> bool:
    """Whether process `pid` runs on this machine (True where that cannot be told, so nothing live is removed)."""
    if os.name != "posix":  # on Windows os.kill(pid, 0) sends CTRL_C_EVENT: no probe there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # EPERM: it runs, as another user
        pass
    return True


def remove_dead_temps(folder: Path, kinds: tuple[str, ...] = (".staging", ".onnx-export")) -> None:
    """Remove `folder`'s temp folders of `kinds` whose owner (`temp_prefix`: on this host) is dead; live ones stay."""
    with contextlib.suppress(OSError):  # a folder it cannot list or clean is left as it is
        for name in os.listdir(folder):
            m = _TEMP.fullmatch(name)
            if m and m["kind"] in kinds and m["host"] == _HOST and not _alive(int(m["pid"])):
                _discard(Path(folder) / name, aside=False)


def _discard(path: Path, aside: bool = True) -> None:
    """Remove a cache entry, never following a link (a link is unlinked, its target kept). With `aside` a folder is
    first renamed to a temp name, so a run killed while removing it leaves only what remove_dead_temps clears."""
    if path.is_symlink() or not path.is_dir():
        return path.unlink()
    if aside:
        os.rename(path, trash := path.parent / f"{temp_prefix('.staging')}{secrets.token_hex(4)}")
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
    if not hasattr(model, "config") or not hasattr(model, "template_features"):
        raise ExportError(f"{type(model).__name__} is not a SiamPolar network (no config/template_features)")
    root = cache_root()
    remove_dead_temps(root)
    digest = model_digest(model)
    folder = root / digest[:24]
    if os.path.lexists(folder):
        if (problem := cache_problem(folder, model, digest)) is None:
            return folder
        print(f"cached ONNX export {folder}: {' '.join(problem.split())}; exporting it again", file=sys.stderr)
    try:
        staging = Path(tempfile.mkdtemp(prefix=temp_prefix(".staging"), dir=root))
        try:
            export_onnx(model, staging)
            _install(staging, folder, model, digest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as err:
        raise UserError(f"ONNX cache {root}: cannot be written ({err.strerror or err}); "
                        "set SIAMPOLAR_ONNX_CACHE to a writable folder") from None
    return folder
