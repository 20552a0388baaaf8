"""The one tracking loop (tracking.loop): frame 0 is the box, frames are pulled lazily, any tracker kind runs."""
from __future__ import annotations

import numpy as np
import pytest

from siampolar_lib import build_model
from siampolar_lib.tracking.baselines import StaticBox
from siampolar_lib.tracking.loop import track_frames, track_sequence
from siampolar_lib.tracking.multi import MultiTracker
from siampolar_lib.tracking.tracker import Tracker, box_result

BOX = np.array([40.0, 30.0, 30.0, 24.0])


@pytest.fixture(scope="module")
def model():
    return build_model("quick", pretrained=False).eval()


def frames(n: int = 4) -> list[np.ndarray]:
    """n (96, 128, 3) frames with a bright block moving right by 2 px a frame."""
    out = []
    for k in range(n):
        f = np.full((96, 128, 3), 40, np.uint8)
        f[30:54, 40 + 2 * k:70 + 2 * k] = 220
        out.append(f)
    return out


def test_frame_zero_is_the_box_then_one_result_per_frame(model):
    fs = frames()
    times: list[float] = []
    results = list(track_sequence(Tracker(model), fs, BOX, times))
    first = box_result(fs[0].shape, BOX, model.config.num_rays)
    assert len(results) == len(times) == 4 and all(t >= 0 for t in times)
    np.testing.assert_array_equal(results[0].mask, first.mask)
    np.testing.assert_array_equal(results[0].polygon, first.polygon)
    assert results[0].score == 1.0 and not results[0].lost
    # the list convenience is the same loop
    again = track_frames(Tracker(model), fs, BOX)
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(results, again))


def test_frames_are_pulled_one_at_a_time():
    pulled = []

    def stream():
        for k, f in enumerate(frames(5)):
            pulled.append(k)
            yield f

    loop = track_sequence(StaticBox(), stream(), BOX)
    assert pulled == []  # nothing is read before the first result is asked for
    next(loop)
    assert pulled == [0]
    next(loop)
    assert pulled == [0, 1]


def test_several_objects_give_one_list_a_frame(model):
    boxes = [BOX, np.array([5.0, 5.0, 20.0, 20.0])]
    results = list(track_sequence(MultiTracker(model), frames(3), boxes))
    assert [len(r) for r in results] == [2, 2, 2]
    np.testing.assert_array_equal(results[0][1].box, boxes[1])


def test_no_frame_is_an_error_and_score_maps_start_with_none(model):
    with pytest.raises(ValueError, match="no frames"):
        next(track_sequence(StaticBox(), iter([]), BOX))
    maps: list = []
    track_frames(Tracker(model), frames(3), BOX, score_maps=maps)
    assert maps[0] is None and all(m.ndim == 2 for m in maps[1:]) and len(maps) == 3
