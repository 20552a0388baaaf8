"""Siamese cross-correlation: the template's features slide over the search features.

Three versions with one meaning, for teaching and testing (pysot keeps the same trio):
- `xcorr_slow`: a Python loop over batch and output positions (the definition);
- `xcorr_plain`: SiamFC, channels summed -> one response map (B, 1, H-h+1, W-w+1), one grouped conv;
- `xcorr_depthwise`: SiamRPN++/SiamCAR, one response map per channel (B, C, H-h+1, W-w+1), a conv with
  groups = B*C. This is what SiamPolar uses. (The reference code repeats a 1-channel map over C channels
  and softmaxes over those identical channels, which gives 1/C everywhere: the template has no effect.)

Output sizes on a 255 search / 127 template (every model size):
  stride 8:  x (B, C, 32, 32) * kernel (B, C, 8, 8) -> (B, C, 25, 25), location j at crop x = 31 + 8 j
  stride 16: x (B, C, 16, 16) * kernel (B, C, 4, 4) -> (B, C, 13, 13), location j at crop x = 31 + 16 j
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Validate shapes; a template batch of 1 is broadcast to the search batch. Returns the kernel."""
    if x.dim() != 4 or kernel.dim() != 4 or x.shape[1] != kernel.shape[1]:
        raise ValueError(f"xcorr needs x (B, C, H, W) and kernel (B, C, h, w), got {tuple(x.shape)} and "
                         f"{tuple(kernel.shape)}")
    if kernel.shape[0] != x.shape[0]:
        if kernel.shape[0] != 1:
            raise ValueError(f"template batch {kernel.shape[0]} must be 1 or equal the search batch {x.shape[0]}")
        kernel = kernel.expand(x.shape[0], -1, -1, -1)
    if kernel.shape[2] > x.shape[2] or kernel.shape[3] > x.shape[3]:
        raise ValueError(f"kernel {tuple(kernel.shape[2:])} is larger than the search map {tuple(x.shape[2:])}")
    return kernel


def xcorr_depthwise(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Depth-wise correlation: x (B, C, H, W), kernel (B, C, h, w) -> (B, C, H-h+1, W-w+1)."""
    kernel = _check(x, kernel)
    b, c, h, w = x.shape
    out = F.conv2d(x.reshape(1, b * c, h, w), kernel.reshape(b * c, 1, *kernel.shape[2:]), groups=b * c)
    return out.reshape(b, c, out.shape[2], out.shape[3])


def xcorr_plain(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """SiamFC correlation, channels summed: x (B, C, H, W), kernel (B, C, h, w) -> (B, 1, H-h+1, W-w+1)."""
    kernel = _check(x, kernel)
    b, c, h, w = x.shape
    out = F.conv2d(x.reshape(1, b * c, h, w), kernel, groups=b)
    return out.reshape(b, 1, out.shape[2], out.shape[3])


def xcorr_slow(x: torch.Tensor, kernel: torch.Tensor, depthwise: bool = True) -> torch.Tensor:
    """The definition as a loop (slow; tests only): depth-wise (B, C, H', W') or summed (B, 1, H', W')."""
    kernel = _check(x, kernel)
    b, c, h, w = x.shape
    kh, kw = kernel.shape[2:]
    out = x.new_zeros(b, c if depthwise else 1, h - kh + 1, w - kw + 1)
    for n in range(b):
        for i in range(h - kh + 1):
            for j in range(w - kw + 1):
                prod = (x[n, :, i:i + kh, j:j + kw] * kernel[n]).sum(dim=(1, 2))  # (C,)
                out[n, :, i, j] = prod if depthwise else prod.sum()
    return out


def align_search(x: torch.Tensor, size: int) -> torch.Tensor:
    """Search features (B, C, H, W) read at each correlation location's centre -> (B, C, H-size+1, W-size+1).

    Location j of a correlation with a size x size kernel is centred on search cell j + (size - 1) / 2: a
    cell itself for odd sizes, the mean of two neighbours (a 2x2 average) for even ones.
    """
    h, w = x.shape[-2:]
    if size > min(h, w) or size < 1:
        raise ValueError(f"cannot align a {h}x{w} search map with a {size}x{size} kernel")
    if size % 2 == 0:
        x = F.avg_pool2d(x, 2, stride=1)
    t = (size - 1) // 2
    return x[..., t:t + h - size + 1, t:t + w - size + 1]


def crop_template(z: torch.Tensor, size: int) -> torch.Tensor:
    """Central size x size crop of template features (B, C, h, w): keeps the correlation map centred."""
    h, w = z.shape[-2:]
    if (h - size) % 2 or (w - size) % 2 or size > min(h, w):
        raise ValueError(f"cannot take a centred {size}x{size} crop of a {h}x{w} template map")
    t, l = (h - size) // 2, (w - size) // 2
    return z[..., t:t + size, l:l + size]
