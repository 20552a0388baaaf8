"""The polar representation: rays from masks, polygons back to masks, centres and fit quality."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siampolar_lib.geometry.polar import (
    best_centre,
    mask_box_centre,
    mask_iou,
    mask_to_rays,
    mass_centre,
    polar_fit_iou,
    polygon_to_mask,
    ray_angles,
    rays_to_polygon,
)

FAST = settings(max_examples=30, deadline=None, derandomize=True)  # the same examples on every run: CI cannot flake


def disk(r: float, cx: float = 60.0, cy: float = 60.0, size: int = 121) -> np.ndarray:
    """Pixels whose centres lie within r of (cx, cy): (size, size) bool."""
    yy, xx = np.mgrid[:size, :size]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def star(n: int = 36, r_lo: float = 15.0, r_hi: float = 35.0, seed: int = 0) -> np.ndarray:
    """Radii of a random star-shaped polygon: (n,) float pixels, smooth enough to be resolved by n rays."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(r_lo, r_hi, n // 4 + 1)
    return np.interp(np.arange(n) / 4.0, np.arange(base.size), base, period=base.size - 1)


@FAST
@given(r=st.floats(6.0, 50.0), dx=st.floats(-0.5, 0.5), dy=st.floats(-0.5, 0.5))
def test_disk_rays_equal_radius_and_round_trip(r, dx, dy):
    m = disk(r, 60 + dx, 60 + dy)
    c = np.array([60 + dx, 60 + dy])
    rays = mask_to_rays(m, c, 36)
    assert rays.shape == (36,) and rays.dtype == np.float32
    assert np.all(np.abs(rays - r) < 1.0)
    # > 0.99 for most radii; radii with lattice points right on the circle (e.g. 8.5, 17) reach 0.982.
    assert mask_iou(polygon_to_mask(rays_to_polygon(c, rays), m.shape), m) > 0.98


def test_disk_round_trip_mostly_above_099():
    ious = [polar_fit_iou(disk(r), 36, [60.0, 60.0]) for r in np.arange(6.0, 50.0, 0.5)]
    assert np.mean(np.array(ious) > 0.99) > 0.85 and np.mean(ious) > 0.99


@pytest.mark.parametrize("method", ["cast", "exit", "contour"])
def test_every_method_recovers_a_disk(method):
    m = disk(20.0)
    rays = mask_to_rays(m, mass_centre(m), 36, method=method)
    assert np.all(np.abs(rays - 20.0) < 1.0)
    assert polar_fit_iou(m, 36, "mass", method=method) > 0.97


def test_round_trip_leaves_no_halo():
    # polygon_to_mask fills by pixel centre (no cv2.fillPoly halo), so a radius-20 disk round-trips above 0.99.
    assert polar_fit_iou(disk(20.0), 36) > 0.99


@FAST
@given(k=st.integers(1, 35), seed=st.integers(0, 50))
def test_rotating_the_polygon_by_10k_degrees_rolls_the_rays_by_k(k, seed):
    radii = star(seed=seed)
    c = np.array([60.0, 60.0])
    m = polygon_to_mask(rays_to_polygon(c, radii), (121, 121))
    rot = polygon_to_mask(rays_to_polygon(c, np.roll(radii, k)), (121, 121))
    a = mask_to_rays(m, c, 36)
    b = mask_to_rays(rot, c, 36)
    # Rotating a digital shape is not exact on the pixel grid (a sharp tip may lose its last pixel).
    assert np.abs(np.roll(a, k) - b).max() < 1.5
    assert np.abs(np.roll(a, k) - b).mean() < 0.3


def test_rotating_by_90_degrees_is_exact():
    radii = star(seed=3)
    c = np.array([60.0, 60.0])
    m = polygon_to_mask(rays_to_polygon(c, radii), (121, 121))
    rot = np.rot90(m, k=-1)  # clockwise on screen = +90 degrees with y down, about pixel (60, 60)
    np.testing.assert_allclose(mask_to_rays(rot, c, 36), np.roll(mask_to_rays(m, c, 36), 9), atol=1e-4)


@FAST
@given(s=st.floats(1.5, 3.0), seed=st.integers(0, 50))
def test_scaling_the_shape_scales_the_rays(s, seed):
    radii = star(r_lo=8.0, r_hi=18.0, seed=seed)
    c = np.array([60.0, 60.0])
    small = mask_to_rays(polygon_to_mask(rays_to_polygon(c, radii), (121, 121)), c, 36)
    big = mask_to_rays(polygon_to_mask(rays_to_polygon(c, radii * s), (121, 121)), c, 36)
    assert np.abs(big - s * small).max() < 1.5 * (1.0 + s)  # each end is within 1.5 px of its outline
    assert np.abs(big - s * small).mean() < 0.5 * (1.0 + s)


@FAST
@given(seed=st.integers(0, 1000))
def test_star_polygon_round_trips(seed):
    radii = star(seed=seed)
    c = np.array([60.0, 60.0])
    m = polygon_to_mask(rays_to_polygon(c, radii), (121, 121))
    rays = mask_to_rays(m, c, 36)
    # Over all 1001 seeds of the strategy the worst ray is 1.82 px off (seed 147: a tip thinner than a pixel loses a
    # little) and the worst mean 0.289 px; the old bound of 1.5 px failed on 4 of them (147, 840, 493, 613).
    assert np.abs(rays - radii).max() < 2.0
    assert np.abs(rays - radii).mean() < 0.3
    assert mask_iou(polygon_to_mask(rays_to_polygon(c, rays), m.shape), m) > 0.97


@pytest.mark.parametrize("method", ["cast", "exit", "contour"])
def test_edge_cases_are_defined(method):
    empty = np.zeros((30, 40), bool)
    assert np.array_equal(mask_to_rays(empty, [5.0, 5.0], 36, method=method), np.zeros(36, np.float32))
    one = empty.copy()
    one[10, 20] = True
    r1 = mask_to_rays(one, [20.0, 10.0], 36, method=method)
    assert np.all(np.isfinite(r1)) and np.all((r1 >= 0.0) & (r1 <= 0.75))
    m = disk(8.0, 20.0, 15.0, size=40)[:30]
    outside = mask_to_rays(m, [38.0, 2.0], 36, method=method)
    assert np.all(np.isfinite(outside)) and np.all(outside >= 0.0)
    if method != "contour":  # rays pointing away from the mask meet nothing: length 0
        assert outside[0] == 0.0 and outside[27] == 0.0 and outside[13] > 20.0
    assert mask_to_rays(m, np.zeros((0, 2)), 36, method=method).shape == (0, 36)


def test_bad_inputs_raise_clearly():
    with pytest.raises(ValueError, match="method"):
        mask_to_rays(disk(5.0), [60.0, 60.0], method="magic")
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        mask_to_rays(np.zeros((3, 4, 5)), [1.0, 1.0])
    with pytest.raises(ValueError, match="empty"):
        mass_centre(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="centre"):
        polar_fit_iou(disk(5.0), 36, centre="middle")
    assert polar_fit_iou(np.zeros((4, 4)), 36) == 1.0


@pytest.mark.parametrize("method", ["cast", "contour"])
def test_batch_equals_loop(method):
    m = disk(15.0) | disk(6.0, 90.0, 30.0)
    rng = np.random.default_rng(0)
    cs = rng.uniform(30, 90, (40, 2))
    batch = mask_to_rays(m, cs, 36, method=method)
    loop = np.stack([mask_to_rays(m, c, 36, method=method) for c in cs])
    np.testing.assert_allclose(batch, loop, atol=1e-5)


def test_polygon_to_mask_keeps_pixel_centres_inside():
    sq = np.array([[2.6, 2.4], [7.4, 2.6], [7.6, 7.4], [2.4, 7.6]])
    out = polygon_to_mask(sq, (12, 12))
    want = np.zeros((12, 12), bool)
    want[3:8, 3:8] = True
    assert np.array_equal(out, want)
    assert not polygon_to_mask(np.array([[0.0, 0.0], [1.0, 1.0]]), (5, 5)).any()


def test_angle_convention():
    th = ray_angles(4)
    np.testing.assert_allclose(th, [0, np.pi / 2, np.pi, 3 * np.pi / 2])
    poly = rays_to_polygon([10.0, 20.0], [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(poly, [[11, 20], [10, 22], [7, 20], [10, 16]], atol=1e-12)


def test_centres():
    m = np.zeros((10, 10), bool)
    m[2:5, 1:8] = True
    m[4, 1] = False
    np.testing.assert_allclose(mask_box_centre(m), [4.0, 3.0])
    np.testing.assert_allclose(mass_centre(m), [np.mean(np.nonzero(m)[1]), np.mean(np.nonzero(m)[0])])


def test_best_centre_is_no_worse_than_mass_on_an_l_shape():
    m = np.zeros((80, 80), bool)
    m[10:70, 10:25] = True
    m[55:70, 10:70] = True
    c = best_centre(m, 36)
    assert m[int(round(c[1])), int(round(c[0]))]
    assert polar_fit_iou(m, 36, c) >= polar_fit_iou(m, 36, "mass") - 1e-9


def test_real_davis_mask_round_trip(real_davis):
    path = real_davis / "Annotations" / "480p" / "blackswan" / "00000.png"
    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 0
    cast = polar_fit_iou(m, 36, "mass")
    assert 0.6 < cast <= 1.0
    assert cast >= polar_fit_iou(m, 36, "mass", method="contour")
    assert polar_fit_iou(m, 72, "mass") > polar_fit_iou(m, 8, "mass")
