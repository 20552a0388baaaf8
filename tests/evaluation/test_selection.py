"""Selection and tuning (evaluation.selection): one guard against val sequences, one fold scorer, the grid search."""
from __future__ import annotations

import numpy as np
import pytest

from siampolar_lib import build_model
from siampolar_lib.errors import UserError
from siampolar_lib.evaluation.error_split import error_split
from siampolar_lib.evaluation.selection import (
    PYSOT,
    check_train_sequences,
    fold_rows,
    fold_scores,
    fold_summary,
    mean_box_iou,
    tune_grid,
    tuned_values,
)
from siampolar_lib.tracking.baselines import make_baseline
from siampolar_lib.tracking.config import TrackerConfig


@pytest.fixture(scope="module")
def quick_model():
    return build_model("quick", pretrained=False).eval()


def test_the_guard_names_every_val_sequence_and_passes_train_ones():
    check_train_sequences(["dog-agility", "synth00"])
    with pytest.raises(UserError, match="--split train: blackswan, cows are DAVIS-2016 val sequences"):
        check_train_sequences(["cows", "dog-agility", "blackswan"], "--split train")


def test_box_iou_of_the_truth_is_one_and_of_nothing_zero():
    gt = np.zeros((4, 20, 20), bool)
    gt[:, 5:10, 5:12] = True
    assert mean_box_iou(gt, gt) == 1.0
    assert mean_box_iou(np.zeros_like(gt), gt) == 0.0


def test_fold_rows_scores_any_tracker_and_the_summary_averages(synthetic_davis):
    """The oracle box tracks every frame perfectly as a box: box IoU 1 on every sequence; rows carry fps and lost."""
    rows = fold_rows(lambda name, gt: make_baseline("oracle_box", gt_masks=gt), synthetic_davis,
                     ["synth00", "synth01"], max_frames=5)
    assert list(rows) == ["synth00", "synth01"]
    assert all(r["box_iou"] == 1.0 and r["frames"] == 5 and r["lost"] == 0 for r in rows.values())
    s = fold_summary(rows)
    assert s["JF_M"] == pytest.approx((s["J_M"] + s["F_M"]) / 2) and s["box_iou"] == 1.0
    assert s["per_sequence_J_M"] == {n: r["J_M"] for n, r in rows.items()}


def test_fold_scores_equal_the_error_splits_tracker_mode(quick_model, synthetic_davis):
    """The fold scorer and the error split run one loop: the plain tracker scores the same in both."""
    names = ["synth00"]
    a = fold_scores(quick_model, synthetic_davis, names, TrackerConfig(), max_frames=5)
    b = error_split(quick_model, synthetic_davis, names, max_frames=5)
    assert a["J_M"] == b["modes"]["tracker"]["J_M"] and a["F_M"] == b["modes"]["tracker"]["F_M"]
    with pytest.raises(UserError, match="val sequences"):
        fold_scores(quick_model, synthetic_davis, ["blackswan"])


@pytest.mark.slow
def test_tune_grid_scores_pysot_first_then_the_grid(tmp_path, synthetic_davis, quick_model):
    from siampolar_lib.training.checkpoint import save_checkpoint

    ckpt = save_checkpoint(tmp_path / "q.pt", quick_model)
    results = tune_grid(str(ckpt), synthetic_davis, ["synth00"], [(0.1, 0.05)], [0.04], [0.3], [0.6], max_frames=3)
    assert results[0]["cfg"] == tuned_values(PYSOT)  # inserted first although not asked for
    assert [r["cfg"]["lost_score"] for r in results[:2]] == [0.2, 0.1] and len(results) == 3
    with pytest.raises(UserError, match="blackswan"):
        tune_grid(str(ckpt), synthetic_davis, ["blackswan"], [], [0.04], [0.3], [0.6])
