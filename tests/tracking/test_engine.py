"""ONNX export and the two engines: exported graphs equal PyTorch, trackers on both agree, cache, fallback, CLI."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from cli_helpers import export_by_copy

from siampolar_lib import build_model
from siampolar_lib.commands.export_onnx import main
from siampolar_lib.geometry.polar import mask_iou
from siampolar_lib.tracking.engine import OrtEngine, TorchEngine, make_engine
from siampolar_lib.tracking.onnx_cache import cached_export
from siampolar_lib.tracking.onnx_export import (
    META_NAME,
    SEARCH_NAME,
    TEMPLATE_NAME,
    ExportError,
    export_onnx,
    model_digest,
    sample_crops,
)
from siampolar_lib.tracking.tracker import Tracker
from siampolar_lib.training.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def quick_model():
    """An untrained 'quick' network with seeded weights (export and agreement do not need a trained one)."""
    torch.manual_seed(0)
    return build_model("quick", pretrained=False).eval()


@pytest.fixture(scope="module")
def exported(quick_model):
    """The quick network's graphs, exported (and checked) through the cache."""
    return cached_export(quick_model)


def test_export_writes_graphs_and_meta(exported, quick_model):
    assert {p.name for p in exported.iterdir()} == {TEMPLATE_NAME, SEARCH_NAME, META_NAME}, "no temp files left"
    meta = json.loads((exported / META_NAME).read_text())
    assert meta["config"]["name"] == "quick" and meta["levels"] == [[25, 25, 8], [13, 13, 16]]
    assert meta["checked_on"].startswith(("DAVIS", "synthetic"))
    assert max(meta["max_abs_diff"].values()) < 1e-3


def test_onnx_engine_equals_torch_engine(exported, quick_model):
    z, x, _ = sample_crops(quick_model)
    ort_e, torch_e = OrtEngine(exported, threads=2), TorchEngine(quick_model)
    zo, zt = ort_e.template(z), torch_e.template(z)
    for a, b in zip(zo, zt):
        np.testing.assert_allclose(a, b.numpy(), atol=1e-3, rtol=1e-4)
    lo, lt = ort_e.search(x, zo), torch_e.search(x, zt)
    assert len(lo) == len(lt) == 2
    for a, b in zip(lo, lt):
        assert a["score"].shape == b["score"].shape and a["rays"].shape == b["rays"].shape
        np.testing.assert_allclose(a["score"], b["score"], atol=1e-5)
        np.testing.assert_allclose(a["rays"], b["rays"], atol=1e-3, rtol=1e-4)
        np.testing.assert_array_equal(a["points"], b["points"])


def test_trackers_on_both_engines_agree(real_davis, quick_model, exported):
    from siampolar_lib.data.davis import first_box, load_sequence, read_frame

    seq = load_sequence(real_davis, "blackswan")
    frames = [read_frame(p) for p in seq.frame_paths[:8]]
    a, b = Tracker(OrtEngine(exported, threads=2)), Tracker(quick_model)
    for t in (a, b):
        t.init(frames[0], first_box(seq))
    ious = [mask_iou(a.track(f).mask, b.track(f).mask) for f in frames[1:]]
    assert min(ious) >= 0.99, ious


def test_cache_exports_once_per_weights(quick_model, exported, onnx_cache):
    stamp = (exported / SEARCH_NAME).stat().st_mtime_ns
    assert exported.parent == onnx_cache and cached_export(quick_model) == exported
    assert (exported / SEARCH_NAME).stat().st_mtime_ns == stamp, "the second call reuses the export"
    # this process's temps: the other pytest-xdist worker shares the cache and may be exporting right now
    mine = [p.name for p in onnx_cache.iterdir() if p.name.startswith(".") and f"-pid{os.getpid()}-" in p.name]
    assert mine == [], "no staging folder left"
    other = build_model("quick", pretrained=False)
    assert model_digest(other) != model_digest(quick_model)
    assert isinstance(make_engine(quick_model, "onnxruntime"), OrtEngine)


def test_fallback_to_torch_with_one_line(capsys):
    class Fake(torch.nn.Module):
        def template(self, z):
            pass

    eng = make_engine(Fake(), "onnxruntime")
    assert isinstance(eng, TorchEngine)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "using torch" in err[0] and "Fake" in err[0]
    with pytest.raises(ExportError, match="not a SiamPolar"):
        export_onnx(Fake(), "unused")
    with pytest.raises(ValueError, match="engine must be one of"):
        make_engine(Fake(), "tensorrt")


def test_cli_exports_and_names_bad_inputs(tmp_path, quick_model, exported, capsys, monkeypatch):
    """The command's own work, checks and refusals; its graphs are copies of `exported` (the same weights), which
    it checks against PyTorch on the DAVIS check frames as it checks graphs it traced."""
    copied = export_by_copy(monkeypatch, exported)
    ckpt = save_checkpoint(tmp_path / "q.pt", quick_model)
    assert main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "graphs")]) == 0
    assert "matches PyTorch" in capsys.readouterr().out and (tmp_path / "graphs" / SEARCH_NAME).is_file()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["--checkpoint", str(bad), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.pt" in err and not (tmp_path / "x").exists()
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    assert main(["--checkpoint", str(ckpt), "--out", str(afile)]) == 2
    assert "not a folder" in capsys.readouterr().err and afile.read_text() == "keep me"
    graphs = tmp_path / "graphs"
    before = (graphs / SEARCH_NAME).read_bytes()
    (graphs / "refine.onnx").write_bytes(b"an earlier export's stage")
    assert main(["--checkpoint", str(ckpt), "--out", str(graphs)]) == 2  # an earlier export is kept unless asked
    assert "--overwrite" in capsys.readouterr().err and (graphs / SEARCH_NAME).read_bytes() == before
    assert main(["--checkpoint", str(ckpt), "--out", str(graphs), "--overwrite"]) == 0
    assert not (graphs / "refine.onnx").exists(), "a stage the new graphs do not have is removed"
    assert copied == [TEMPLATE_NAME, SEARCH_NAME] * 2, "two exports, no more"


@pytest.mark.parametrize("threads, spinning", [(1, False), (None, False), (2, True)])
def test_spinning_and_threads_do_not_change_what_the_engine_computes(exported, quick_model, threads, spinning):
    z, x, _ = sample_crops(quick_model)
    ref, e = OrtEngine(exported, threads=1), OrtEngine(exported, threads=threads, spinning=spinning)
    for a, b in zip(e.search(x, e.template(z)), ref.search(x, ref.template(z))):
        np.testing.assert_allclose(a["score"], b["score"], atol=1e-6)
        np.testing.assert_allclose(a["rays"], b["rays"], atol=1e-4, rtol=1e-5)
