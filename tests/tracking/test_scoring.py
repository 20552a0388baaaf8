"""The tracker's scoring maths (tracking.scoring), each function against a hand-written version."""
from __future__ import annotations

import numpy as np
import pytest

from siampolar_lib.geometry.crops import context_side
from siampolar_lib.models.grid import location_grid
from siampolar_lib.tracking.scoring import (
    best_location,
    change,
    change_penalty,
    cosine_window,
    network_share,
    parabola_vertex,
    polygon_boxes,
    windowed_score,
)

R = 36


def levels(seed: int = 0) -> list[dict]:
    """Two levels on a 255 crop (strides 8 and 16) with random scores and rays (crop px)."""
    rng = np.random.default_rng(seed)
    return [{"points": location_grid(h, h, s, 255).numpy().astype(np.float64),
             "rays": rng.uniform(5.0, 60.0, (R, h, h)), "score": rng.uniform(0.0, 1.0, (h, h))}
            for h, s in ((25, 8), (13, 16))]


def test_change_is_symmetric_and_at_least_one():
    r = np.array([0.25, 0.5, 1.0, 2.0, 4.0])
    np.testing.assert_array_equal(change(r), change(1.0 / r))
    assert change(r).min() == 1.0


def test_polygon_boxes_of_a_circle_is_a_centred_square():
    dx, dy, w, h = polygon_boxes(np.full((R, 1, 1), 10.0))
    np.testing.assert_allclose([dx[0, 0], dy[0, 0], w[0, 0], h[0, 0]], [0.0, 0.0, 20.0, 20.0], atol=1e-9)


def test_the_previous_size_is_not_penalised_and_others_are():
    scale, context = 1.7, 0.5
    prev = np.array([40.0, 20.0])
    same = change_penalty(np.array([40.0 * scale]), np.array([20.0 * scale]), prev, scale, context, 0.04)
    assert same[0] == pytest.approx(1.0)
    other = change_penalty(np.array([20.0 * scale]), np.array([20.0 * scale]), prev, scale, context, 0.04)
    assert 0.0 < other[0] < 1.0
    assert change_penalty(np.array([5.0]), np.array([90.0]), prev, scale, context, 0.0)[0] == 1.0  # k 0: off


def test_windowed_score_blends_the_network_and_the_window():
    s, p, w = np.array([0.8]), np.array([0.5]), np.array([0.25])
    np.testing.assert_allclose(windowed_score(s, p, w, 0.3), 0.5 * 0.8 * 0.7 + 0.25 * 0.3)
    assert network_share(0.8, 0.5, 0.25, 0.3) == pytest.approx(0.28 / (0.28 + 0.075))
    assert np.isnan(network_share(0.0, 1.0, 0.0, 0.3))


def test_parabola_vertex():
    assert parabola_vertex(0.0, 1.0, 0.0) == 0.0  # symmetric peak
    assert parabola_vertex(1.0, 0.0, 1.0) == 0.0  # a valley is no peak
    assert parabola_vertex(0.5, 1.0, 0.9) == pytest.approx(0.5 * (0.5 - 0.9) / (0.5 - 2.0 + 0.9))


def test_best_location_equals_the_loop_written_out():
    """The written-out loop (the tracker's before scoring.py): the same level, cell, penalty, box, to the bit."""
    lv, size, scale, context, k, lam = levels(), np.array([30.0, 45.0]), 1.3, 0.5, 0.04, 0.3
    c = best_location(lv, [cosine_window(v["points"]) for v in lv], size, scale, context, k, lam)
    sz_prev, best = context_side(size[0] * scale, size[1] * scale, context), None
    for li, v in enumerate(lv):
        dx, dy, bw, bh = polygon_boxes(v["rays"])
        bw, bh = np.maximum(bw, 1e-3), np.maximum(bh, 1e-3)
        s_c = change(context_side(bw, bh, context) / sz_prev)
        r_c = change((size[0] / size[1]) / (bw / bh))
        pen = np.exp(-(r_c * s_c - 1.0) * k)
        final = pen * v["score"] * (1.0 - lam) + cosine_window(v["points"]) * lam
        i, j = np.unravel_index(int(np.argmax(final)), final.shape)
        if best is None or final[i, j] > best[0]:
            best = (final[i, j], li, i, j, pen[i, j], (dx[i, j], dy[i, j], bw[i, j], bh[i, j]), final)
    assert (c.level, c.i, c.j, c.penalty, c.box) == best[1:6]
    assert np.array_equal(c.final, best[6])


def test_a_tie_keeps_the_earlier_level():
    lv = levels()
    for v in lv:
        v["score"][:] = 0.0
        v["rays"][:] = 10.0
    c = best_location(lv, [np.zeros(v["score"].shape) for v in lv], np.array([20.0, 20.0]), 1.0, 0.5, 0.04, 0.0)
    assert c.level == 0
