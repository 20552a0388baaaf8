"""DAVIS measures: hand-made cases, the official decay bins, folder scoring errors, and cross-checks of the
OSVOS predictions against the reference values in their README and against the PyPI peer vos-benchmark."""
from __future__ import annotations

import json
import math
import re
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from siampolar_lib import io
from siampolar_lib.commands import score as score_cmd
from siampolar_lib.errors import UserError
from siampolar_lib.evaluation import folders
from siampolar_lib.evaluation import metrics as M
from siampolar_lib.evaluation.report import format_table, write_results_json

H, W = 480, 854
FAST_SEQS = ["motocross-jump", "scooter-black", "blackswan"]  # the shortest; two are multi-object


def box(y0: int, y1: int, x0: int, x1: int, shape=(H, W)) -> np.ndarray:
    """(H, W) bool mask with a filled rectangle [y0:y1, x0:x1]."""
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


# ------------------------------------------------------------------------------------------- measures
def test_identical_masks_score_one():
    m = box(100, 200, 300, 500)
    assert M.jaccard(m, m) == 1.0
    assert M.f_measure(m, m) == 1.0


def test_disjoint_masks_score_zero():
    a, b = box(10, 60, 10, 60), box(300, 400, 600, 700)  # far beyond the 8 px tolerance
    assert M.jaccard(a, b) == 0.0
    assert M.f_measure(a, b) == 0.0


def test_both_empty_scores_one():
    e = np.zeros((H, W), bool)
    assert M.jaccard(e, e) == 1.0
    assert M.f_measure(e, e) == 1.0


def test_one_side_empty_scores_zero():
    e, m = np.zeros((H, W), bool), box(100, 200, 100, 200)
    assert M.jaccard(e, m) == 0.0 and M.f_measure(e, m) == 0.0  # pred empty: P=1, R=0
    assert M.jaccard(m, e) == 0.0 and M.f_measure(m, e) == 0.0  # GT empty: P=0, R=1


def test_jaccard_by_hand():
    a, b = box(0, 10, 0, 10), box(0, 10, 5, 15)  # overlap 50 px, union 150 px
    assert M.jaccard(a, b) == pytest.approx(50 / 150)
    assert M.batched_jaccard(np.stack([a, a]), np.stack([b, a])).tolist() == pytest.approx([1 / 3, 1.0])


def test_shift_within_tolerance_keeps_f_one_but_not_beyond():
    a = box(100, 200, 100, 300)
    assert M.boundary_radius((H, W)) == 8
    assert M.f_measure(np.roll(a, 8, axis=1), a) == 1.0
    assert M.f_measure(np.roll(a, 9, axis=1), a) < 1.0


def test_disk_equals_skimage_disk():
    from skimage.morphology import disk

    for r in range(0, 21):
        np.testing.assert_array_equal(M.disk(r), disk(r).astype(np.uint8))


def _official_f(pred: np.ndarray, gt: np.ndarray) -> float:
    """The official full-frame computation (vos-benchmark's copy of the DAVIS code, skimage dilation)."""
    from skimage.morphology import dilation, disk
    from vos_benchmark.utils import _seg2bmap

    r = np.ceil(0.008 * np.linalg.norm(pred.shape))
    pb, gb = _seg2bmap(pred).astype(bool), _seg2bmap(gt).astype(bool)
    n_p, n_g = pb.sum(), gb.sum()
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0
    prec = (pb & dilation(gb, disk(r))).sum() / n_p
    rec = (gb & dilation(pb, disk(r))).sum() / n_g
    return 0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)


def test_seg2bmap_and_cropped_f_equal_official_full_frame():
    rng = np.random.default_rng(0)
    shape = (120, 200)  # small frame: tolerance ceil(0.008 * 233.2) = 2 px
    for i in range(40):
        gt = np.zeros(shape, bool)
        pred = np.zeros(shape, bool)
        for m in (gt, pred):
            for _ in range(rng.integers(1, 4)):
                y, x = rng.integers(-10, shape[0]), rng.integers(-10, shape[1])  # some touch the border
                m[max(y, 0):y + rng.integers(1, 60), max(x, 0):x + rng.integers(1, 80)] = True
        if i % 7 == 0:
            pred = gt ^ (rng.random(shape) < 0.02)  # speckle noise: many tiny boundaries
        from vos_benchmark.utils import _seg2bmap

        np.testing.assert_array_equal(M.seg2bmap(gt), _seg2bmap(gt))
        assert M.f_measure(pred, gt) == pytest.approx(_official_f(pred, gt), abs=1e-12)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        M.jaccard(np.zeros((4, 5), bool), np.zeros((5, 4), bool))


# ------------------------------------------------------------------------------------------- statistics
def _hand_bins(n: int) -> list[int]:
    """round-half-up(linspace(1, n, 5)) - 1 with exact fractions."""
    return [math.floor(1 + Fraction(k * (n - 1), 4) + Fraction(1, 2)) - 1 for k in range(5)]


def test_decay_bins_match_hand_computation():
    for n in range(5, 101):
        assert M.decay_bin_ids(n).tolist() == _hand_bins(n), n


def test_decay_by_hand():
    mean, recall, decay = M.db_statistics([1.0, 0.9, 0.8, 0.4, 0.2])  # bins [0:2] and [3:5]
    assert mean == pytest.approx(0.66)
    assert recall == pytest.approx(3 / 5)
    assert decay == pytest.approx((1.0 + 0.9) / 2 - (0.4 + 0.2) / 2)


def test_uint8_bins_wrap_as_the_reference_did_and_int64_does_not():
    wrapped = M.decay_bin_ids(1376, wrap_uint8=True)
    assert (wrapped[0], wrapped[1] + 1) == (0, 89) and (wrapped[3], wrapped[4] + 1) == (7, 96)
    assert M.decay_bin_ids(1376).tolist() == _hand_bins(1376)


def test_first_and_last_frames_are_not_scored():
    gt = np.stack([box(100, 200, 100, 200)] * 6)
    pred = gt.copy()
    pred[0] = pred[-1] = False  # wrong only where the protocol does not look
    r = M.evaluate_sequence(pred, gt)
    assert r["J_M"] == 1.0 and r["F_M"] == 1.0 and r["J_D"] == 0.0
    assert r["J"][0] == 0.0 and r["J"][-1] == 0.0 and len(r["J"]) == 6
    pred[2] = False
    assert M.evaluate_sequence(pred, gt)["J_M"] == pytest.approx(3 / 4)


@pytest.mark.parametrize("n", [1, 2])
def test_short_sequences_have_nothing_to_score(n):
    """Frames [1:-1] of 1 or 2 frames are none: refused, not scored on the given first mask (issue 29, 11)."""
    gt = np.stack([box(10, 50, 10, 50)] * n)
    pred = gt.copy()
    pred[-1] = False
    with pytest.raises(UserError, match="nothing to score"):
        M.evaluate_sequence(pred, gt)


def test_pooled_protocol_equals_per_sequence_for_one_sequence_only():
    rng = np.random.default_rng(1)
    seqs = [rng.random(n) for n in (30, 70, 12)]
    one = M.pooled_statistics(seqs[:1], keep_first_last=False, wrap_uint8=False)
    assert one == pytest.approx(M.db_statistics(seqs[0][1:-1]))
    pooled = M.pooled_statistics(seqs)
    per_seq = np.mean([M.db_statistics(s[1:-1]) for s in seqs], axis=0)
    assert not np.allclose(pooled, per_seq)  # frames of long sequences weigh more when pooled


# ------------------------------------------------------------------------------------------- files
def test_write_mask_png_round_trip(tmp_path):
    m = box(5, 20, 3, 30, shape=(40, 50))
    path = io.write_mask_png(tmp_path / "seq" / "00000.png", m)
    with Image.open(path) as im:
        assert im.mode == "L"
        assert sorted(np.unique(np.asarray(im)).tolist()) == [0, 255]
    np.testing.assert_array_equal(io.read_mask_png(path), m)
    assert [p.name for p in path.parent.iterdir()] == ["00000.png"]  # no temp file left


def test_palette_png_is_read_as_object_indices(tmp_path):
    idx = np.zeros((20, 30), np.uint8)
    idx[2:5, 2:5], idx[10:15, 10:20] = 1, 2
    im = Image.fromarray(idx, mode="P")
    im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9))
    im.save(tmp_path / "p.png")
    np.testing.assert_array_equal(io.read_mask_png(tmp_path / "p.png"), idx > 0)


def _tiny_davis(root: Path, n_frames: int = 4, shape=(30, 40)) -> Path:
    """Annotations/480p/seq with n_frames 0/255 masks; returns the Annotations/480p folder."""
    ann = root / "Annotations" / "480p"
    for t in range(n_frames):
        io.write_mask_png(ann / "seq" / f"{t:05d}.png", box(5 + t, 20, 5, 25, shape))
    return ann


def test_missing_prediction_names_the_file(tmp_path):
    ann = _tiny_davis(tmp_path / "DAVIS")
    shutil.copytree(ann, tmp_path / "pred")
    (tmp_path / "pred" / "seq" / "00002.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"00002\.png"):
        folders.evaluate_folder(tmp_path / "DAVIS", tmp_path / "pred", processes=1)
    with pytest.raises(FileNotFoundError, match="nope"):
        folders.evaluate_folder(tmp_path / "DAVIS", tmp_path / "pred", sequences=["nope"], processes=1)


def test_size_mismatch_names_both_files(tmp_path):
    ann = _tiny_davis(tmp_path / "DAVIS")
    shutil.copytree(ann, tmp_path / "pred")
    io.write_mask_png(tmp_path / "pred" / "seq" / "00001.png", np.zeros((31, 40), bool))
    with pytest.raises(ValueError, match=r"size mismatch.*00001\.png.*00001\.png"):
        folders.evaluate_folder(ann, tmp_path / "pred", processes=1)


def test_synthetic_folder_scored_against_itself_is_perfect(synthetic_davis):
    ann = synthetic_davis / "Annotations" / "480p"
    r = folders.evaluate_folder(synthetic_davis, ann, processes=2)
    assert len(r["sequences"]) == 4
    assert r["J_M"] == 1.0 and r["F_M"] == 1.0 and r["JF_M"] == 1.0 and r["J_D"] == 0.0


# ------------------------------------------------------------------------------------------- results
def test_format_table_percent_and_fps():
    text = format_table({"a": {"J_M": 0.77022, "F_D": -0.0001, "fps": 59.24}, "b": {"J_M": float("nan")}},
                        columns=("J_M", "F_D", "fps"))
    lines = text.splitlines()
    assert lines[1].split() == ["a", "77.0", "0.0", "59.2"]
    assert lines[2].split() == ["b", "-", "-", "-"]


def test_write_results_json_schema(tmp_path):
    row = {"J_M": 0.5, "J_O": 0.6, "J_D": 0.1, "F_M": 0.4, "F_O": 0.3, "F_D": float("nan"), "JF_M": 0.45}
    path = write_results_json(tmp_path / "results.json", {**row, "fps": 12.5}, {"s": {**row, "J": [1.0]}})
    doc = json.loads(path.read_text())
    keys = {"J_M", "J_O", "J_D", "F_M", "F_O", "F_D", "JF_M", "fps"}
    assert set(doc) == keys | {"sequences"} and set(doc["sequences"]["s"]) == keys
    assert doc["fps"] == 12.5 and doc["F_D"] is None and doc["sequences"]["s"]["fps"] is None
    with pytest.raises(ValueError, match="lacks"):
        write_results_json(tmp_path / "bad.json", {"J_M": 1.0}, {})


def test_cli_writes_results_and_never_into_gt(tmp_path, capsys):
    ann = _tiny_davis(tmp_path / "DAVIS", n_frames=5)
    shutil.copytree(ann, tmp_path / "pred")
    assert score_cmd.main(["--gt", str(tmp_path / "DAVIS"), "--pred", str(tmp_path / "pred"), "--processes", "1"]) == 0
    assert "mean over sequences" in capsys.readouterr().out
    assert json.loads((tmp_path / "pred" / "results.json").read_text())["J_M"] == 1.0
    assert score_cmd.main(["--gt", str(tmp_path / "DAVIS"), "--pred", str(tmp_path / "pred"),
                   "--out", str(tmp_path / "DAVIS" / "out")]) == 2
    assert "lies inside the input --gt" in capsys.readouterr().err
    assert not (tmp_path / "DAVIS" / "out").exists()


# ------------------------------------------------------------------------------------------- cross-checks
def _readme_reference(osvos_results: Path) -> dict[str, tuple[float, float]]:
    """Per-sequence (J, F) fractions from the table in the OSVOS results README."""
    text = (osvos_results.parent / "README.md").read_text()
    rows = re.findall(r"^\| ([a-z0-9-]+) \| ([\d.]+) \| ([\d.]+) \|$", text, flags=re.M)
    assert len(rows) == 15
    return {s: (float(j) / 100, float(f) / 100) for s, j, f in rows}


def _vos_benchmark_scores(gt: Path, pred: Path, seqs: list[str], tmp_path: Path) -> dict:
    """vos-benchmark's per-sequence (J, F) fractions on a 0/255 copy of the predictions (it matches objects
    by pixel value); its VideoEvaluator is called directly, so nothing exits or writes results.csv."""
    from vos_benchmark.benchmark import VideoEvaluator

    copy = folders.binarise_folder(pred, tmp_path / "binary", seqs)
    ev = VideoEvaluator(str(gt), str(copy))
    out = {}
    for s in seqs:
        _, iou, bf = ev(s)
        assert list(iou) == [255]
        out[s] = (iou[255] / 100, bf[255] / 100)
    return out


def _cross_check(real_davis, osvos_results, tmp_path, seqs):
    ann = real_davis / "Annotations" / "480p"
    ours = folders.evaluate_folder(real_davis, osvos_results, sequences=seqs, processes=2)
    ref = _readme_reference(osvos_results)
    peer = _vos_benchmark_scores(ann, osvos_results, seqs, tmp_path)
    for s in seqs:
        row = ours["sequences"][s]
        assert row["J_M"] == pytest.approx(ref[s][0], abs=1e-5), s  # README gives 0.001 %
        assert row["F_M"] == pytest.approx(ref[s][1], abs=1e-5), s
        assert row["J_M"] == pytest.approx(peer[s][0], abs=1e-9), s
        assert row["F_M"] == pytest.approx(peer[s][1], abs=1e-9), s
    return ours, ref


def test_osvos_matches_readme_and_vos_benchmark_fast(real_davis, osvos_results, tmp_path):
    _cross_check(real_davis, osvos_results, tmp_path, FAST_SEQS)


@pytest.mark.slow
def test_osvos_matches_readme_and_vos_benchmark_all_sequences(real_davis, osvos_results, tmp_path):
    seqs = sorted(p.name for p in osvos_results.iterdir() if p.is_dir())
    ours, ref = _cross_check(real_davis, osvos_results, tmp_path, seqs)
    assert ours["J_M"] == pytest.approx(np.mean([v[0] for v in ref.values()]), abs=1e-5)
    assert ours["F_M"] == pytest.approx(np.mean([v[1] for v in ref.values()]), abs=1e-5)
    pooled = M.pooled_statistics([r["J"] for r in ours["sequences"].values()])
    assert abs(pooled[2] - ours["J_D"]) > 1e-3  # the reference's pooled decay is a different number


def test_a_registered_measure_reaches_rows_summary_table_and_results_json(tmp_path, monkeypatch):
    """Adding a metric is one registration: its X_M/X_O/X_D flow through every row, summary, table and results.json."""
    from siampolar_lib.evaluation.report import format_table, write_results_json

    monkeypatch.setitem(M.MEASURES, "A", lambda p, g, th: (p.sum((1, 2)) <= g.sum((1, 2))).astype(float))
    gt = np.zeros((5, 8, 8), bool)
    gt[:, 2:6, 2:6] = True
    pred = gt.copy()
    pred[2, :, :] = True  # frame 2 predicts more area than the truth: A = 0 there
    row = M.evaluate_sequence(pred, gt)
    assert row["A_M"] == pytest.approx(2 / 3) and row["A"] == [1.0, 1.0, 0.0, 1.0, 1.0]
    assert "A_M" in M.stat_keys() and row["J_M"] < 1.0
    summary = M.mean_over_sequences({"s1": row, "s2": M.evaluate_sequence(gt, gt)})
    assert summary["A_M"] == pytest.approx((2 / 3 + 1) / 2)
    assert "83.3" in format_table({"all": summary}, columns=("A_M",))
    doc = json.loads(write_results_json(tmp_path / "r.json", summary, {"s1": row}).read_text())
    assert doc["A_M"] == pytest.approx(summary["A_M"]) and doc["sequences"]["s1"]["A_M"] == pytest.approx(2 / 3)


def test_a_measure_name_with_an_underscore_is_refused():
    with pytest.raises(ValueError, match="without '_'"):
        M.register_measure("J_2")
