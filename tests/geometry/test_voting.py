"""Polygon voting (geometry.voting) and the tracker's vote / ray-scale options."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from siampolar_lib import build_model
from siampolar_lib.geometry.polar import polygon_to_mask, rays_to_polygon
from siampolar_lib.geometry.voting import vote_mask
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.tracker import Tracker


def _square(cx: float, cy: float, half: float) -> np.ndarray:
    return np.array([[cx - half, cy - half], [cx + half, cy - half], [cx + half, cy + half], [cx - half, cy + half]])


def test_one_polygon_vote_is_its_mask():
    poly = rays_to_polygon(np.array([40.3, 30.7]), np.full(36, 12.5))
    assert np.array_equal(vote_mask(poly[None], np.array([0.7]), (64, 80)), polygon_to_mask(poly, (64, 80)))


def test_vote_keeps_the_weighted_majority():
    a, b, c = _square(20, 20, 10), _square(24, 20, 10), _square(40, 20, 10)
    m = vote_mask(np.stack([a, b, c]), np.array([1.0, 1.0, 1.0]), (50, 60))
    # covered by a and b (2 of 3 votes) kept; covered only by c (1 of 3) dropped
    assert m[20, 22] and not m[20, 45]
    heavy_c = vote_mask(np.stack([a, b, c]), np.array([1.0, 1.0, 3.0]), (50, 60))
    assert heavy_c[20, 45] and not heavy_c[20, 12]


def test_vote_edge_cases():
    a = _square(20, 20, 10)
    assert not vote_mask(a[None], np.array([0.0]), (40, 40)).any()  # no weight: empty mask
    off = _square(-50, -50, 5)  # wholly outside the image
    assert not vote_mask(off[None], np.array([1.0]), (40, 40)).any()
    with pytest.raises(ValueError):
        vote_mask(np.stack([a, a]), np.array([1.0]), (40, 40))
    with pytest.raises(ValueError):
        vote_mask(a[None], np.array([1.0]), (40, 40), threshold=0.0)


def test_tracker_vote_and_ray_scale_change_the_mask_only():
    torch.manual_seed(0)
    model = build_model("quick", pretrained=False).eval()
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(3)]
    results = {}
    for name, cfg in {"plain": TrackerConfig(), "vote": TrackerConfig(vote_radius=1),
                      "small": TrackerConfig(ray_scale=0.5)}.items():
        tr = Tracker(model, cfg)
        tr.init(frames[0], (50, 40, 40, 30))
        results[name] = [tr.track(f) for f in frames[1:]]
    for p, v in zip(results["plain"], results["vote"]):
        assert np.allclose(p.box, v.box) and p.score == v.score  # the state does not depend on the vote
    assert results["small"][0].mask.sum() < results["plain"][0].mask.sum()
    with pytest.raises(ValueError):
        TrackerConfig(vote_radius=-1)
    with pytest.raises(ValueError):
        TrackerConfig(ray_scale=0.0)
