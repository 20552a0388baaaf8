"""The SiamPolar network: output contract per config, the template matters, caching, centring."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from siampolar_lib import build_model
from siampolar_lib.geometry.crops import context_side, crop_square, search_side
from siampolar_lib.models.config import CONFIGS, get_config
from siampolar_lib.models.grid import location_grid
from siampolar_lib.models.siampolar import count_parameters
from siampolar_lib.models.xcorr import crop_template, xcorr_plain

MAP_SIZES = {8: 25, 16: 13}  # correlation map side per stride on a 255 search / 127 template


def _inputs(b: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, 127, 127, generator=g) * 255, torch.rand(b, 3, 255, 255, generator=g) * 255


@pytest.fixture(scope="module")
def quick():
    torch.manual_seed(0)
    return build_model("quick", pretrained=True)


def _check_contract(out: dict, cfg, b: int) -> None:
    assert out["strides"] == list(cfg.strides)
    for key in ("cls", "ctr", "rays", "points"):
        assert len(out[key]) == len(cfg.strides), key
    for s, cls, ctr, rays, pts in zip(cfg.strides, out["cls"], out["ctr"], out["rays"], out["points"]):
        n = MAP_SIZES[s]
        assert cls.shape == ctr.shape == (b, 1, n, n)
        assert rays.shape == (b, cfg.num_rays, n, n)
        assert torch.isfinite(rays).all() and (rays > 0).all()
        torch.testing.assert_close(pts, location_grid(n, n, s, 255))


def test_configs_are_frozen_and_named():
    assert set(CONFIGS) == {"lite0", "quick", "r18", "r50", "r101"}
    cfg = get_config("lite0")
    assert cfg.strides == (8, 16) and cfg.num_rays == 36 and cfg.template_size == 127 and cfg.search_size == 255
    assert len(cfg.regress_ranges) == len(cfg.strides) == len(cfg.template_crop) and cfg.centre_radius == 1.5
    with pytest.raises(Exception):
        cfg.channels = 3
    with pytest.raises(ValueError, match="unknown model config"):
        get_config("r34")


def test_quick_contract_and_initial_outputs(quick):
    z, x = _inputs(2)
    quick.eval()
    with torch.no_grad():
        out = quick(z, x)
    _check_contract(out, quick.config, 2)
    p = torch.sigmoid(out["cls"][0])
    assert 0.001 < float(p.mean()) < 0.05  # prior 0.01 at init
    assert 16 < float(out["rays"][0].median()) < 64  # bias log(32): object-sized rays at init


def test_lite0_contract(real_davis):
    model = build_model("lite0", pretrained=True).eval()
    with torch.no_grad():
        out = model(*_inputs(1))
    _check_contract(out, model.config, 1)
    counts = count_parameters(model)
    assert counts["total"] == counts["backbone"] + counts["neck"] + counts["head"]
    assert counts["trainable"] < counts["total"]  # early stages and BN frozen


@pytest.mark.slow
@pytest.mark.parametrize("name", ["r18", "r50"])
def test_resnet_contract_without_weights(name):
    model = build_model(name, pretrained=False).eval()
    with torch.no_grad():
        out = model(*_inputs(1))
    _check_contract(out, model.config, 1)


def test_template_matters_and_gets_gradients(quick):
    quick.eval()  # frozen BN either way; eval keeps the comparison deterministic
    z, x = _inputs(2, seed=1)
    with torch.no_grad():
        a = quick(z, x)
        b = quick(torch.flip(z, dims=[0]), x)
    assert (a["cls"][0] - b["cls"][0]).abs().max() > 1e-4
    assert (a["rays"][0] - b["rays"][0]).abs().max() > 1e-4
    quick.train()
    assert not any(m.training for m in quick.modules() if isinstance(m, torch.nn.BatchNorm2d))  # bn_mode frozen
    assert quick.head.cls_tower.training
    z1 = z[:1].clone().requires_grad_(True)
    out = quick(z1, x[:1])
    loss = sum(o.sum() for o in out["cls"]) + sum(o.mean() for o in out["rays"])
    loss.backward()
    assert z1.grad is not None and z1.grad.abs().sum() > 0
    lateral = quick.neck.lateral["8"].weight.grad
    assert lateral is not None and lateral.abs().sum() > 0
    quick.zero_grad(set_to_none=True)


def test_template_then_track_equals_forward(quick):
    quick.eval()
    z, x = _inputs(2, seed=2)
    with torch.no_grad():
        full = quick(z, x)
        quick.template(z)
        tracked = quick.track(x)
        quick.template(z[:1])  # a batch-1 template serves a batch of search crops
        broadcast = quick.track(x)
        single = quick(z[:1], x[1:])
    for key in ("cls", "ctr", "rays"):
        for a, b in zip(full[key], tracked[key]):
            torch.testing.assert_close(a, b)
        for a, b in zip(broadcast[key], single[key]):
            torch.testing.assert_close(a[1:], b, rtol=1e-4, atol=1e-4)


def test_bad_inputs_are_clear_errors(quick):
    fresh = build_model("quick", pretrained=False)
    with pytest.raises(RuntimeError, match="template"):
        fresh.track(torch.zeros(1, 3, 255, 255))
    with pytest.raises(ValueError, match="search must be"):
        quick(torch.zeros(1, 3, 127, 127), torch.zeros(1, 3, 256, 256))
    with pytest.raises(ValueError, match="template must be"):
        quick(torch.zeros(1, 3, 255, 255), torch.zeros(1, 3, 255, 255))


@pytest.fixture(scope="module")
def lite0_trunk():
    return build_model("lite0", pretrained=True).eval()


def _plain_peak(model, template: np.ndarray, search: np.ndarray, stride: int, k: int) -> np.ndarray:
    """Crop (x, y) of the peak of the plain correlation of backbone features at one stride."""
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        fz, fx = model.backbone_features(t(template))[stride], model.backbone_features(t(search))[stride]
        r = xcorr_plain(fx, crop_template(fz, k))[0, 0]
    pts = location_grid(r.shape[0], r.shape[1], stride, 255)
    return pts.reshape(-1, 2)[int(r.argmax())].numpy()


@pytest.mark.parametrize("dx,dy", [(0, 0), (40, -24), (-56, 32), (64, 64)])
def test_pasted_pattern_peaks_at_its_location(real_davis, lite0_trunk, dx, dy):
    frame = cv2.imread(str(real_davis / "JPEGImages" / "480p" / "dog" / "00000.jpg"))[:, :, ::-1]
    pattern = cv2.resize(np.random.default_rng(0).integers(0, 255, (8, 8, 3)).astype(np.uint8), (48, 48),
                         interpolation=cv2.INTER_NEAREST)
    search = cv2.resize(frame[100:400, 200:500], (255, 255))
    search[127 + dy - 24:127 + dy + 24, 127 + dx - 24:127 + dx + 24] = pattern
    template = np.full((127, 127, 3), 120, np.uint8)
    template[63 - 24:63 + 24, 63 - 24:63 + 24] = pattern
    peak = _plain_peak(lite0_trunk, template, search, 8, get_config("lite0").template_crop[0])
    assert np.abs(peak - (127 + dx, 127 + dy)).max() <= 8, peak


@pytest.mark.parametrize("offset", [(0, 0), (30, -20), (-40, 25)])
def test_davis_object_peaks_where_it_is_in_the_search_crop(real_davis, lite0_trunk, offset):
    frame = cv2.imread(str(real_davis / "JPEGImages" / "480p" / "blackswan" / "00000.jpg"))[:, :, ::-1]
    mask = cv2.imread(str(real_davis / "Annotations" / "480p" / "blackswan" / "00000.png"), cv2.IMREAD_GRAYSCALE) > 0
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    cx, cy = x + w / 2, y + h / 2
    template, _ = crop_square(frame, (cx, cy), context_side(w, h), 127)
    search, tf = crop_square(frame, (cx + offset[0], cy + offset[1]), search_side(w, h), 255)
    peak = _plain_peak(lite0_trunk, template, search, 8, 8)
    assert np.abs(peak - tf.to_crop(np.array([cx, cy]))).max() <= 8, (peak, tf.to_crop(np.array([cx, cy])))
