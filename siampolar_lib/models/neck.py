"""A small FPN-style neck: 1x1 lateral per backbone level, nearest top-down addition, no 3x3 output convs.

(The paper's "semi-FPN": the reference drops the 3x3 smoothing convs, which also keeps the CPU model fast.)
The same neck runs on template and search features (the Siamese branches share every weight).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FPNNeck(nn.Module):
    """{stride: (B, C_in_s, H_s, W_s)} -> {stride: (B, channels, H_s, W_s)} for the output strides."""

    def __init__(self, in_channels: dict[int, int], channels: int, out_strides=(8, 16)):
        super().__init__()
        self.in_strides = tuple(sorted(in_channels))
        self.out_strides = tuple(out_strides)
        missing = set(self.out_strides) - set(self.in_strides)
        if missing:
            raise ValueError(f"output strides {sorted(missing)} are not among the backbone strides {self.in_strides}")
        self.lateral = nn.ModuleDict({str(s): nn.Conv2d(in_channels[s], channels, 1) for s in self.in_strides})
        for conv in self.lateral.values():
            nn.init.kaiming_uniform_(conv.weight, a=1)  # as mmdet's FPN (xavier-like), bias 0
            nn.init.zeros_(conv.bias)

    def forward(self, feats: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        """Top-down: P_s = lateral(C_s) + upsample2x(P_2s), coarsest first."""
        out: dict[int, torch.Tensor] = {}
        prev = None
        for s in reversed(self.in_strides):
            p = self.lateral[str(s)](feats[s])
            if prev is not None:
                p = p + F.interpolate(prev, size=p.shape[-2:], mode="nearest")
            out[s] = prev = p
        return {s: out[s] for s in self.out_strides}
