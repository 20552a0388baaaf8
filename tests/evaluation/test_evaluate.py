"""Evaluation CLI and library: real DAVIS frames, an untrained quick network, the baselines (no accuracy claims)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from siampolar_lib import build_model
from siampolar_lib.commands.evaluate import main
from siampolar_lib.data.davis import load_sequence, read_frame, sequence_masks
from siampolar_lib.evaluation.evaluate import evaluate_tracker
from siampolar_lib.evaluation.metrics import stat_keys
from siampolar_lib.geometry.boxes import mask_to_box
from siampolar_lib.io import read_mask_png
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.tracker import Tracker

SEQ = "blackswan"


@pytest.fixture(scope="module")
def quick_model():
    torch.manual_seed(0)
    return build_model("quick", pretrained=True).eval()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["search", "full_frame"])
def test_untrained_quick_model_tracks_real_frames(real_davis, quick_model, mode):
    seq = load_sequence(real_davis, SEQ)
    gt = sequence_masks(seq)[:3]
    trk = Tracker(quick_model, TrackerConfig(mode=mode), device="cpu")
    trk.init(read_frame(seq.frame_paths[0]), mask_to_box(gt[0]))
    for t in (1, 2):
        r = trk.track(read_frame(seq.frame_paths[t]))
        assert r.mask.shape == gt[t].shape and r.mask.dtype == bool
        assert r.polygon.shape == (36, 2) and np.all(np.isfinite(r.polygon))
        assert r.box.shape == (4,) and 0.0 <= r.score <= 1.0 and isinstance(r.lost, bool)
    assert trk.frames_done == 3 and trk.fps > 0


@pytest.mark.slow
def test_evaluate_tracker_writes_pngs_and_results(real_davis, quick_model, tmp_path, capsys):
    out = tmp_path / "eval"
    res = evaluate_tracker(quick_model, real_davis, out, sequences=[SEQ], max_frames=4, device="cpu",
                           baselines=["static", "oracle_box", "polar_bound", "csrt"], progress=False)
    assert set(res) == {"siampolar", "static", "oracle_box", "polar_bound", "csrt"}
    gt = sequence_masks(load_sequence(real_davis, SEQ))[:4]
    for method in res:
        pngs = sorted((out / method / SEQ).glob("*.png"))
        assert [p.name for p in pngs] == [f"{t:05d}.png" for t in range(4)]
        assert set(np.unique(np.array(Image.open(pngs[1])))) <= {0, 255}
        np.testing.assert_array_equal(read_mask_png(pngs[0]), gt[0])  # frame 0 = the given annotation
        doc = json.loads((out / method / "results.json").read_text())
        assert set(stat_keys() + ("fps",)) <= set(doc) and set(doc["sequences"]) == {SEQ}
        assert doc["fps"] > 0
    top = json.loads((out / "results.json").read_text())
    # run: what produced it (method, checkpoint, ...)
    assert set(stat_keys() + ("fps",)) | {"sequences", "run"} == set(top)
    assert top == json.loads((out / "siampolar" / "results.json").read_text())
    # The ground-truth baselines are what they claim: oracle and polar bound score well, J in [0, 1].
    assert res["polar_bound"]["summary"]["J_M"] > 0.6 and res["oracle_box"]["summary"]["J_M"] > 0.3
    text = capsys.readouterr().out
    assert "== siampolar" in text and "== csrt" in text and "overall" in text


@pytest.mark.parametrize("n", [-1, 0, 1, 2])
def test_fewer_than_three_frames_is_refused_not_scored(real_davis, tmp_path, n, capsys):
    """Defect 3: --max-frames 1 used to report J = F = 100 from the given first mask alone; 0 was a reshape error."""
    with pytest.raises(ValueError, match="at least 3 frames"):
        evaluate_tracker(None, real_davis, tmp_path / "lib", sequences=[SEQ], max_frames=n, baselines=["static"],
                         progress=False, verbose=False)
    rc = main(["--davis-root", str(real_davis), "--sequences", SEQ, "--baselines", "static",
               "--max-frames", str(n), "--out", str(tmp_path / "cli"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and f"--max-frames {n}: at least 3 frames" in err
    assert not (tmp_path / "cli").exists() and not (tmp_path / "lib").exists()


def test_cli_baselines_only(real_davis, tmp_path, capsys):
    rc = main(["--davis-root", str(real_davis), "--sequences", SEQ, "--baselines", "static,oracle_box",
               "--max-frames", "3", "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    assert "== oracle_box" in capsys.readouterr().out
    assert (tmp_path / "static" / "results.json").is_file() and not (tmp_path / "results.json").exists()


@pytest.mark.parametrize("args, match", [
    (["--baselines", "nope"], "unknown baseline"),
    (["--baselines", "static", "--split", "nosuchsplit"], "nosuchsplit"),
    ([], "give --checkpoint"),
    (["--checkpoint", "/nonexistent/ckpt.pt"], "ckpt.pt"),
])
def test_cli_bad_input_exits_2_with_a_message(real_davis, tmp_path, capsys, args, match):
    rc = main(["--davis-root", str(real_davis), "--out", str(tmp_path), "--no-progress", *args])
    assert rc == 2
    assert match in capsys.readouterr().err


def test_library_errors(real_davis, tmp_path):
    with pytest.raises(ValueError, match="mode"):
        evaluate_tracker(None, real_davis, tmp_path, baselines=["static"], mode="nope")
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate_tracker(None, real_davis, tmp_path, sequences=[SEQ])
