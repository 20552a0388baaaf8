"""Every config field is range-checked before anything is built or written (issue 22: tracebacks, empty --out)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from siampolar_lib.models.config import CONFIGS, QUICK, ModelConfig
from siampolar_lib.models.siampolar import SiamPolar
from siampolar_lib.training.checkpoint import CheckpointError, load_model, save_checkpoint
from siampolar_lib.training.config import OptimConfig, TrainConfig, load_preset

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("flags, named", [
    (["--lr", "nan"], "--lr nan"), (["--lr", "inf"], "--lr inf"), (["--lr", "-1"], "--lr -1"),
    (["--seed", "-1"], "--seed -1"), (["--model.num-rays", "0"], "--model.num-rays"),
    (["--model.search-size", "0"], "--model.search-size"), (["--model.channels", "1000000"], "--model.channels"),
    (["--warmup", "-5"], "--warmup -5"),
])
def test_train_flags_out_of_range_are_one_line_and_leave_nothing(tmp_path, synthetic_davis, flags, named):
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "siampolar_lib.commands.train", "--model", "quick",
                        "--data", str(synthetic_davis),
                        "--out", str(out), "--iters", "2", "--no-progress", *flags],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and named in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


def test_every_shipped_size_is_in_range_and_bad_values_name_their_field():
    assert all(isinstance(c, ModelConfig) for c in CONFIGS.values())
    for kw, field in [({"num_rays": 0}, "num_rays"), ({"gn_groups": 7}, "gn_groups"), ({"strides": (16, 8)}, "strides"),
                      ({"template_crop": (8,)}, "template_crop"), ({"context": float("nan")}, "context"),
                      ({"backbone": "vgg"}, "backbone"), ({"search_size": 127}, "search_size")]:
        with pytest.raises(ValueError, match=f"model.{field}"):
            ModelConfig(**{**QUICK.to_dict(), **kw})
    with pytest.raises(ValueError, match="--batch 0"):
        TrainConfig(batch=0)
    assert OptimConfig(lr=1e-3).lr == 1e-3


def test_a_checkpoint_asking_for_a_huge_network_is_refused_before_building(tmp_path):
    path = save_checkpoint(tmp_path / "ok.pt", SiamPolar(QUICK, pretrained=False))
    ck = torch.load(path, weights_only=True)
    ck["config"] = {**ck["config"], "channels": 4_000_000}  # about 1.4 TB of head weights if it were built
    torch.save(ck, tmp_path / "huge.pt")
    with pytest.raises(CheckpointError, match=r"huge\.pt.*model\.channels"):
        load_model(tmp_path / "huge.pt")


def test_a_malformed_or_wrongly_typed_preset_is_one_line(tmp_path):
    (tmp_path / "bad.yaml").write_text("model: lite0\niters: [1, 2\n")
    (tmp_path / "typed.yaml").write_text("model: lite0\niters: many\n")
    for name in ("bad.yaml", "typed.yaml"):
        with pytest.raises(ValueError, match=name.split(".")[0]):
            load_preset(tmp_path / name)


def test_a_cuda_index_without_cuda_is_a_clear_error():
    from siampolar_lib.device import pick_device
    from siampolar_lib.errors import USER_ERRORS, DeviceUnavailable

    if torch.cuda.is_available():
        with pytest.raises(DeviceUnavailable, match="CUDA device"):
            pick_device(f"cuda:{torch.cuda.device_count()}")
    else:
        for name in ("cuda", "cuda:0", "cuda:7"):
            with pytest.raises(DeviceUnavailable, match=f"--device {name}: CUDA is not available"):
                pick_device(name)
    assert DeviceUnavailable in USER_ERRORS


@pytest.mark.parametrize("args, named", [
    (["data_scripts/make_synthetic_davis.py", "--out", "{tmp}/s", "--size", "100000x100000"], "--size"),
    (["data_scripts/polar_upper_bound.py", "--davis-root", "{tmp}", "--rays", "10000000"], "--rays"),
])
def test_script_sizes_out_of_range_are_one_line(tmp_path, args, named):
    r = subprocess.run([sys.executable, *[a.format(tmp=tmp_path) for a in args]], capture_output=True, text=True,
                       cwd=REPO, timeout=120)
    assert r.returncode == 2 and named in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "s").exists()


def test_the_polar_bound_of_empty_masks_is_no_object_not_a_perfect_score(tmp_path):
    import cv2
    import numpy as np

    for sub, image in (("JPEGImages", np.zeros((40, 40, 3), np.uint8)), ("Annotations", np.zeros((40, 40), np.uint8))):
        folder = tmp_path / sub / "480p" / "empty"
        folder.mkdir(parents=True)
        for t in range(2):
            cv2.imwrite(str(folder / f"{t:05d}.{'jpg' if sub == 'JPEGImages' else 'png'}"), image)
    r = subprocess.run([sys.executable, "data_scripts/polar_upper_bound.py", "--davis-root", str(tmp_path),
                        "--rays", "8",
                        "--workers", "1"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2 and "no object in any of the 2 masks" in r.stderr, r.stderr + r.stdout


def test_a_huge_box_names_the_flag():
    from siampolar_lib.apps.track_video import parse_box
    from siampolar_lib.errors import USER_ERRORS

    with pytest.raises(USER_ERRORS, match=r"--box .*at most 100000 px"):
        parse_box("0,0,1e200,1e200")
    assert parse_box("10,20,300,200").tolist() == [10, 20, 300, 200]


# ----------------------------------------------------- tuning values out of range (issue 29, section 4, defect 16)

@pytest.mark.parametrize("flags, named", [
    (["--thresholds", "nan:nan"], "--thresholds nan:nan"), (["--thresholds", "0.1:0.2"], "--thresholds 0.1:0.2"),
    (["--thresholds", "0.2"], "--thresholds '0.2'"), (["--penalty-k", "-1"], "--penalty-k -1"),
    (["--size-lr", "-3"], "--size-lr -3"), (["--window-influence", "0.3,inf"], "--window-influence inf"),
    (["--penalty-k", "abc"], "--penalty-k 'abc'"), (["--size-lr", ","], "--size-lr ','"),
])
def test_tune_tracker_refuses_a_value_out_of_range_before_tracking(tiny_davis, ckpt, capsys, flags, named):
    """They ran and were scored (nan:nan reported as best), or were refused only after stage 1, naming no flag."""
    from cli_helpers import refused, script

    rc = script("tune_tracker").main(["--checkpoint", str(ckpt), "--davis-root", str(tiny_davis), "--sequences",
                                      "synth00", "--max-frames", "3", "--thresholds", "0.2:0.1", "--penalty-k", "0.04",
                                      "--window-influence", "0.3", "--size-lr", "0.4", *flags])
    refused(capsys, rc, named)
    assert "tuning on" not in capsys.readouterr().out


def test_learning_curve_refuses_negative_offset_pairs(tiny_davis, ckpt, tmp_path, capsys):
    from cli_helpers import refused, script

    points = tmp_path / "curve.json"
    rc = script("learning_curve").main(["--points", str(points), "--checkpoints", str(ckpt), "--davis-root",
                                        str(tiny_davis), "--sequences", "synth00", "--offset-pairs", "-5"])
    refused(capsys, rc, "--offset-pairs -5")
    assert not points.exists()
