"""Baselines: static box, oracle box, polar upper bound and OpenCV CSRT, on synthetic frames with known masks."""
from __future__ import annotations

import numpy as np
import pytest

from siampolar_lib.geometry.boxes import mask_to_box
from siampolar_lib.geometry.polar import mask_iou
from siampolar_lib.tracking.baselines import (
    CSRT,
    GridBound,
    OracleBox,
    PolarBound,
    StaticBox,
    box_mask,
    ellipse_mask,
    make_baseline,
)


def textured_square(x: int, y: int, side: int = 60, h: int = 240, w: int = 320) -> tuple[np.ndarray, np.ndarray]:
    """A frame (H, W, 3) uint8 RGB with a textured square at (x, y) on a smooth background, and its mask."""
    rng = np.random.default_rng(0)  # the same texture every frame, so the object looks the same
    f = np.zeros((h, w, 3), np.uint8)
    f[..., 0] = np.linspace(40, 90, w, dtype=np.uint8)[None]
    f[..., 1] = 60
    tex = rng.integers(0, 255, (side // 6, side // 6, 3), dtype=np.uint8).repeat(6, 0).repeat(6, 1)
    f[y:y + side, x:x + side] = tex
    m = np.zeros((h, w), bool)
    m[y:y + side, x:x + side] = True
    return f, m


def disk(cx, cy, r, h=240, w=320) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def test_box_mask_covers_exactly_the_box_pixels():
    m = box_mask((10, 20, 30, 5), (50, 60))
    assert m.sum() == 150 and np.array_equal(mask_to_box(m), [10, 20, 30, 5])
    assert box_mask((-10, -10, 15, 15), (50, 60)).sum() == 25  # clipped at the image border


def test_static_never_moves():
    f0, m0 = textured_square(50, 50)
    b = StaticBox()
    b.init(f0, mask_to_box(m0))
    for k in range(3):
        f, _ = textured_square(50 + 20 * k, 60)
        r = b.track(f)
        np.testing.assert_array_equal(r.mask, m0)
        np.testing.assert_allclose(r.box, mask_to_box(m0))


def test_oracle_box_follows_the_truth_and_handles_empty_masks():
    gts = [disk(100, 100, 20), disk(120, 110, 25), np.zeros((240, 320), bool)]
    b = OracleBox(gts)
    b.init(np.zeros((240, 320, 3), np.uint8), mask_to_box(gts[0]))
    r1 = b.track(np.zeros((240, 320, 3), np.uint8))
    np.testing.assert_allclose(r1.box, mask_to_box(gts[1]))
    assert np.array_equal(mask_to_box(r1.mask), mask_to_box(gts[1])) and not r1.lost
    r2 = b.track(np.zeros((240, 320, 3), np.uint8))
    assert not r2.mask.any() and r2.lost
    with pytest.raises(IndexError, match="no ground-truth mask"):
        b.track(np.zeros((240, 320, 3), np.uint8))


def test_polar_bound_is_near_perfect_on_a_disk_and_worse_on_a_ring():
    ring = disk(160, 120, 60) & ~disk(160, 120, 40)  # not star-shaped from its mass centre
    gts = [disk(100, 100, 20), disk(150, 120, 50), ring]
    b = PolarBound(gts)
    b.init(np.zeros((240, 320, 3), np.uint8), mask_to_box(gts[0]))
    r1 = b.track(np.zeros((240, 320, 3), np.uint8))
    assert mask_iou(r1.mask, gts[1]) > 0.97 and r1.polygon.shape == (36, 2)
    r2 = b.track(np.zeros((240, 320, 3), np.uint8))
    assert mask_iou(r2.mask, ring) < 0.7  # the hole is filled: the representation's limit


def test_grid_bound_reads_the_best_grid_positive():
    blank = np.zeros((240, 320, 3), np.uint8)
    # an L: its mass centre lies off the grid and the best centred grid location sees a different polygon
    ell = np.zeros((240, 320), bool)
    ell[60:180, 100:130] = True
    ell[150:180, 100:220] = True
    gts = [disk(100, 100, 20), disk(150, 120, 50), ell, np.zeros((240, 320), bool)]
    grid, polar = GridBound(gts), PolarBound(gts)
    grid.init(blank, mask_to_box(gts[0]))
    polar.init(blank, mask_to_box(gts[0]))
    r_disk, p_disk = grid.track(blank), polar.track(blank)
    assert mask_iou(r_disk.mask, gts[1]) > 0.95 and not r_disk.lost and 0 < r_disk.score <= 1
    assert mask_iou(p_disk.mask, gts[1]) > 0.95  # a disk is star-shaped about its centre: 36 rays keep it
    r_ell, p_ell = grid.track(blank), polar.track(blank)
    assert not np.allclose(r_ell.polygon, p_ell.polygon)  # read at a grid location, not at the mass centre
    assert 0.3 < mask_iou(r_ell.mask, ell) < 1.0
    assert grid.track(blank).lost  # an empty truth: nothing to read
    assert isinstance(make_baseline("grid_bound", gt_masks=gts), GridBound)


def test_csrt_follows_a_moving_textured_square():
    f0, m0 = textured_square(40, 60)
    b = CSRT()
    b.init(f0, mask_to_box(m0))
    for k in range(1, 8):
        f, m = textured_square(40 + 8 * k, 60 + 3 * k)
        r = b.track(f)
        assert not r.lost
        assert mask_iou(r.mask, ellipse_mask(mask_to_box(m), m.shape)) > 0.6, k


def test_errors():
    with pytest.raises(ValueError, match="unknown baseline"):
        make_baseline("nope")
    with pytest.raises(ValueError, match="needs the ground-truth"):
        make_baseline("oracle_box")
    with pytest.raises(RuntimeError, match="before init"):
        StaticBox().track(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="outside"):
        CSRT().init(np.zeros((10, 10, 3), np.uint8), (20, 20, 5, 5))
    b = StaticBox()
    b.init(np.zeros((10, 10, 3), np.uint8), (1, 1, 5, 5))
    with pytest.raises(ValueError, match="frame size changed"):
        b.track(np.zeros((12, 10, 3), np.uint8))


def test_csrt_without_the_contrib_build_says_which_package(monkeypatch):
    import cv2

    from siampolar_lib.errors import USER_ERRORS

    monkeypatch.delattr(cv2, "TrackerCSRT")
    with pytest.raises(USER_ERRORS, match="opencv-contrib-python-headless"):
        make_baseline("csrt")


def test_a_registered_baseline_is_built_by_name(monkeypatch):
    """Adding a baseline is one registration; unknown names and a missing truth are refused by name."""
    from siampolar_lib.tracking import baselines as BL

    monkeypatch.setitem(BL.BASELINES, "static_twice", (lambda gt, cfg: StaticBox(), False))
    assert isinstance(make_baseline("static_twice"), StaticBox)
    with pytest.raises(ValueError, match="unknown baseline 'nope'.*static_twice"):
        make_baseline("nope")
    with pytest.raises(ValueError, match="needs the ground-truth"):
        make_baseline("oracle_box")
