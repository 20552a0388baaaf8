"""Tracker maths with fake models that honour the network's output contract (no training needed)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from siampolar_lib.geometry.crops import SEARCH_SIZE, context_side
from siampolar_lib.geometry.polar import mask_iou, mask_to_rays, polygon_to_mask, ray_angles, rays_to_polygon
from siampolar_lib.models.config import LITE0
from siampolar_lib.models.grid import location_grid
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.scoring import cosine_window
from siampolar_lib.tracking.tracker import Tracker

R = 36


def level(h: int, stride: int, peaks: dict, rays, low: float = -10.0) -> dict:
    """One level: cls/ctr logits `low` except {(i, j): logit} peaks; rays (R,) or (R, h, h) everywhere."""
    cls = torch.full((1, 1, h, h), low)
    for (i, j), v in peaks.items():
        cls[0, 0, i, j] = v
    ctr = cls.clone()
    r = torch.as_tensor(np.asarray(rays, np.float32))
    r = r[:, None, None].expand(R, h, h) if r.ndim == 1 else r
    return {"cls": cls, "ctr": ctr, "rays": r[None].clone(), "points": location_grid(h, h, stride, SEARCH_SIZE),
            "stride": stride}


class FixedModel(nn.Module):
    """Returns the same levels for every search crop; records the crops it saw."""

    config = LITE0  # crop geometry the tracker reads: template 127, search 255, context 0.5

    def __init__(self, levels: list[dict]):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        self.levels = levels
        self.seen: list[torch.Tensor] = []

    def template(self, z):
        assert z.shape == (1, 3, 127, 127) and z.dtype == torch.float32
        self.z = z

    def track(self, x):
        assert x.shape == (1, 3, 255, 255) and x.dtype == torch.float32
        self.seen.append(x)
        keys = ("cls", "ctr", "rays", "points")
        out = {k: [lv[k] for lv in self.levels] for k in keys}
        out["strides"] = [lv["stride"] for lv in self.levels]
        return out


class BlobModel(nn.Module):
    """A perfect 'network' for a bright disk: peak at the grid location nearest the disk, rays to its edge."""

    config = LITE0

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        self.points = location_grid(25, 25, 8, SEARCH_SIZE)

    def template(self, z):
        self.z = z

    def track(self, x):
        bright = x[0].mean(0) > 200  # (255, 255)
        ys, xs = torch.nonzero(bright, as_tuple=True)
        cls = torch.full((1, 1, 25, 25), -10.0)
        rays = torch.ones(1, R, 25, 25)
        if xs.numel():
            c = torch.stack([xs.float().mean(), ys.float().mean()])
            d = ((self.points - c) ** 2).sum(-1)
            i, j = np.unravel_index(int(torch.argmin(d)), (25, 25))
            cls[0, 0, i, j] = 10.0
            p = self.points[i, j].numpy()
            m = bright.numpy()
            rays[0, :, i, j] = torch.from_numpy(mask_to_rays(m, p))
        return {"cls": [cls], "ctr": [cls.clone()], "rays": [rays], "points": [self.points], "strides": [8]}


def frame(h=480, w=854, value=90) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


def disk_frame(cx, cy, r, h=480, w=854):
    yy, xx = np.mgrid[:h, :w]
    m = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    f = frame(h, w)
    f[m] = 255
    return f, m


SIG2 = float(torch.sigmoid(torch.tensor(10.0)) ** 2)


def test_peak_and_rays_map_to_the_expected_frame_polygon():
    rays = 10.0 + 5.0 * np.cos(ray_angles(R)) ** 2  # a known, non-circular shape
    i0, j0 = 9, 15
    model = FixedModel([level(25, 8, {(i0, j0): 10.0}, rays)])
    cfg = TrackerConfig(window_influence=0.0, penalty_k=0.0, state_grid=0.0)  # the exact state update
    trk = Tracker(model, cfg)
    box = (400.0, 200.0, 50.0, 40.0)
    trk.init(frame(), box)
    res = trk.track(frame())
    s_x = context_side(50, 40) * 255 / 127
    scale = 255 / s_x
    point = np.array([31 + 8 * j0, 31 + 8 * i0], float)
    expect = (rays_to_polygon(point, rays) - 127.0) / scale + np.array([425.0, 220.0])
    np.testing.assert_allclose(res.polygon, expect, atol=1e-6)
    assert res.polygon.shape == (R, 2)
    assert res.mask.shape == (480, 854) and res.mask.dtype == bool
    np.testing.assert_array_equal(res.mask, polygon_to_mask(expect, (480, 854)))
    assert res.score == pytest.approx(SIG2) and not res.lost
    # State: centre = polygon-box centre, size smoothed at rate penalty (1 here) x score x size_lr.
    bx0, by0 = expect.min(0)
    bx1, by1 = expect.max(0)
    lr = SIG2 * cfg.size_lr
    w = (1 - lr) * 50 + lr * (bx1 - bx0)
    h = (1 - lr) * 40 + lr * (by1 - by0)
    np.testing.assert_allclose(res.box, [(bx0 + bx1) / 2 - w / 2, (by0 + by1) / 2 - h / 2, w, h], atol=1e-6)


def test_best_level_wins_and_its_points_are_used():
    r8, r16 = np.full(R, 12.0), np.full(R, 20.0)
    model = FixedModel([level(25, 8, {(12, 12): 0.0}, r8), level(13, 16, {(3, 9): 10.0}, r16)])
    trk = Tracker(model, TrackerConfig(window_influence=0.0, penalty_k=0.0))
    trk.init(frame(), (300, 150, 60, 60))
    res = trk.track(frame())
    tf_scale = 255 / (context_side(60, 60) * 255 / 127)
    point = np.array([127 + 16 * (9 - 6), 127 + 16 * (3 - 6)], float)
    expect = (rays_to_polygon(point, r16) - 127) / tf_scale + np.array([330.0, 180.0])
    np.testing.assert_allclose(res.polygon, expect, atol=1e-6)


def test_cosine_window_is_hanning_on_the_grid():
    w = cosine_window(location_grid(25, 25, 8, 255).numpy().astype(float))
    np.testing.assert_allclose(w, np.outer(np.hanning(25), np.hanning(25)), atol=1e-9)


def test_window_prefers_the_centre_between_equal_peaks():
    rays = np.full(R, 10.0)
    model = FixedModel([level(25, 8, {(12, 13): 10.0, (2, 22): 10.0}, rays)])
    trk = Tracker(model, TrackerConfig(window_influence=0.4, penalty_k=0.0))
    trk.init(frame(), (400, 200, 20, 20))
    res = trk.track(frame())
    assert res.polygon.mean(0)[0] > 410 and abs(res.polygon.mean(0)[1] - 210) < 1  # the (12, 13) peak


def test_scale_penalty_prefers_the_previous_size():
    h = 25
    scale = 255 / (context_side(40, 40) * 255 / 127)  # crop pixels per frame pixel
    rays = np.full((R, h, h), 60.0, np.float32)  # a polygon far bigger than the target everywhere...
    rays[:, 5, 5] = 20.0 * scale  # ...except at (5, 5), whose polygon matches the 40 x 40 target
    peaks = {(5, 5): 9.0, (12, 12): 10.0}  # the big one scores a little higher

    def size_after(k: float) -> np.ndarray:
        trk = Tracker(FixedModel([level(h, 8, peaks, rays)]), TrackerConfig(window_influence=0.0, penalty_k=k))
        trk.init(frame(), (400, 200, 40, 40))
        return np.ptp(trk.track(frame()).polygon, axis=0)

    assert size_after(0.0)[0] > 60  # no penalty: the higher raw score wins
    np.testing.assert_allclose(size_after(0.5), [40, 40], atol=0.5)  # penalty: the same size wins


def test_full_frame_mode_maps_the_resized_frame_back():
    rays = np.full(R, 8.0)
    model = FixedModel([level(25, 8, {(4, 20): 10.0}, rays)])
    trk = Tracker(model, TrackerConfig(mode="full_frame"))
    trk.init(frame(), (100, 100, 50, 50))
    res = trk.track(frame())
    point = np.array([31 + 8 * 20, 31 + 8 * 4], float)
    expect = (rays_to_polygon(point, rays) + 0.5) * np.array([854 / 255, 480 / 255]) - 0.5
    np.testing.assert_allclose(res.polygon, expect, atol=1e-6)
    # No temporal state: the same output every frame, whatever happened before.
    np.testing.assert_allclose(trk.track(frame()).polygon, expect, atol=1e-6)


def test_follows_a_moving_disk_end_to_end():
    trk = Tracker(BlobModel(), TrackerConfig())
    f0, m0 = disk_frame(200, 240, 30)
    x, y = np.nonzero(m0)[1], np.nonzero(m0)[0]
    trk.init(f0, (x.min(), y.min(), x.max() - x.min() + 1, y.max() - y.min() + 1))
    for k in range(1, 12):
        f, m = disk_frame(200 + 25 * k, 240 + 6 * k, 30 + k)
        res = trk.track(f)
        assert not res.lost
        assert mask_iou(res.mask, m) > 0.85, k
    assert trk.frames_done == 12 and trk.fps > 0


class NudgedBlobModel(BlobModel):
    """BlobModel whose rays are 1e-6 longer: the size of difference two engines or thread counts give."""

    def track(self, x):
        out = super().track(x)
        return {**out, "rays": [r * (1 + 1e-6) for r in out["rays"]]}


def test_the_state_lies_on_its_grid_and_absorbs_tiny_output_differences():
    """state_grid: centre and size are multiples of it, and a 1e-6 nudge of the rays leaves the state unchanged."""
    f0, m0 = disk_frame(200, 240, 30)
    ys, xs = np.nonzero(m0)
    box = (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    runs = {}
    for name, model, grid in (("grid", BlobModel(), 0.25), ("nudged", NudgedBlobModel(), 0.25),
                              ("off", NudgedBlobModel(), 0.0)):
        trk = Tracker(model, TrackerConfig(state_grid=grid))
        trk.init(f0, box)
        states = []
        for k in range(1, 8):
            trk.track(disk_frame(200 + 25 * k, 240 + 6 * k, 30 + k)[0])
            states.append(np.concatenate([trk.centre, trk.size]))
        runs[name] = np.array(states)
    assert np.allclose(runs["grid"] / 0.25, np.round(runs["grid"] / 0.25))
    assert np.array_equal(runs["grid"], runs["nudged"])
    assert not np.array_equal(runs["off"], runs["nudged"])  # without the grid the nudge reaches the state


def test_low_score_keeps_state_widens_search_then_empties():
    rays = np.full(R, 10.0)
    lv = level(25, 8, {(12, 12): -1.0}, rays, low=-12.0)  # sigmoid(-1)^2 = 0.072 < empty_score 0.1
    model = FixedModel([lv])
    cfg = TrackerConfig(empty_score=0.1, lost_score=0.2, empty_after=2, lost_growth=1.5, max_growth=3.0)
    trk = Tracker(model, cfg)
    box = np.array([400.0, 200.0, 40.0, 30.0])
    trk.init(frame(), box)
    r1 = trk.track(frame())
    assert r1.lost and r1.score < 0.1
    np.testing.assert_allclose(r1.box, box)  # state kept
    assert r1.mask.any()  # one very low frame is not yet "stays low"
    r2 = trk.track(frame())
    assert r2.lost and not r2.mask.any()  # stays below the threshold: empty mask
    assert r2.polygon.shape == (R, 2)
    trk.track(frame())
    trk.track(frame())
    assert trk.growth == pytest.approx(3.0)  # 1.5, 2.25, 3.0 (capped)
    # Recovery: a confident peak resets the search side and updates the state again.
    model.levels = [level(25, 8, {(12, 12): 10.0}, rays)]
    r5 = trk.track(frame())
    assert not r5.lost and r5.mask.any() and trk.growth == 1.0
    assert not np.allclose(r5.box, box)


def test_lost_between_thresholds_keeps_mask():
    lv = level(25, 8, {(12, 12): 0.0}, np.full(R, 10.0))  # score 0.25 x ... = sigmoid(0)^2 = 0.25
    cfg = TrackerConfig(lost_score=0.3, empty_score=0.1)
    trk = Tracker(FixedModel([lv]), cfg)
    trk.init(frame(), (400, 200, 40, 30))
    res = trk.track(frame())
    assert res.lost and res.mask.any() and res.score == pytest.approx(0.25)


def test_wider_search_crop_when_lost():
    # A frame with a bright square: on the widened crop it covers fewer crop pixels.
    f = frame()
    f[190:250, 390:450] = 255
    model = FixedModel([level(25, 8, {}, np.full(R, 10.0))])
    trk = Tracker(model, TrackerConfig())
    trk.init(f, (400, 200, 40, 40))
    trk.track(f)
    trk.track(f)
    a1 = (model.seen[0][0].mean(0) > 200).sum().item()
    a2 = (model.seen[1][0].mean(0) > 200).sum().item()
    assert a2 == pytest.approx(a1 / 1.5 ** 2, rel=0.1)


@pytest.mark.parametrize("box, match", [((900, 10, 20, 20), "outside"), ((10, -50, 20, 20), "outside"),
                                        ((10, 10, 0, 20), "zero"), ((10, 10, 20, -1), "zero"),
                                        ((10, 10, np.nan, 5), "finite")])
def test_bad_init_box_raises_naming_it(box, match):
    trk = Tracker(FixedModel([level(25, 8, {}, np.ones(R))]))
    with pytest.raises(ValueError, match=match) as e:
        trk.init(frame(), box)
    assert "init box" in str(e.value)


def test_track_before_init_raises():
    trk = Tracker(FixedModel([level(25, 8, {}, np.ones(R))]))
    with pytest.raises(RuntimeError, match="before Tracker.init"):
        trk.track(frame())


def test_frame_size_change_raises_and_reinit_recovers():
    trk = Tracker(FixedModel([level(25, 8, {(12, 12): 10.0}, np.full(R, 5.0))]))
    trk.init(frame(), (10, 10, 20, 20))
    with pytest.raises(ValueError, match="frame size changed"):
        trk.track(frame(240, 427))
    trk.init(frame(240, 427), (10, 10, 20, 20))
    assert trk.track(frame(240, 427)).mask.shape == (240, 427)


def test_bad_frame_raises():
    trk = Tracker(FixedModel([level(25, 8, {}, np.ones(R))]))
    with pytest.raises(ValueError, match="uint8 RGB"):
        trk.init(np.zeros((48, 64), np.uint8), (1, 1, 5, 5))
    with pytest.raises(ValueError, match="uint8 RGB"):
        trk.init(np.zeros((48, 64, 3), np.float32), (1, 1, 5, 5))


def test_one_frame_video_is_init_only():
    trk = Tracker(FixedModel([level(25, 8, {}, np.ones(R))]))
    trk.init(frame(), (10, 10, 20, 20))
    assert trk.frames_done == 1 and trk.elapsed_s > 0
    np.testing.assert_allclose(trk.state_box(), [10, 10, 20, 20])


def test_bad_config_raises():
    with pytest.raises(ValueError, match="mode"):
        TrackerConfig(mode="nope")
    with pytest.raises(ValueError, match="empty_score"):
        TrackerConfig(empty_score=0.5, lost_score=0.2)
    with pytest.raises(ValueError, match="state_grid"):
        TrackerConfig(state_grid=-1.0)
    for passes in (0, 5):
        with pytest.raises(ValueError, match="refine_passes"):
            TrackerConfig(refine_passes=passes)


def test_a_second_refinement_pass_starts_from_the_recentred_first_pass():
    """refine_passes=2: the stage runs again on the first pass's polygon, re-drawn from its area centroid."""
    import dataclasses

    import cv2

    from siampolar_lib.geometry.refine import recentred
    from siampolar_lib.models.config import get_config
    from siampolar_lib.models.siampolar import SiamPolar

    torch.manual_seed(0)
    staged = SiamPolar(dataclasses.replace(get_config("quick"), refine_iters=2), pretrained=False).eval()
    nn.init.normal_(staged.refiner.ray_convs[-1].weight, std=0.05)  # a new stage is the identity: make it act
    rng = np.random.default_rng(1)
    frames = []
    for i in range(4):
        f = rng.integers(40, 120, (120, 160, 3), dtype=np.uint8)
        cv2.ellipse(f, (60 + 5 * i, 60), (28, 14), 0, 0, 360, (240, 220, 200), -1)
        frames.append(f)
    results = {}
    for passes in (1, 2):
        trk, calls = Tracker(staged, TrackerConfig(refine_passes=passes)), []
        stage = trk._refine
        trk._refine = lambda frame, centre, rays, stage=stage, calls=calls: calls.append(
            (centre.copy(), stage(frame, centre, rays))) or calls[-1][1]
        trk.init(frames[0], (32.0, 46.0, 57.0, 29.0))
        results[passes] = [trk.track(f) for f in frames[1:]]
        assert len(calls) == passes * 3  # every later frame, once per pass
        if passes == 2:
            for k, res in enumerate(results[2]):
                (c1, r1), (c2, r2) = calls[2 * k], calls[2 * k + 1]
                np.testing.assert_allclose(c2, recentred(c1, r1)[0])  # the second pass's centre: the centroid
                np.testing.assert_allclose(res.polygon, rays_to_polygon(c2, r2))  # its polygon is the result
    assert all(np.array_equal(a.box, b.box) for a, b in zip(results[1], results[2]))  # the state does not change
