"""Smoke tests: every command-line tool under data_scripts/ and benchmarks/ runs end to end on tiny inputs.

(davis2coco, make_synthetic_davis, export_checkpoint and cache_first_stage have their own tests beside the code they
drive.)
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cli_helpers import script

from siampolar_lib import build_model
from siampolar_lib.paths import REPO_ROOT
from siampolar_lib.training.checkpoint import save_checkpoint


def _run(args: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `python ARGS` from the repository root (scripts by path, benchmarks with -m); assert it succeeded."""
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=timeout)
    assert r.returncode == 0, f"{args[:2]} failed:\n{r.stderr[-2000:]}"
    return r


@pytest.fixture(scope="module")
def quick_checkpoint(tmp_path_factory, quick_net):
    """An untrained quick network saved as a checkpoint (the scripts only need something to run): conftest's
    quick_net, whose ONNX export the run makes once (`quick_export`)."""
    path = tmp_path_factory.mktemp("ckpt") / "quick.pt"
    save_checkpoint(path, quick_net, step=0)
    return path


def test_polar_upper_bound(synthetic_davis, tmp_path):
    out = tmp_path / "bound.json"
    r = _run(["data_scripts/polar_upper_bound.py", "--davis-root", str(synthetic_davis), "--rays", "8,36",
              "--centres", "mass", "--every", "6", "--workers", "1", "--json", str(out)])
    res = json.loads(out.read_text())
    assert res["masks"] > 0 and 0.0 < res["rays"]["8"]["mass"] <= res["rays"]["36"]["mass"] <= 1.0
    assert "rays" in r.stdout


@pytest.mark.slow
def test_tune_tracker(synthetic_davis, quick_checkpoint, tmp_path):
    out = tmp_path / "tune.json"
    r = _run(["data_scripts/tune_tracker.py", "--checkpoint", str(quick_checkpoint), "--davis-root",
              str(synthetic_davis), "--split", "train", "--sequences", "synth00", "--max-frames", "3",
              "--thresholds", "0.2:0.1", "--penalty-k", "0.04", "--window-influence", "0.3",
              "--size-lr", "0.6", "--workers", "1", "--json", str(out)])
    doc = json.loads(out.read_text())
    assert len(doc["results"]) == 2, "pysot's setting and the one grid point"
    assert doc["best"]["cfg"]["size_lr"] in (0.4, 0.6) and "best:" in r.stdout


def test_bench_polar(synthetic_davis):
    r = _run(["-m", "benchmarks.bench_polar", "--davis-root", str(synthetic_davis), "--masks", "2"])
    assert "cast" in r.stdout


def test_bench_model():
    r = _run(["-m", "benchmarks.bench_model", "--models", "quick", "--runs", "1", "--warmup", "0",
              "--threads", "1", "--device", "cpu"])
    assert "quick" in r.stdout


def test_bench_davis2coco(synthetic_davis):
    r = _run(["-m", "benchmarks.bench_davis2coco", "--davis-root", str(synthetic_davis), "--workers", "1"])
    assert "frames" in r.stdout


def test_bench_metrics(synthetic_davis):
    ann = synthetic_davis / "Annotations" / "480p"
    r = _run(["-m", "benchmarks.bench_metrics", "--gt", str(synthetic_davis), "--pred", str(ann),
              "--processes", "1", "--repeats", "1"])
    assert "speed ratio" in r.stdout


@pytest.mark.slow
def test_bench_tracker(synthetic_davis):
    r = _run(["-m", "benchmarks.bench_tracker", "--model", "quick", "--davis-root", str(synthetic_davis),
              "--frames", "3", "--rounds", "1", "--threads", "1", "--device", "cpu"])
    assert "round 1" in r.stdout


@pytest.mark.slow
def test_bench_pairs(synthetic_davis):
    r = _run(["-m", "benchmarks.bench_pairs", "--root", str(synthetic_davis), "--model", "quick", "--workers", "0",
              "--batch", "2", "--batches", "1", "--steps", "1", "--threads", "1", "--device", "cpu"])
    assert "pairs/s" in r.stdout


@pytest.mark.slow
def test_bench_train():
    r = _run(["-m", "benchmarks.bench_train", "--runs", "quick:frozen", "quick:cached", "--iters", "3", "--batch", "2",
              "--threads", "1", "--precision", "fp32", "--variants", "1"])
    assert r.stdout.count("pairs/s") == 2 and "x quick:frozen" in r.stdout


@pytest.mark.slow  # two tracking subprocesses
def test_bench_stream(quick_checkpoint):
    r = _run(["-m", "benchmarks.bench_stream", "--frames", "3,6", "--size", "640x360",
              "--checkpoint", str(quick_checkpoint)], timeout=1200)
    assert "peak RSS ratio longest/shortest video" in r.stdout and r.stdout.count("exit 0, ") == 2


def test_bench_all_lists_only_existing_benchmarks():
    from benchmarks import bench_all

    assert all((REPO_ROOT / "benchmarks" / f"{name}.py").is_file() for name in bench_all.BENCHES)


def test_no_script_edits_sys_path():
    scripts = sorted((REPO_ROOT / "data_scripts").glob("*.py")) + sorted((REPO_ROOT / "benchmarks").glob("*.py"))
    assert scripts
    assert [p.name for p in scripts if "sys.path" in p.read_text()] == []


def test_select_model(synthetic_davis, quick_checkpoint, tmp_path):
    out = tmp_path / "sel.json"
    r = _run(["data_scripts/select_model.py", "--checkpoints", str(quick_checkpoint), "--davis-root",
              str(synthetic_davis), "--sequences", "synth00", "--set", "vote_radius=1", "--json", str(out)])
    rows = json.loads(out.read_text())
    assert [row["setting"] for row in rows] == [{}, {"vote_radius": 1}]
    assert all(0.0 <= row["J_M"] <= 1.0 and 0.0 <= row["box_iou"] <= 1.0 for row in rows)
    assert "vote_radius=1" in r.stdout


def test_bench_agreement(synthetic_davis, quick_checkpoint, capsys):
    """Every pair of the four runs is printed for each grid, with the engines' verdict; val sequences are refused."""
    from benchmarks import bench_agreement

    args = ["-m", "benchmarks.bench_agreement", "--checkpoint", str(quick_checkpoint), "--davis-root",
            str(synthetic_davis), "--sequences", "synth00", "--max-frames", "4", "--grids", "0,0.25"]
    out = _run(args).stdout
    assert out.count(" vs ") == 12 and out.count("engines: lowest") == 2 and "state_grid 0.25 px" in out
    assert bench_agreement.main(args[2:-4] + ["--sequences", "blackswan"]) != 0  # in-process: a refusal, no work
    assert "val sequences" in capsys.readouterr().err


def test_learning_curve(synthetic_davis, tmp_path, capsys):
    """Points of checkpoints against pairs seen (offset + step x batch), kept across calls, and the curve drawn.

    The second call runs in-process (the first runs the script)."""
    ckpt = save_checkpoint(tmp_path / "s5.pt", build_model("quick", pretrained=False), step=5,
                           meta={"train_config": {"batch": 2}})
    points, png = tmp_path / "curve.json", tmp_path / "curve.png"
    args = ["data_scripts/learning_curve.py", "--points", str(points), "--checkpoints", str(ckpt), "--davis-root",
            str(synthetic_davis), "--sequences", "synth00", "--png", str(png)]
    _run(args + ["--offset-pairs", "100", "--label", "a"])
    assert script("learning_curve").main(args[1:] + ["--offset-pairs", "200", "--label", "b"]) == 0
    rows = json.loads(points.read_text())
    assert [(row["pairs"], row["label"]) for row in rows] == [(110, "a"), (210, "b")]
    assert all(0.0 <= row["J_M"] <= 1.0 and set(row) >= {"JF_M", "F_M", "step"} for row in rows)
    assert png.stat().st_size > 0 and "210 pairs" in capsys.readouterr().out


def test_learning_curve_with_a_stage_only_on_the_same_early_blocks(synthetic_davis, tmp_path, capsys):
    """--stage scores each first stage with the given stage on top; a stage cast from other features is refused
    (in-process: a refusal)."""
    import dataclasses

    import torch

    from siampolar_lib.models.siampolar import SiamPolar

    first = build_model("quick", pretrained=False)
    ckpt = save_checkpoint(tmp_path / "s5.pt", first, step=5, meta={"train_config": {"batch": 2}})
    staged = SiamPolar(dataclasses.replace(first.config, refine_iters=1), pretrained=False)
    staged.load_state_dict(first.state_dict(), strict=False)
    good = save_checkpoint(tmp_path / "stage.pt", staged)
    args = ["data_scripts/learning_curve.py", "--points", str(tmp_path / "c.json"), "--checkpoints", str(ckpt),
            "--davis-root", str(synthetic_davis), "--sequences", "synth00", "--label", "staged"]
    assert "10 pairs" in _run(args + ["--stage", str(good)]).stdout
    with torch.no_grad():
        next(staged.backbone.parameters()).add_(0.01)
    bad = save_checkpoint(tmp_path / "other.pt", staged)
    capsys.readouterr()
    assert script("learning_curve").main(args[1:] + ["--stage", str(bad)]) != 0
    assert "early backbone blocks differ" in capsys.readouterr().err


def test_fold_scores_refuse_val_sequences(quick_checkpoint):
    from siampolar_lib.errors import UserError
    from siampolar_lib.evaluation.selection import fold_scores

    with pytest.raises(UserError, match="val sequences"):
        fold_scores(build_model("quick", pretrained=False), names=["dog-agility", "blackswan"])


def test_select_model_refuses_val_sequences(quick_checkpoint):
    r = subprocess.run([sys.executable, "data_scripts/select_model.py", "--checkpoints", str(quick_checkpoint),
                        "--sequences", "blackswan"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert r.returncode != 0 and "val sequences" in r.stderr
