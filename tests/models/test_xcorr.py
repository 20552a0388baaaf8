"""Correlation: the grouped-conv versions equal the loop that defines them; centred template crops."""
from __future__ import annotations

import pytest
import torch

from siampolar_lib.models.xcorr import crop_template, xcorr_depthwise, xcorr_plain, xcorr_slow


@pytest.mark.parametrize("b,c,hw,k", [(1, 1, 5, 3), (2, 3, 9, 4), (3, 4, (7, 10), 2)])
def test_depthwise_and_plain_equal_the_loop(b, c, hw, k):
    g = torch.Generator().manual_seed(b * 10 + c)
    h, w = (hw, hw) if isinstance(hw, int) else hw
    x, z = torch.randn(b, c, h, w, generator=g), torch.randn(b, c, k, k, generator=g)
    dw = xcorr_depthwise(x, z)
    assert dw.shape == (b, c, h - k + 1, w - k + 1)
    torch.testing.assert_close(dw, xcorr_slow(x, z), rtol=1e-5, atol=1e-5)
    pl = xcorr_plain(x, z)
    assert pl.shape == (b, 1, h - k + 1, w - k + 1)
    torch.testing.assert_close(pl, xcorr_slow(x, z, depthwise=False), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(pl, dw.sum(1, keepdim=True), rtol=1e-5, atol=1e-5)


def test_batch_one_template_broadcasts_and_batches_stay_separate():
    x, z = torch.randn(3, 2, 8, 8), torch.randn(1, 2, 3, 3)
    out = xcorr_depthwise(x, z)
    for n in range(3):
        torch.testing.assert_close(out[n:n + 1], xcorr_depthwise(x[n:n + 1], z))
    z2 = torch.randn(3, 2, 3, 3)
    out2 = xcorr_depthwise(x, z2)
    torch.testing.assert_close(out2[1:2], xcorr_depthwise(x[1:2], z2[1:2]))


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="template batch"):
        xcorr_depthwise(torch.randn(3, 2, 8, 8), torch.randn(2, 2, 3, 3))
    with pytest.raises(ValueError, match="xcorr needs"):
        xcorr_plain(torch.randn(1, 2, 8, 8), torch.randn(1, 3, 3, 3))
    with pytest.raises(ValueError, match="larger"):
        xcorr_depthwise(torch.randn(1, 2, 4, 4), torch.randn(1, 2, 5, 5))


def test_crop_template_takes_the_centre():
    z = torch.arange(16 * 16.0).view(1, 1, 16, 16)
    c = crop_template(z, 8)
    assert c.shape == (1, 1, 8, 8) and c[0, 0, 0, 0] == 4 * 16 + 4
    with pytest.raises(ValueError, match="centred"):
        crop_template(z, 7)
