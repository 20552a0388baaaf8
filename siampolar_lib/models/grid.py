"""Where each score-map location sits on the search crop (the contract between model, targets, tracker).

Every level's map is centred on the crop: location (i, j) of an h x w map at stride s sits at
x = (S - 1)/2 + s (j - (w - 1)/2), y = (S - 1)/2 + s (i - (h - 1)/2) on a search crop of side S.
For S = 255, s = 8, w = 25 that is x = 31 + 8 j (SiamCAR uses 32 + 8 j).
"""
from __future__ import annotations

import torch


def location_grid(h: int, w: int, stride: float, input_size: int, device=None) -> torch.Tensor:
    """Crop-pixel (x, y) of every location of an h x w map: (h, w, 2) float32, pixels."""
    c = (input_size - 1) / 2.0
    xs = c + stride * (torch.arange(w, dtype=torch.float32, device=device) - (w - 1) / 2.0)
    ys = c + stride * (torch.arange(h, dtype=torch.float32, device=device) - (h - 1) / 2.0)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1)
