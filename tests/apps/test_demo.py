"""The main job (`python -m siampolar_lib.commands.demo`) in a quick form: one sequence, a few frames, into tmp_path."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from siampolar_lib import paths
from siampolar_lib.apps import demo
from siampolar_lib.commands import demo as demo_cmd
from siampolar_lib.paths import checkpoints_dir, shipped_train_log
from siampolar_lib.video import read_frames


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, quick_net) -> Path:
    """An untrained 'quick' network saved as a checkpoint (the demo's plumbing, not its accuracy, is tested):
    conftest's quick_net, whose ONNX export the run makes once (`quick_export`)."""
    from siampolar_lib.training.checkpoint import save_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "quick.pt"
    save_checkpoint(path, quick_net)
    return path


def test_default_checkpoint_names_the_missing_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMPOLAR_CHECKPOINT", str(tmp_path / "nope.pt"))
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        paths.default_checkpoint()
    (tmp_path / "nope.pt").write_bytes(b"x")
    assert paths.default_checkpoint() == tmp_path / "nope.pt"
    monkeypatch.delenv("SIAMPOLAR_CHECKPOINT")
    shipped = checkpoints_dir() / paths.SHIPPED_CHECKPOINT
    if shipped.is_file():
        assert paths.default_checkpoint() == shipped
    else:
        with pytest.raises(FileNotFoundError, match="siampolar_lite0.pt"):
            paths.default_checkpoint()


@pytest.mark.slow
def test_demo_quick_run_on_real_val(tmp_path, checkpoint, real_davis, monkeypatch, capsys):
    monkeypatch.setenv("SIAMPOLAR_DAVIS_ROOT", str(real_davis))
    out = tmp_path / "demo"
    rc = demo_cmd.main(["--out", str(out), "--checkpoint", str(checkpoint), "--sequences", "1", "--max-frames", "5",
                    "--baselines", "static,polar_bound", "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "real DAVIS-2016 val (1 sequence: blackswan)" in text
    for method in ("siampolar", "static", "polar_bound"):
        assert method in text
        assert len(list((out / method / "blackswan").glob("*.png"))) == 5
    doc = json.loads((out / "results.json").read_text())
    assert set(doc["sequences"]) == {"blackswan"} and 0.0 <= doc["JF_M"] <= 1.0
    assert "JF_M" in (out / "summary.txt").read_text()
    gif = read_frames(out / "blackswan.gif")
    assert len(gif) == 5 and gif[0].shape == (240, 427, 3)


@pytest.mark.slow
def test_demo_falls_back_to_synthetic(tmp_path, checkpoint, monkeypatch, capsys):
    # no $SIAMPOLAR_DAVIS_ROOT and no data/DAVIS: synthetic data, said so (a variable naming no DAVIS folder is an
    # error instead: tests/contracts/test_cli_errors.py, defect 22)
    monkeypatch.delenv("SIAMPOLAR_DAVIS_ROOT", raising=False)
    monkeypatch.setattr(paths, "LOCAL_DAVIS", tmp_path / "no_davis_here")
    out = tmp_path / "demo"
    result = demo.run_demo(out, checkpoint=checkpoint, sequences=1, max_frames=4, baselines=("static",), progress=False)
    assert result["data"] == "synthetic" and len(result["sequences"]) == 1
    assert (out / "synthetic_davis" / "JPEGImages").is_dir() and (out / "results.json").is_file()
    assert "synthetic DAVIS" in capsys.readouterr().out
    assert len(read_frames(result["gif"])) == 4


def test_demo_bad_checkpoint_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    rc = demo_cmd.main(["--out", str(tmp_path / "o"), "--checkpoint", str(bad), "--sequences", "1", "--max-frames", "3",
                    "--baselines", ""])
    assert rc == 2 and "bad.pt" in capsys.readouterr().err
    assert not (tmp_path / "o").exists(), "the checkpoint is checked before any work"


def test_shipped_train_log_sits_beside_the_checkpoint(tmp_path, monkeypatch):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="model_train_log.csv"):
        shipped_train_log(ckpt)
    (tmp_path / "model_train_log.csv").write_text("step,loss\n1,2.0\n")
    assert shipped_train_log(ckpt) == tmp_path / "model_train_log.csv"
    monkeypatch.setenv("SIAMPOLAR_CHECKPOINT", str(ckpt))
    assert shipped_train_log() == tmp_path / "model_train_log.csv"
