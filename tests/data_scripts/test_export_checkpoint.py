"""Shipping a trained network: model-only export, logs of consecutive runs joined, the export CLI."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from siampolar_lib.models.config import QUICK
from siampolar_lib.training.checkpoint import CheckpointError, export_weights, load_model
from siampolar_lib.training.config import OptimConfig, TrainConfig
from siampolar_lib.training.log import concat_logs, read_log
from siampolar_lib.training.train import train

REPO = Path(__file__).resolve().parents[2]


def test_concat_logs_runs_steps_on():
    a = [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.0}]
    b = [{"step": 1, "loss": 1.5}]
    assert [(r["step"], r["loss"]) for r in concat_logs([a, b, []])] == [(1, 3.0), (2, 2.0), (3, 1.5)]
    assert concat_logs([]) == []


@pytest.fixture(scope="module")
def two_runs(synthetic_davis, tmp_path_factory):
    """A 3-step quick run, then a 2-step fine-tune from it (--init-from, more stages frozen)."""
    tmp = tmp_path_factory.mktemp("runs")
    base = dict(data=(str(synthetic_davis),), batch=2, optim=OptimConfig(lr=0.01, warmup=1), ckpt_every=0,
                device="cpu", seed=0, progress=False)
    first = train(TrainConfig(model=QUICK, out=str(tmp / "first"), iters=3, **base))
    train(TrainConfig(model=dataclasses.replace(QUICK, frozen_stages=4), out=str(tmp / "second"), iters=2,
                      init_from=str(first["checkpoint"]), **base))
    return tmp / "first", tmp / "second"


def test_export_weights_drops_training_state(two_runs, tmp_path):
    src = two_runs[1] / "last.pt"
    out = export_weights(src, tmp_path / "ship.pt", step=5, meta={"note": "x"})
    ck = torch.load(out, weights_only=True)
    assert ck["step"] == 5 and ck["meta"]["note"] == "x" and "train_config" in ck["meta"]
    assert not {"optimizer", "scheduler", "scaler", "rng"} & set(ck)
    a, b = load_model(src).state_dict(), load_model(out).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="overwrite its own source"):
        export_weights(src, src)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt"):
        export_weights(tmp_path / "bad.pt", tmp_path / "x.pt")


def test_export_cli_joins_the_runs(two_runs, tmp_path):
    out = tmp_path / "ship" / "model.pt"
    cmd = [sys.executable, str(REPO / "data_scripts" / "export_checkpoint.py"), "--runs", *map(str, two_runs),
           "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "step 5" in r.stdout and "sha256" in r.stdout
    ck = torch.load(out, weights_only=True)
    assert ck["step"] == 5 and [p["steps"] for p in ck["meta"]["phases"]] == [3, 2]
    assert ck["meta"]["phases"][1]["train_config"]["init_from"].endswith("last.pt")
    rows = read_log(out.with_name("model_train_log.csv"))
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    assert out.with_name("model_loss_curve.png").stat().st_size > 0


def test_an_earlier_export_keeps_its_phases(two_runs, synthetic_davis, tmp_path, capsys):
    """A campaign goes on from a shipped file on a new machine: the export's phases and log carry over.

    The tool runs in-process (test_export_cli_joins_the_runs runs it as a command)."""
    import shutil

    from cli_helpers import script

    first = tmp_path / "ship" / "model.pt"
    run = lambda *a: script("export_checkpoint").main(list(a))
    assert run("--runs", *map(str, two_runs), "--out", str(first)) == 0
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    shutil.copy(first, earlier / "last.pt")
    shutil.copy(first.with_name("model_train_log.csv"), earlier / "train_log.csv")
    train(TrainConfig(model=QUICK, out=str(tmp_path / "third"), iters=2, init_from=str(first),
                      data=(str(synthetic_davis),), batch=2, optim=OptimConfig(lr=0.01, warmup=1), ckpt_every=0,
                      device="cpu", seed=0, progress=False))  # goes on from the shipped file
    again = tmp_path / "again.pt"
    assert run("--runs", str(earlier), str(tmp_path / "third"), "--out", str(again)) == 0, capsys.readouterr().err
    ck = torch.load(again, weights_only=True)
    assert ck["step"] == 7 and [p["steps"] for p in ck["meta"]["phases"]] == [3, 2, 2]
    assert [r["step"] for r in read_log(tmp_path / "again_train_log.csv")] == list(range(1, 8))
    (earlier / "train_log.csv").write_text((earlier / "train_log.csv").read_text().rsplit("\n", 2)[0] + "\n")
    capsys.readouterr()
    rc = run("--runs", str(earlier), str(tmp_path / "third"), "--out", str(tmp_path / "bad.pt"))
    assert rc == 2 and "earlier" in capsys.readouterr().err and not (tmp_path / "bad.pt").exists()


def test_export_cli_names_a_missing_run(tmp_path):
    cmd = [sys.executable, str(REPO / "data_scripts" / "export_checkpoint.py"), "--runs", str(tmp_path / "nope"),
           "--out", str(tmp_path / "m.pt")]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and "nope" in r.stderr and "last.pt" in r.stderr
    assert not (tmp_path / "m.pt").exists()


def test_export_refuses_runs_that_are_not_one_lineage(two_runs, tmp_path, capsys):
    """Issue 29, 4.15: unrelated runs (or one run twice) were joined into one lineage, their logs one curve."""
    import shutil

    from cli_helpers import refused, script

    first, second = two_runs
    impostor = Path(shutil.copytree(first, tmp_path / "first"))  # named as the real one, other weights
    ck = torch.load(impostor / "last.pt", weights_only=True)
    ck["model"] = {k: v + 1 if v.is_floating_point() else v for k, v in ck["model"].items()}
    torch.save(ck, impostor / "last.pt")
    export = script("export_checkpoint").main
    out = tmp_path / "m.pt"
    for runs, needle in [((first, first), "given twice"), ((second, first), "not trained from another checkpoint"),
                         ((second, second), "given twice"), ((impostor, second), "does not hold the weights")]:
        refused(capsys, export(["--runs", *map(str, runs), "--out", str(out)]), f"--runs {runs[1]}", needle)
        assert not out.exists()
    assert export(["--runs", str(first), str(second), "--out", str(out)]) == 0
