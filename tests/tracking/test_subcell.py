"""TrackerConfig.subcell: the chosen location moved to the vertex of a parabola through the final scores."""
from __future__ import annotations

import numpy as np
import pytest

from siampolar_lib import build_model
from siampolar_lib.models.grid import location_grid
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.scoring import polygon_boxes
from siampolar_lib.tracking.tracker import Tracker


@pytest.fixture(scope="module")
def tracker() -> Tracker:
    return Tracker(build_model("quick", pretrained=False), TrackerConfig(subcell=True))


def level(rays: np.ndarray) -> dict:
    """A 5x5 stride-8 level with the given rays (R, 5, 5)."""
    return {"points": location_grid(5, 5, 8, 255).numpy().astype(np.float64), "rays": rays,
            "score": np.zeros((5, 5))}


def test_the_vertex_of_a_parabola_is_found_and_rays_are_read_there(tracker):
    yy, xx = np.mgrid[:5, :5].astype(np.float64)
    tracker._last_pscore = 1.0 - 0.1 * ((yy - 2.3) ** 2 + (xx - 1.8) ** 2)  # its peak between cells
    rays = np.broadcast_to(10.0 + 2.0 * xx + 5.0 * yy, (36, 5, 5)).copy()  # linear in the position
    lv = level(rays)
    point, r, (dx, dy, bw, bh) = tracker._subcell(lv, 2, 2)
    assert np.allclose(point, lv["points"][2, 2] + 8 * np.array([-0.2, 0.3]))
    assert np.allclose(r, 10.0 + 2.0 * 1.8 + 5.0 * 2.3)  # bilinear reading of a linear field is exact
    assert np.allclose((dx, dy, bw, bh), [v[0, 0] for v in polygon_boxes(r[:, None, None])])


def test_a_symmetric_peak_and_the_map_edge_stay_on_the_cell(tracker):
    yy, xx = np.mgrid[:5, :5].astype(np.float64)
    tracker._last_pscore = 1.0 - ((yy - 2) ** 2 + (xx - 4) ** 2)  # symmetric in y, at the right edge in x
    lv = level(np.random.default_rng(0).uniform(5, 50, (36, 5, 5)))
    point, r, _ = tracker._subcell(lv, 2, 4)
    assert np.array_equal(point, lv["points"][2, 4]) and np.array_equal(r, lv["rays"][:, 2, 4])
