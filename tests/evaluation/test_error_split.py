"""The error split: the tracker mode is the plain tracker, the truth modes start each frame from the truth."""
from __future__ import annotations

import numpy as np
import pytest

from siampolar_lib import build_model
from siampolar_lib.data.davis import load_sequence, read_frame, sequence_masks
from siampolar_lib.errors import UserError
from siampolar_lib.evaluation.error_split import MODES, SplitTracker, error_split, format_split, nearest_location
from siampolar_lib.geometry.boxes import mask_to_box
from siampolar_lib.models.grid import location_grid
from siampolar_lib.tracking.tracker import Tracker


@pytest.fixture(scope="module")
def quick_model():
    return build_model("quick", pretrained=False).eval()


def _levels() -> list[dict]:
    """Two levels on a 255 crop (strides 8 and 16) with flat scores and 10 px rays."""
    out = []
    for h, s in ((25, 8), (13, 16)):
        out.append({"points": location_grid(h, h, s, 255).numpy().astype(np.float64),
                    "rays": np.full((36, h, h), 10.0), "score": np.full((h, h), 0.5)})
    return out


def test_nearest_location_follows_the_regress_ranges():
    levels = _levels()
    small = np.array([117.0, 117.0, 137.0, 137.0])  # a 20 px box around the crop centre 127
    assert nearest_location(levels, np.array([128.0, 126.0]), small, ((-1, 48), (48, np.inf))) == (0, 12, 12)
    big = np.array([27.0, 27.0, 227.0, 227.0])  # 200 px: seen from the centre 100 px, the stride-16 level's range
    assert nearest_location(levels, np.array([128.0, 126.0]), big, ((-1, 48), (48, np.inf))) == (1, 6, 6)
    # no range fits: the nearest location of any level
    assert nearest_location(levels, np.array([31.0, 31.0]), big, ((-1, 1), (1, 2)))[0] == 0


def test_tracker_mode_is_the_plain_tracker_and_truth_modes_reset_the_state(quick_model, synthetic_davis):
    seq = load_sequence(synthetic_davis, "synth00")
    frames = [read_frame(p) for p in seq.frame_paths[:6]]
    gt = sequence_masks(seq)[:6]
    plain, split = Tracker(quick_model), SplitTracker(quick_model, mode="tracker")
    plain.init(frames[0], mask_to_box(gt[0]))
    split.init(frames[0], mask_to_box(gt[0]))
    for f, g in zip(frames[1:], gt[1:]):
        split.truth = g  # ignored in tracker mode
        np.testing.assert_array_equal(plain.track(f).mask, split.track(f).mask)
    assert len(split.choices) == 5 and all(0.0 <= c["share"] <= 1.0 for c in split.choices)

    for mode in ("truth_crop", "truth_centre"):
        t = SplitTracker(quick_model, mode=mode)
        t.init(frames[0], mask_to_box(gt[0]))
        seen = []
        orig = t._search_crop
        t._search_crop = lambda frame: (seen.append((t.centre.copy(), t.size.copy())), orig(frame))[1]
        for f, g in zip(frames[1:], gt[1:]):
            t.truth = g
            t.track(f)
        x, y, w, h = mask_to_box(gt[-1])
        np.testing.assert_allclose(seen[-1][0], [x + w / 2, y + h / 2])
        np.testing.assert_allclose(seen[-1][1], [w, h])


def test_error_split_runs_every_mode_and_refuses_val_sequences(quick_model, synthetic_davis):
    res = error_split(quick_model, synthetic_davis, ["synth00", "synth01"], max_frames=5)
    assert set(res["modes"]) == set(MODES)
    assert all(0.0 <= s["J_M"] <= 1.0 for s in res["modes"].values())
    assert len(res["scores"]) == 2 * 4 and "truth_centre" in format_split(res)
    with pytest.raises(UserError, match="blackswan"):
        error_split(quick_model, synthetic_davis, ["blackswan"])
    with pytest.raises(ValueError, match="mode must be"):
        SplitTracker(quick_model, mode="oracle")
