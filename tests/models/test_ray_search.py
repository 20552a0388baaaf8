"""The ray branch that also reads the search crop's features: alignment, a zero start, growing a checkpoint."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from siampolar_lib.models.config import QUICK
from siampolar_lib.models.siampolar import SiamPolar
from siampolar_lib.models.xcorr import align_search, xcorr_depthwise
from siampolar_lib.training.checkpoint import CheckpointError, init_weights, load_model, save_checkpoint

GROWN = dataclasses.replace(QUICK, ray_search_features=True)


@pytest.mark.parametrize("k", [4, 5, 8])
def test_align_search_reads_each_location_centre(k):
    x = torch.randn(2, 3, 16, 16)
    out = align_search(x, k)
    assert out.shape == xcorr_depthwise(x, torch.ones(2, 3, k, k)).shape
    # location (i, j) of the correlation covers cells i..i+k-1: its centre is the mean of the middle cell(s)
    lo, hi = (k - 1) // 2, k // 2
    for i, j in [(0, 0), (3, 7), (16 - k, 16 - k)]:
        centre = x[:, :, i + lo:i + hi + 1, j + lo:j + hi + 1].mean(dim=(2, 3))
        assert torch.allclose(out[:, :, i, j], centre, atol=1e-6)
    with pytest.raises(ValueError, match="cannot align"):
        align_search(x, 17)


def _pair():
    g = torch.Generator().manual_seed(0)
    return (torch.rand(1, 3, 127, 127, generator=g) * 255, torch.rand(1, 3, 255, 255, generator=g) * 255)


def test_grown_network_starts_out_identical_then_learns(tmp_path):
    torch.manual_seed(0)
    base = SiamPolar(QUICK, pretrained=False).eval()
    path = save_checkpoint(tmp_path / "base.pt", base)
    grown = SiamPolar(GROWN, pretrained=False)
    init_weights(grown, path, GROWN)
    grown.eval()
    z, x = _pair()
    with torch.no_grad():
        a, b = base(z, x), grown(z, x)
    for key in ("cls", "ctr", "rays"):
        assert all(torch.equal(p, q) for p, q in zip(a[key], b[key]))
    # the zero-initialised 1x1 conv still gets a gradient: the search features reach the rays once it moves
    grown.train()
    sum(r.sum() for r in grown(z, x)["rays"]).backward()
    assert grown.head.search_proj.weight.grad.abs().sum() > 0
    with torch.no_grad():
        grown.head.search_proj.weight.normal_(std=0.01)
        grown.eval()
        moved = grown(z, x)
    assert not torch.equal(moved["rays"][0], a["rays"][0])
    assert torch.equal(moved["cls"][0], a["cls"][0])  # only the ray branch reads the search features


def test_growing_is_one_way_and_checked(tmp_path):
    grown_path = save_checkpoint(tmp_path / "grown.pt", SiamPolar(GROWN, pretrained=False))
    assert load_model(grown_path).config.ray_search_features
    with pytest.raises(CheckpointError, match="ray_search_features"):  # switching it off would drop weights
        init_weights(SiamPolar(QUICK, pretrained=False), grown_path, QUICK)
    other = dataclasses.replace(GROWN, channels=32)
    base_path = save_checkpoint(tmp_path / "base.pt", SiamPolar(QUICK, pretrained=False))
    with pytest.raises(CheckpointError, match="channels"):  # a grown field does not excuse another difference
        init_weights(SiamPolar(other, pretrained=False), base_path, other)


def test_grown_head_needs_the_search_features():
    model = SiamPolar(GROWN, pretrained=False).eval()
    corr = torch.randn(1, QUICK.channels, 13, 13)
    with pytest.raises(ValueError, match="aligned search features"):
        model.head(corr, 1)


def test_grown_network_exports_to_onnx(tmp_path):
    from siampolar_lib.tracking.onnx_export import export_onnx

    torch.manual_seed(1)
    model = SiamPolar(GROWN, pretrained=False).eval()
    with torch.no_grad():
        model.head.search_proj.weight.normal_(std=0.05)
    meta = export_onnx(model, tmp_path / "onnx")  # checks ORT against torch
    assert meta["config"]["ray_search_features"] is True
    assert max(meta["max_abs_diff"].values()) < 1e-3
