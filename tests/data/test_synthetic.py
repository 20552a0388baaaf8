"""The synthetic DAVIS generator: a readable DAVIS folder, deterministic bytes, objects that leave the frame."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from siampolar_lib.data.davis import list_sequences, load_sequence, read_frame, sequence_masks, split_lists
from siampolar_lib.data.synthetic import make_synthetic_davis
from siampolar_lib.paths import REPO_ROOT

SMALL = (160, 96)


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_splits(synthetic_davis):
    assert split_lists(synthetic_davis) == {"train": ["synth00", "synth01", "synth02"], "val": ["synth03"]}
    info = yaml.safe_load((synthetic_davis / "Annotations" / "db_info.yml").read_text())
    assert [s["name"] for s in info["sequences"]] == list_sequences(synthetic_davis, "all")
    for name in list_sequences(synthetic_davis, "all"):
        seq = load_sequence(synthetic_davis, name)
        assert len(seq) == 12
        assert read_frame(seq.frame_paths[0]).shape == (480, 854, 3)
        raw = cv2.imread(str(seq.mask_paths[0]), cv2.IMREAD_UNCHANGED)
        assert raw.dtype == np.uint8 and raw.ndim == 2 and set(np.unique(raw)) <= {0, 255}
        assert sequence_masks(seq)[0].any(), "frame 0 must show the object (the tracker starts there)"


def test_objects_move_and_are_not_convex(synthetic_davis):
    for name in list_sequences(synthetic_davis, "all"):
        masks = sequence_masks(load_sequence(synthetic_davis, name))
        m0 = masks[0].astype(np.uint8)
        contours, _ = cv2.findContours(m0, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        hull = cv2.convexHull(np.concatenate(contours))
        assert m0.sum() < 0.95 * cv2.contourArea(hull), f"{name}: frame 0 object is (nearly) convex"
        ys, xs = np.nonzero(masks[0])
        ys1, xs1 = np.nonzero(masks[len(masks) // 3])
        assert np.hypot(xs.mean() - xs1.mean(), ys.mean() - ys1.mean()) > 3, f"{name}: object did not move"


def test_an_object_leaves_the_frame_in_the_default_set(tmp_path):
    root = make_synthetic_davis(tmp_path / "d", size=SMALL)  # default 8 sequences x 24 frames, seed 0
    with_empty, gone_at_end = set(), set()
    for name in list_sequences(root, "all"):
        present = sequence_masks(load_sequence(root, name)).any(axis=(1, 2))
        assert present[0]
        with_empty |= {name} if not present.all() else set()
        gone_at_end |= {name} if not present[-1] else set()
    assert "synth01" in gone_at_end
    info = yaml.safe_load((root / "Annotations" / "db_info.yml").read_text())
    assert {s["name"] for s in info["sequences"] if "OV" in s["attributes"]} == with_empty
    assert all(s["empty_masks"] > 0 for s in info["sequences"] if s["name"] in with_empty)


def test_occluder_hides_part_of_the_object(tmp_path):
    """The same set drawn without occluders: occluded masks are strict subsets, and frame 0 is never occluded."""
    occ = make_synthetic_davis(tmp_path / "occ", sequences=4, frames=12, size=SMALL)
    clear = make_synthetic_davis(tmp_path / "clear", sequences=4, frames=12, size=SMALL, occluders=False)
    hidden = 0
    for name in list_sequences(occ, "all"):
        m_occ = sequence_masks(load_sequence(occ, name))
        m_clear = sequence_masks(load_sequence(clear, name))
        assert not (m_occ & ~m_clear).any(), "an occluder can only remove object pixels"
        np.testing.assert_array_equal(m_occ[0], m_clear[0])
        hidden += int((m_clear & ~m_occ).any(axis=(1, 2)).sum())
        # where the mask lost pixels, the frame shows the occluder, not the object
        lost = m_clear & ~m_occ
        if lost.any():
            t = int(np.nonzero(lost.any(axis=(1, 2)))[0][0])
            f_occ = read_frame(load_sequence(occ, name).frame_paths[t]).astype(int)
            f_clear = read_frame(load_sequence(clear, name).frame_paths[t]).astype(int)
            assert np.abs(f_occ - f_clear)[lost[t]].mean() > 10
    assert hidden >= 3, f"only {hidden} occluded frames in 4 sequences"
    info = yaml.safe_load((occ / "Annotations" / "db_info.yml").read_text())
    assert all("OCC" in s["attributes"] for s in info["sequences"])


def test_same_seed_same_bytes(tmp_path):
    a = make_synthetic_davis(tmp_path / "a", sequences=2, frames=4, seed=7, size=SMALL)
    b = make_synthetic_davis(tmp_path / "b", sequences=2, frames=4, seed=7, size=SMALL)
    c = make_synthetic_davis(tmp_path / "c", sequences=2, frames=4, seed=8, size=SMALL)
    assert _tree_bytes(a) == _tree_bytes(b)
    assert _tree_bytes(a) != _tree_bytes(c)


def test_refuses_to_overwrite(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        make_synthetic_davis(tmp_path / "d", sequences=1, frames=2, size=SMALL)
    assert (tmp_path / "d" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"], "no temporary folder left behind"


@pytest.mark.parametrize("kwargs", [dict(sequences=0), dict(frames=1), dict(size=(20, 20))])
def test_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        make_synthetic_davis(tmp_path / "d", **kwargs)


def test_cli_smoke(tmp_path):
    out = tmp_path / "cli"
    cmd = [sys.executable, str(REPO_ROOT / "data_scripts" / "make_synthetic_davis.py"), "--out", str(out),
           "--sequences", "2", "--frames", "3", "--seed", "1", "--size", "160x96"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "2 sequences x 3 frames (160x96)" in r.stdout
    assert read_frame(load_sequence(out, "synth01").frame_paths[2]).shape == (96, 160, 3)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "refusing to overwrite" in r.stderr
    r = subprocess.run(cmd[:-1] + ["160by96"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "WIDTHxHEIGHT" not in r.stdout and "854x480" in r.stderr
