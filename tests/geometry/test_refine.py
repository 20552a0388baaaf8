"""Re-centring a polygon for a second pass of the refinement stage (`geometry.refine`, TrackerConfig.refine_passes)."""
from __future__ import annotations

import numpy as np
import pytest

from siampolar_lib.geometry.polar import polygon_to_mask, rays_to_polygon
from siampolar_lib.geometry.refine import polygon_centroid, recast_rays, recentred


def test_the_centroid_of_a_rectangle_and_of_a_degenerate_polygon():
    rect = np.array([[2.0, 1.0], [10.0, 1.0], [10.0, 5.0], [2.0, 5.0]])
    np.testing.assert_allclose(polygon_centroid(rect), [6.0, 3.0])
    np.testing.assert_allclose(polygon_centroid(rect[::-1]), [6.0, 3.0])  # either winding
    assert polygon_centroid(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])) is None  # a line has no area


@pytest.mark.parametrize("n", [8, 36, 72])
def test_recasting_from_the_same_centre_gives_back_the_rays(n):
    rng = np.random.default_rng(n)
    rays = rng.uniform(5.0, 40.0, n)
    origin = np.array([100.0, 80.0])
    np.testing.assert_allclose(recast_rays(rays_to_polygon(origin, rays), origin, n), rays, rtol=1e-9)


def test_recasting_a_circle_from_an_offset_centre_matches_the_chord_lengths():
    # a 360-gon of radius 50 around (0, 0), seen from (10, 0): the ray at angle t meets it at the circle's root
    poly = rays_to_polygon(np.zeros(2), np.full(360, 50.0))
    got = recast_rays(poly, np.array([10.0, 0.0]), 36)
    t = 2 * np.pi * np.arange(36) / 36
    exact = -10.0 * np.cos(t) + np.sqrt(2500.0 - (10.0 * np.sin(t)) ** 2)
    np.testing.assert_allclose(got, exact, atol=0.05)  # the 360-gon lies inside the circle by < 50 (1 - cos 0.5 deg)


def test_recentred_moves_an_off_centre_origin_to_the_centroid_and_keeps_the_outline():
    origin = np.array([60.0, 50.0])
    t = 2 * np.pi * np.arange(36) / 36
    # an ellipse of semi-axes 40, 20 around (70, 50), described from 10 px left of its centre
    d = np.stack([np.cos(t), np.sin(t)], -1)
    u = origin - np.array([70.0, 50.0])
    a = (d[:, 0] / 40) ** 2 + (d[:, 1] / 20) ** 2
    b = 2 * (u[0] * d[:, 0] / 1600 + u[1] * d[:, 1] / 400)
    c = (u[0] / 40) ** 2 + (u[1] / 20) ** 2 - 1
    rays = (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)
    centre, new = recentred(origin, rays)
    np.testing.assert_allclose(centre, [70.0, 50.0], atol=0.2)
    before = polygon_to_mask(rays_to_polygon(origin, rays), (100, 140))
    after = polygon_to_mask(rays_to_polygon(centre, new), (100, 140))
    assert (before & after).sum() / (before | after).sum() > 0.97  # the same object, drawn from another centre


def test_recentred_keeps_the_pair_when_the_centroid_does_not_see_the_whole_outline():
    # a thin C shape: its centroid lies in the gap, where some rays meet no edge... or meet it behind
    origin = np.array([0.0, 0.0])
    rays = np.full(36, 30.0)
    rays[14:23] = 2.0  # a deep notch towards the left
    centre, new = recentred(origin, rays)
    poly = rays_to_polygon(origin, rays)
    inside = polygon_to_mask(poly - poly.min(0) + 1, (80, 80))
    x, y = np.round(centre - poly.min(0) + 1).astype(int)
    assert inside[y, x] and (new > 0).all()  # here the centroid is inside and sees the whole outline
    zero = np.array([0.0, 0.0]), np.zeros(36)
    same = recentred(*zero)
    assert same[0] is zero[0] and same[1] is zero[1]  # no area: nothing to re-centre
