"""The object-scale refinement stage: its crop geometry, its samples, the module, the tracker's use, both engines."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch

from siampolar_lib.data.refine_samples import RefineDataset, RefineSampleConfig, jittered_centre
from siampolar_lib.data.sources import videos_from_davis
from siampolar_lib.geometry.polar import mask_to_rays, polygon_to_mask
from siampolar_lib.geometry.refine import MIN_SIDE, REFINE_MARGIN, flip_rays, refine_side, smooth_rays
from siampolar_lib.models.config import get_config
from siampolar_lib.models.siampolar import SiamPolar
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.tracker import Tracker
from siampolar_lib.training.checkpoint import load_model, save_checkpoint, with_stage


def refine_net(seed: int = 0, identity: bool = False) -> SiamPolar:
    """The quick network with a two-iteration refinement stage; unless identity, its last conv is made non-zero."""
    torch.manual_seed(seed)
    model = SiamPolar(dataclasses.replace(get_config("quick"), refine_iters=2), pretrained=False).eval()
    if not identity:
        torch.nn.init.normal_(model.refiner.ray_convs[-1].weight, std=0.05)
    return model


def ellipse(shape=(120, 160), centre=(70, 60), axes=(40, 22), angle=20.0) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.ellipse(m, centre, axes, angle, 0, 360, 1, -1)
    return m.astype(bool)


# ------------------------------------------------------------------------------- geometry

def test_refine_side_is_three_longest_rays_with_a_floor():
    assert refine_side(np.array([2.0, 10.0, 4.0])) == pytest.approx(2 * REFINE_MARGIN * 10.0)
    assert refine_side(np.zeros(36)) == MIN_SIDE
    with pytest.raises(ValueError, match=r"\(R,\)"):
        refine_side(np.zeros((2, 36)))


def test_flipped_rays_are_the_rays_of_the_mirrored_mask():
    m = ellipse()
    c = np.array([70.0, 60.0])
    W = m.shape[1]
    mirrored = mask_to_rays(m[:, ::-1], np.array([W - 1 - c[0], c[1]]))
    assert np.abs(flip_rays(mask_to_rays(m, c)) - mirrored).max() < 1e-3
    r = np.arange(36.0)
    assert np.array_equal(flip_rays(flip_rays(r)), r)


def test_smoothing_keeps_the_mean_and_rounds_the_outline():
    r = np.where(np.arange(36) % 2 == 0, 10.0, 20.0)
    s = smooth_rays(r, 2.0)
    assert s.mean() == pytest.approx(r.mean()) and np.ptp(s) < 0.1 * np.ptp(r)
    assert np.array_equal(smooth_rays(r, 0.0), r)


# ------------------------------------------------------------------------------- samples

def test_samples_repeat_and_without_noise_the_first_rays_are_the_truth(tiny_davis):
    videos = videos_from_davis(tiny_davis)
    exact = RefineSampleConfig(centre_jitter=0.0, blur_min=0.0, blur_max=0.0, scale_sd=0.0, ray_sd=0.0, flip_p=0.0)
    ds = RefineDataset(videos, exact, length=4, seed=3, size=64)
    a, b = ds[2], ds[2]
    assert torch.equal(a["crop"], b["crop"]) and torch.equal(a["rays"], b["rays"])
    assert a["crop"].shape == (3, 64, 64) and a["rays"].shape == (36,)
    assert torch.allclose(a["first"], a["rays"], atol=1e-4), "no noise: the first rays are the true rays"
    noisy = RefineDataset(videos, length=4, seed=3, size=64)[2]
    assert not torch.allclose(noisy["first"], noisy["rays"])


def test_a_jittered_centre_stays_inside_a_thin_mask():
    m = np.zeros((100, 100), bool)
    m[10:90, 48:51] = True  # a 3 px wide bar: most jittered centres miss it
    rng = np.random.default_rng(0)
    for _ in range(50):
        x, y = np.round(jittered_centre(m, (48, 10, 3, 80), 0.3, rng)).astype(int)
        assert m[y, x]


def test_sample_settings_out_of_range_name_the_field():
    with pytest.raises(ValueError, match="refine.blur_min"):
        RefineSampleConfig(blur_min=3.0, blur_max=1.0)


# ------------------------------------------------------------------------------- module

def test_an_untrained_stage_returns_its_input_and_only_the_stage_needs_a_config():
    model = refine_net(identity=True)
    rays = torch.rand(2, 36) * 30 + 2
    outs = model.refine_all(torch.rand(2, 3, 128, 128) * 255, rays)
    assert len(outs) == 2 and all(torch.equal(o, rays) for o in outs)
    with pytest.raises(RuntimeError, match="no refinement stage"):
        SiamPolar(get_config("quick"), pretrained=False).refine(torch.zeros(1, 3, 128, 128), rays[:1])
    with pytest.raises(ValueError, match="refinement crop"):
        model.refine(torch.zeros(1, 3, 64, 64), rays[:1])


def test_a_refine_checkpoint_loads_strictly(tmp_path):
    model = refine_net()
    loaded = load_model(save_checkpoint(tmp_path / "r.pt", model))
    r, rays = torch.rand(1, 3, 128, 128) * 255, torch.full((1, 36), 20.0)
    with torch.no_grad():
        assert loaded.config.refine_iters == 2 and torch.equal(loaded.refine(r, rays), model.refine(r, rays))


# ------------------------------------------------------------------------------- tracker and engines

def disk_video(n: int = 4) -> tuple[list[np.ndarray], tuple[float, float, float, float]]:
    rng = np.random.default_rng(1)
    bg = rng.integers(40, 120, (120, 160, 3), dtype=np.uint8)
    frames = []
    for i in range(n):
        f = bg.copy()
        cv2.circle(f, (60 + 4 * i, 60), 20, (240, 220, 200), -1)
        frames.append(f)
    return frames, (40.0, 40.0, 41.0, 41.0)


def test_a_stage_moves_onto_another_first_stage_only_with_the_same_early_blocks():
    """with_stage: the first network's outputs, the stage's refinement; other early blocks are refused."""
    staged, first = refine_net(seed=0), SiamPolar(get_config("quick"), pretrained=False).eval()
    first.load_state_dict({k: v for k, v in staged.state_dict().items() if not k.startswith("refiner.")})
    with torch.no_grad():  # a first stage trained on: its head moves, its early blocks do not
        next(first.head.parameters()).mul_(1.5)
    both = with_stage(first, staged)
    x, rays = torch.rand(1, 3, 128, 128) * 255, torch.full((1, 36), 20.0)
    with torch.no_grad():
        assert torch.equal(both.refine(x, rays), staged.refine(x, rays))
        assert all(torch.equal(a, b) for a, b in zip(both.head.parameters(), first.head.parameters()))
        next(first.backbone.parameters()).add_(0.01)  # now its early features differ
    with pytest.raises(ValueError, match="early backbone blocks differ"):
        with_stage(first, staged)
    with pytest.raises(ValueError, match="no refinement stage"):
        with_stage(staged, first)


def test_the_tracker_maps_rays_to_the_refinement_crop_and_back():
    """An identity stage gives the first polygon back (the crop's scale and centre round-trip); a trained-like
    one changes it; refine=False leaves it alone."""
    frames, box = disk_video()
    for model, cfg, same in ((refine_net(identity=True), TrackerConfig(), True),
                             (refine_net(), TrackerConfig(), False), (refine_net(), TrackerConfig(refine=False), True)):
        t = Tracker(model, cfg)
        t.init(frames[0], box)
        res = t.track(frames[1])
        gap = np.abs(res.polygon - t.last_first_polygon).max()
        assert (gap < 1e-3) if same else (gap > 0.1), gap
        assert res.mask.shape == frames[0].shape[:2]


def test_both_engines_refine_alike(quick_net, quick_export, monkeypatch):
    """The stage sits on quick_net's first stage, so the export copies that stage's template and search graphs from
    quick_export (and checks them against this network as it checks traced ones); the refinement graph is traced."""
    from cli_helpers import export_by_copy

    from siampolar_lib.tracking.engine import make_engine
    from siampolar_lib.tracking.onnx_export import REFINE_NAME, SEARCH_NAME, TEMPLATE_NAME

    model = refine_net(seed=2)
    kept = model.load_state_dict(quick_net.state_dict(), strict=False)
    assert set(kept.missing_keys) == {k for k in model.state_dict() if k.startswith("refiner.")}
    copied = export_by_copy(monkeypatch, quick_export, (TEMPLATE_NAME, SEARCH_NAME))
    torch_engine, ort_engine = make_engine(model, "torch"), make_engine(model, "onnxruntime")
    assert ort_engine.name == "onnxruntime" and ort_engine.refines and torch_engine.refines
    assert copied == [TEMPLATE_NAME, SEARCH_NAME] and (ort_engine.folder / REFINE_NAME).is_file()
    frames, _ = disk_video(1)
    r = cv2.resize(frames[0], (128, 128))
    rays = np.linspace(10, 40, 36)
    a, b = torch_engine.refine(r, rays), ort_engine.refine(r, rays)
    assert np.abs(a - b).max() < 1e-3 and np.abs(a - rays).max() > 0.1


def test_a_refined_polygon_is_drawn_as_the_mask():
    frames, box = disk_video()
    t = Tracker(refine_net(), TrackerConfig())
    t.init(frames[0], box)
    res = t.track(frames[1])
    shape = frames[0].shape[:2]
    assert np.array_equal(res.mask, polygon_to_mask(res.polygon, shape))
    assert not np.array_equal(res.mask, polygon_to_mask(t.last_first_polygon, shape))
