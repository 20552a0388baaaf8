"""TrackerConfig's YAML form (tracking.config): the shipped file equals the defaults, a round trip keeps every value,
a bad file is one line naming it, and --tracker-config reaches the tracker of siampolar-evaluate, -track and -demo."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from siampolar_lib.commands import demo as demo_cmd
from siampolar_lib.commands import evaluate as evaluate_cmd
from siampolar_lib.commands import track as track_cmd
from siampolar_lib.errors import UserError
from siampolar_lib.paths import REPO_ROOT
from siampolar_lib.tracking.config import FIELD_NAMES, TrackerConfig

SHIPPED = REPO_ROOT / "configs" / "tracker.yaml"


def test_the_shipped_file_is_the_defaults_and_names_every_field():
    assert TrackerConfig.from_yaml(SHIPPED) == TrackerConfig()
    keys = [line.split(":")[0] for line in SHIPPED.read_text().splitlines() if line and not line.startswith("#")]
    assert tuple(keys) == FIELD_NAMES


def test_a_round_trip_keeps_every_value(tmp_path):
    cfg = TrackerConfig(mode="full_frame", penalty_k=0.2, window_influence=0.0, empty_after=3, vote_radius=1,
                        refine=False, subcell=True, state_grid=0.0)
    text = cfg.to_yaml(tmp_path / "t.yaml")
    assert TrackerConfig.from_yaml(tmp_path / "t.yaml") == cfg and (tmp_path / "t.yaml").read_text() == text
    partial = tmp_path / "p.yaml"
    partial.write_text("window_influence: 0\n")  # an int for a float field stays a float
    got = TrackerConfig.from_yaml(partial)
    assert got == dataclasses.replace(TrackerConfig(), window_influence=0.0)
    assert isinstance(got.window_influence, float)
    (tmp_path / "empty.yaml").write_text("# nothing set\n")
    assert TrackerConfig.from_yaml(tmp_path / "empty.yaml") == TrackerConfig()


@pytest.mark.parametrize("text, match", [
    ("windw_influence: 0.3\n", r"unknown key 'windw_influence'; TrackerConfig's keys: mode, "),
    ("refine: 1\n", r"refine: 1 is not true or false"),
    ("penalty_k: yes\n", r"penalty_k: True is not a finite number"),
    ("vote_radius: 1.5\n", r"vote_radius: 1.5 is not an integer"),
    ("mode: 3\n", r"mode: 3 is not a string"),
    ("lost_score: .nan\n", r"lost_score: nan is not a finite number"),
    ("window_influence: 1.5\n", r"window_influence must be in \[0, 1\], got 1.5"),
    ("min_size: 0\n", r"min_size must be > 0"),
    ("empty_score: 0.5\nlost_score: 0.2\n", r"empty_score 0.5 must not exceed lost_score 0.2"),
    ("mode: [search\n", r"not valid YAML \(line 2\)"),
    ("- 1\n- 2\n", r"expected a mapping of TrackerConfig fields, got list"),
])
def test_a_bad_file_is_one_line_naming_the_file_and_the_key(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=match) as info:
        TrackerConfig.from_yaml(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_a_missing_file_names_it(tmp_path):
    with pytest.raises(UserError, match="none.yaml: cannot read the tracker config"):
        TrackerConfig.from_yaml(tmp_path / "none.yaml")


def test_every_command_refuses_a_bad_file_before_any_work(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("size_lr: 2\n")
    runs = [evaluate_cmd.main(["--model", "quick", "--out", str(tmp_path / "e"), "--tracker-config", str(bad)]),
            track_cmd.main(["--checkpoint", str(tmp_path / "none.pt"), "--video", str(tmp_path / "none.mp4"),
                            "--box", "1,1,20,20", "--out", str(tmp_path / "t"), "--tracker-config", str(bad)]),
            demo_cmd.main(["--out", str(tmp_path / "d"), "--tracker-config", str(bad)])]
    err = capsys.readouterr().err.splitlines()
    assert runs == [2, 2, 2] and len(err) == 3
    assert all(line == f"error: {bad}: size_lr must be in [0, 1], got 2.0" for line in err)
    assert not any((tmp_path / name).exists() for name in ("e", "t", "d"))


def test_evaluate_tracks_with_the_file_and_records_it(tmp_path, synthetic_davis):
    cfg = tmp_path / "t.yaml"
    cfg.write_text("mode: full_frame\nwindow_influence: 0.0\n")
    out = tmp_path / "e"
    rc = evaluate_cmd.main(["--model", "quick", "--davis-root", str(synthetic_davis), "--sequences", "synth00",
                            "--max-frames", "3", "--engine", "torch", "--device", "cpu", "--no-progress",
                            "--out", str(out), "--tracker-config", str(cfg)])
    assert rc == 0
    run = json.loads((out / "siampolar_full_frame" / "results.json").read_text())["run"]
    assert run["mode"] == "full_frame" and run["tracker"] == dataclasses.asdict(
        TrackerConfig(mode="full_frame", window_influence=0.0))
    # --mode, when given, wins over the file's mode
    rc = evaluate_cmd.main(["--model", "quick", "--davis-root", str(synthetic_davis), "--sequences", "synth00",
                            "--max-frames", "3", "--engine", "torch", "--device", "cpu", "--no-progress",
                            "--out", str(tmp_path / "s"), "--tracker-config", str(cfg), "--mode", "search"])
    run = json.loads((tmp_path / "s" / "results.json").read_text())["run"]
    assert rc == 0 and run["tracker"]["mode"] == "search" and run["tracker"]["window_influence"] == 0.0


def test_track_video_passes_the_config_to_every_object(tmp_path, monkeypatch):
    """siampolar-track hands the file's TrackerConfig to the MultiTracker it builds."""
    from siampolar_lib.apps import track_video as app

    seen = []
    monkeypatch.setattr(app, "MultiTracker", lambda engine, cfg: seen.append(cfg) or (_ for _ in ()).throw(
        UserError("stop here")))
    monkeypatch.setattr(app, "load_model", lambda *a, **k: None)
    monkeypatch.setattr(app, "make_engine", lambda *a, **k: None)
    frames = tmp_path / "frames"
    frames.mkdir()
    import cv2

    for i in range(3):
        cv2.imwrite(str(frames / f"{i:05d}.jpg"), np.full((60, 80, 3), 100, np.uint8))
    cfg = tmp_path / "t.yaml"
    cfg.write_text("size_lr: 0.25\n")
    rc = track_cmd.main(["--checkpoint", str(tmp_path / "c.pt"), "--video", str(frames), "--box", "10,10,20,20",
                         "--out", str(tmp_path / "o"), "--tracker-config", str(cfg)])
    assert rc == 2 and seen == [TrackerConfig(size_lr=0.25)]
