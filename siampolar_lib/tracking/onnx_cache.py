"""The user's private cache of exported graphs: one checked export per set of weights, used only once verified.

`cached_export(model)` is what the ONNX Runtime engine calls: the folder `cache_root()/<model_digest[:24]>`, exported
(`onnx_export.write_export`, checked on the synthetic frame) the first time and whenever `cache_problem` finds the
entry not to be this model's untouched export. The cache holds no lock (trackers share it): an entry is staged
beside its place and renamed in (`install`), and every temp records its owner (`outputs.temp_prefix`), so only
dead processes' temps are removed.
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

from torch import nn

from siampolar_lib.errors import ExportError, UserError
from siampolar_lib.outputs import clean_stale_temps, fresh_folder_beside, temp_prefix
from siampolar_lib.tracking.onnx_export import (
    FORMAT,
    META_NAME,
    SEARCH_NAME,
    check_network,
    graph_names,
    model_digest,
    write_export,
)

# What killed exports leave in the cache: staging folders and entries set aside for removal
CACHE_TEMPS = (".*.partial-*", ".*.old-*")


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


def cache_problem(folder: Path, model: nn.Module, digest: str) -> str | None:
    """Why the cached export `folder` must not be used for `model` (whose model_digest is `digest`); None: use it.

    Trusted only when the folder and its files are no links, the meta parses and names this model's digest,
    config, sizes, levels and format, lists exactly this model's graphs (`graph_names`: the engine runs every graph
    it lists, so a refine.onnx planted beside a model without a refinement stage is refused), and the graphs'
    sha256 match the meta's.
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
    extra = sorted(set(hashes) - set(graphs))
    if extra:  # the engine runs every graph the meta lists (refine.onnx for a refinement stage): none unchecked
        return f"{META_NAME} lists {', '.join(map(str, extra))}, which this model's export does not have"
    for name in graphs:
        if hashes.get(name) != hashlib.sha256(data[name]).hexdigest():
            return f"{name} does not match its sha256 in {META_NAME}"
    levels = graph_levels(data[SEARCH_NAME], cfg.strides)  # the graph is this model's once its sha256 matched
    return None if meta.get("levels") == levels else f"the levels in {META_NAME} are not this model's"


def install(staging: Path, folder: Path, model: nn.Module, digest: str) -> None:
    """Rename the checked export `staging` to `folder` (atomic), replacing an entry that fails cache_problem."""
    for _ in range(3):
        try:
            return os.rename(staging, folder)
        except OSError:
            if not os.path.lexists(folder):
                raise
            if cache_problem(folder, model, digest) is None:
                return  # a concurrent export of the same weights finished first
            discard(folder)
    raise ExportError(f"cannot replace the cached export {folder}")


def discard(path: Path, aside: bool = True) -> None:
    """Remove a cache entry, never following a link (a link is unlinked, its target kept). With `aside` a folder is
    first renamed to a temp name (`outputs.temp_prefix`), so a run killed while removing it leaves only a dead
    owner's temp, which the next run's `clean_stale_temps` clears."""
    if path.is_symlink() or not path.is_dir():
        return path.unlink()
    if aside:
        os.rename(path, trash := path.parent / f"{temp_prefix(path, 'old')}{secrets.token_hex(4)}")
        path = trash
    shutil.rmtree(path, ignore_errors=True)


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
            install(staging, folder, model, digest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as err:
        raise UserError(f"ONNX cache {root}: cannot be written ({err.strerror or err}); "
                        "set SIAMPOLAR_ONNX_CACHE to a writable folder") from None
    return folder
