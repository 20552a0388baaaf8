"""The ONNX cache: a private folder of the user's, an entry used only once verified (no links; the meta names the
model, its levels and format; the graphs' sha256 match), exported again otherwise; killed exports' temps removed."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from siampolar_lib.errors import USER_ERRORS, UserError
from siampolar_lib.models.config import QUICK
from siampolar_lib.models.siampolar import SiamPolar
from siampolar_lib.outputs import HOST, temp_prefix
from siampolar_lib.tracking.engine import OrtEngine, TorchEngine
from siampolar_lib.tracking.onnx_cache import cache_root, cached_export
from siampolar_lib.tracking.onnx_export import (
    META_NAME,
    REFINE_NAME,
    SEARCH_NAME,
    TEMPLATE_NAME,
    export_onnx,
    model_digest,
    sample_crops,
)

LEVELS = [[25, 25, 8], [13, 13, 16]]  # the quick network's score maps (H, W, stride)


def quick_model(seed: int) -> SiamPolar:
    """An untrained quick network with seeded weights: exports in seconds."""
    torch.manual_seed(seed)
    return SiamPolar(QUICK, pretrained=False).eval()


@pytest.fixture(scope="module")
def model() -> SiamPolar:
    return quick_model(0)


@pytest.fixture(scope="module")
def good(model, quick_export, tmp_path_factory) -> Path:
    """The network's checked export, to copy into a fresh cache as a good entry: a copy of the run's export of the
    seed-0 quick network (conftest's quick_export), which `model` is."""
    assert json.loads((quick_export / META_NAME).read_text())["model_digest"] == model_digest(model)
    out = tmp_path_factory.mktemp("good") / "export"
    shutil.copytree(quick_export, out)
    return out


@pytest.fixture
def cache(monkeypatch, tmp_path) -> Path:
    """A fresh cache root for one test (not made yet: cache_root makes it)."""
    monkeypatch.setenv("SIAMPOLAR_ONNX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def copy_export(monkeypatch, good) -> list:
    """cached_export's export replaced by a copy of `good` (seconds saved; the cache logic is what is tested):
    the list of the folders it exported into."""
    from siampolar_lib.tracking import onnx_cache

    calls = []

    def copy(model, out, *args, **kwargs):
        calls.append(Path(out))
        shutil.copytree(good, out, dirs_exist_ok=True)

    monkeypatch.setattr(onnx_cache, "write_export", copy)
    return calls


def plant(cache: Path, model, src: Path) -> Path:
    """Copy the export folder `src` into `cache` as the entry of `model`: the folder it would be looked up in."""
    cache.mkdir(mode=0o700, exist_ok=True)
    folder = cache / model_digest(model)[:24]
    shutil.copytree(src, folder, symlinks=True)
    return folder


def assert_computes(folder: Path, model) -> None:
    """The graphs in `folder` compute what `model` computes (score and rays on the sample crops)."""
    z, x, _ = sample_crops(model)
    ort_e, torch_e = OrtEngine(folder, threads=1), TorchEngine(model)
    for a, b in zip(ort_e.search(x, ort_e.template(z)), torch_e.search(x, torch_e.template(z))):
        np.testing.assert_allclose(a["score"], b["score"], atol=1e-5)
        np.testing.assert_allclose(a["rays"], b["rays"], atol=1e-3, rtol=1e-4)


def reexported_once(capsys, folder: Path, model, why: str) -> None:
    """One stderr line said why `folder` was exported again; a second lookup then trusts it (no line, no export)."""
    err = capsys.readouterr().err
    assert err.count("exporting it again") == 1 and why in err, err
    stamp = (folder / SEARCH_NAME).stat().st_mtime_ns
    assert cached_export(model) == folder and capsys.readouterr().err == ""
    assert (folder / SEARCH_NAME).stat().st_mtime_ns == stamp
    assert json.loads((folder / META_NAME).read_text())["levels"] == LEVELS


@pytest.fixture(scope="module")
def theirs(good, tmp_path_factory) -> Path:
    """Another network's entry, whole and self-consistent as its own export would be: good's graphs with every float
    weight doubled (they compute something else), the meta naming another network (seed 1) and the new graphs'
    sha256. (The cache reads only the meta and the graphs' bytes; a real export of seed 1 takes tens of seconds.)"""
    import onnx
    from onnx import numpy_helper

    out = tmp_path_factory.mktemp("theirs") / "export"
    shutil.copytree(good, out)
    meta = json.loads((out / META_NAME).read_text())
    for name in (TEMPLATE_NAME, SEARCH_NAME):
        graph = onnx.load(out / name)
        weights = [w for w in graph.graph.initializer if w.data_type == onnx.TensorProto.FLOAT]
        assert len(weights) > 10, name
        for w in weights:
            w.CopyFrom(numpy_helper.from_array(2 * numpy_helper.to_array(w), w.name))
        onnx.save(graph, out / name)
        meta["sha256"][name] = hashlib.sha256((out / name).read_bytes()).hexdigest()
    meta["model_digest"] = model_digest(quick_model(1))
    (out / META_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    return out


def test_planted_graphs_of_another_model_are_exported_again(model, theirs, cache, capsys, copy_export):
    folder = plant(cache, model, theirs)
    assert cached_export(model) == folder and len(copy_export) == 1
    reexported_once(capsys, folder, model, "model_digest")
    assert_computes(folder, model)


@pytest.mark.parametrize("linked", ["folder", SEARCH_NAME])
def test_a_symlink_in_the_cache_is_not_followed(model, good, cache, capsys, copy_export, linked):
    cache.mkdir(mode=0o700)
    folder = cache / model_digest(model)[:24]
    if linked == "folder":
        folder.symlink_to(good, target_is_directory=True)
    else:
        folder.mkdir()
        for name in (TEMPLATE_NAME, META_NAME):
            shutil.copy(good / name, folder / name)
        (folder / SEARCH_NAME).symlink_to(good / SEARCH_NAME)
    assert cached_export(model) == folder and len(copy_export) == 1
    assert not folder.is_symlink() and not (folder / SEARCH_NAME).is_symlink()
    reexported_once(capsys, folder, model, "symbolic link")
    assert sorted(p.name for p in good.iterdir()) == sorted([META_NAME, SEARCH_NAME, TEMPLATE_NAME]), "target kept"


def test_a_truncated_graph_is_exported_again_with_one_line(model, good, cache, capsys):
    folder = plant(cache, model, good)
    data = (folder / SEARCH_NAME).read_bytes()
    (folder / SEARCH_NAME).write_bytes(data[: len(data) // 2])
    cached_export(model)
    reexported_once(capsys, folder, model, f"{SEARCH_NAME} does not match its sha256")
    assert_computes(folder, model)


def _stride_doubled(meta: dict) -> dict:
    meta["levels"] = [[h, w, 2 * s] for h, w, s in meta["levels"]]
    return meta


@pytest.mark.parametrize("edit, why", [
    (lambda text: text[: len(text) // 2], "does not parse"),
    (lambda text: json.dumps(_stride_doubled(json.loads(text))), "levels"),
    (lambda text: json.dumps({**json.loads(text), "format": "siampolar-onnx-v0"}), "format"),
    (lambda text: json.dumps({**json.loads(text), "config": {**json.loads(text)["config"], "num_rays": 18}}),
     "config"),
    (lambda text: json.dumps({**json.loads(text), "sha256": None}), f"{TEMPLATE_NAME} does not match"),
], ids=["corrupt", "doubled-stride", "format", "config", "no-hashes"])
def test_a_meta_that_does_not_parse_or_match_is_exported_again(model, good, cache, capsys, copy_export, edit, why):
    folder = plant(cache, model, good)
    (folder / META_NAME).write_text(edit((folder / META_NAME).read_text()))
    assert cached_export(model) == folder and len(copy_export) == 1
    reexported_once(capsys, folder, model, why)


@pytest.mark.parametrize("listed", ["hashed", "wrong-hash"])
def test_a_planted_refine_graph_of_a_model_without_one_is_exported_again(model, good, cache, capsys, copy_export,
                                                                         listed):
    """issue 29 (9): a refine.onnx the meta lists for a model without a refinement stage was trusted unchecked (the
    engine runs every graph the meta lists); now an entry listing a graph the model lacks is exported again."""
    assert not model.config.refine_iters
    folder = plant(cache, model, good)
    planted = b"not this model's graph"
    (folder / REFINE_NAME).write_bytes(planted)
    meta = json.loads((folder / META_NAME).read_text())
    meta["sha256"][REFINE_NAME] = hashlib.sha256(planted).hexdigest() if listed == "hashed" else "0" * 64
    (folder / META_NAME).write_text(json.dumps(meta))
    assert cached_export(model) == folder and len(copy_export) == 1  # before: reused as it was
    reexported_once(capsys, folder, model, f"lists {REFINE_NAME}")
    assert not (folder / REFINE_NAME).exists() and not OrtEngine(folder, threads=1).refines


def test_a_good_entry_is_reused_and_dead_exports_temps_are_removed(model, good, cache, capsys):
    folder = plant(cache, model, good)
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()  # its pid now names no process: the owner of a killed export
    dead = [Path(tempfile.mkdtemp(prefix=temp_prefix(folder, k, done.pid), dir=cache)) for k in ("partial", "old")]
    (dead[1] / SEARCH_NAME).write_bytes(b"\0" * 1000)
    live = [Path(tempfile.mkdtemp(prefix=temp_prefix(folder, "partial", p), dir=cache))
            for p in (os.getpid(), os.getppid())]
    # a pid of another machine says nothing here
    elsewhere = cache / temp_prefix(folder, "partial", done.pid).replace(f"-{HOST}-", "-another.host-")
    elsewhere.mkdir()
    stamp = (folder / SEARCH_NAME).stat().st_mtime_ns
    assert cached_export(model) == folder and capsys.readouterr().err == ""
    assert (folder / SEARCH_NAME).stat().st_mtime_ns == stamp, "the good entry is used as it is"
    left = sorted(p.name for p in cache.iterdir() if p.name.startswith("."))
    assert left == sorted(p.name for p in live + [elsewhere])
    assert not any(p.exists() for p in dead) and all(p.is_dir() for p in live + [elsewhere])


def test_export_removes_its_dead_temps_beside_the_output(model, tmp_path, monkeypatch):
    from siampolar_lib.tracking import onnx_export as export

    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    out = tmp_path / "out"
    dead = [Path(tempfile.mkdtemp(prefix=temp_prefix(out, k, done.pid), dir=tmp_path)) for k in ("partial", "old")]
    live = Path(tempfile.mkdtemp(prefix=temp_prefix(out, "partial"), dir=tmp_path))

    def stop(*args, **kwargs):  # the cleanup comes before the graphs: no need to wait for them
        raise RuntimeError("stopped by the test")

    monkeypatch.setattr(export, "_export_graph", stop)
    with pytest.raises(export.ExportError, match="stopped by the test"):
        export_onnx(model, out)
    assert not any(p.exists() for p in dead) and live.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name], "its own temp folder and lock removed, no output"


def assert_one_line_user_error(err: pytest.ExceptionInfo, *words: str) -> None:
    msg = str(err.value)
    assert isinstance(err.value, USER_ERRORS) and "\n" not in msg and all(w in msg for w in words), msg


def test_a_cache_writable_by_others_is_refused(model, cache):
    cache.mkdir()
    os.chmod(cache, 0o777)
    with pytest.raises(UserError) as err:
        cached_export(model)
    assert_one_line_user_error(err, "SIAMPOLAR_ONNX_CACHE", "writable by group or others", "777")
    assert list(cache.iterdir()) == [], "nothing written into it"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root can give a folder away")
def test_a_cache_owned_by_another_user_is_refused(model, cache):
    cache.mkdir(mode=0o700)
    os.chown(cache, 54321, -1)
    with pytest.raises(UserError) as err:
        cached_export(model)
    assert_one_line_user_error(err, "SIAMPOLAR_ONNX_CACHE", "owned by uid 54321")


def test_cache_variable_naming_a_file_is_one_clear_line(model, tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("x")
    monkeypatch.setenv("SIAMPOLAR_ONNX_CACHE", str(tmp_path / "a_file"))
    with pytest.raises(UserError) as err:
        cached_export(model)
    assert_one_line_user_error(err, f"SIAMPOLAR_ONNX_CACHE={tmp_path / 'a_file'}", "is a file, not a folder")


def test_a_cache_that_cannot_be_written_is_one_line(model, cache, monkeypatch):
    cache.mkdir(mode=0o700)

    def read_only(*args, **kwargs):  # root writes through mode bits: a read-only file system is what refuses it
        raise OSError(errno.EROFS, "Read-only file system", str(cache))

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    with pytest.raises(UserError) as err:
        cached_export(model)
    assert_one_line_user_error(err, str(cache), "cannot be written", "Read-only file system", "SIAMPOLAR_ONNX_CACHE")


def test_the_default_cache_is_private_and_per_user(monkeypatch, tmp_path):
    monkeypatch.delenv("SIAMPOLAR_ONNX_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "siampolar" / "onnx"
    assert cache_root().stat().st_mode & 0o777 == 0o700
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/xdg")  # the XDG spec says: ignore a relative path
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "siampolar" / "onnx"
    assert cache_root().stat().st_mode & 0o777 == 0o700
