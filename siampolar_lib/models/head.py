"""The polar head, shared across levels: object logit, polar-centerness logit, ray lengths per location.

Two towers of [3x3 conv (no bias), GroupNorm, ReLU] x tower_convs, convs initialised N(0, 0.01):
- cls tower -> `cls` 3x3 conv, 1 logit, bias -log((1 - p) / p) = -log(99) for p = 0.01 (focal-loss prior);
            -> `ctr` 3x3 conv, 1 logit (polar centerness, BCE);
- ray tower -> `rays` 3x3 conv, num_rays values r; rays = exp(clamp(Scale_l * r)) pixels, Scale_l one
  learnable scalar per level (init 1.0). Bias log(32) so the initial rays are about 32 px, an object's
  half-size in a 255 search crop.
- with search_features: the ray tower reads corr + W s, s the search crop's own features at each location
  (`xcorr.align_search`), W a 1x1 conv initialised to zero, so the rays can see the current frame's edges
  (the reference's `gamma * corr + search`) and a network grown from one without it starts out identical.
"""
from __future__ import annotations

import math

import torch
from torch import nn

RAY_LOG_MIN, RAY_LOG_MAX = -4.0, math.log(4 * 255)  # rays clamped to [0.018, 1020] px for safety


class Scale(nn.Module):
    """A single learnable multiplier (one per level)."""

    def __init__(self, init: float = 1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def _tower(channels: int, convs: int, groups: int) -> nn.Sequential:
    """convs x [3x3 conv without bias, GroupNorm(groups), ReLU]."""
    if channels % groups:
        raise ValueError(f"GroupNorm groups {groups} must divide the head width {channels}")
    layers: list[nn.Module] = []
    for _ in range(convs):
        layers += [nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.GroupNorm(groups, channels),
                   nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class PolarHead(nn.Module):
    """Per level: features (B, C, H, W) -> cls (B, 1, H, W), ctr (B, 1, H, W), rays (B, num_rays, H, W) px."""

    def __init__(self, channels: int, num_levels: int, tower_convs: int = 2, gn_groups: int = 32,
                 num_rays: int = 36, prior_prob: float = 0.01, ray_bias: float = math.log(32.0),
                 search_features: bool = False):
        super().__init__()
        self.cls_tower = _tower(channels, tower_convs, gn_groups)
        self.ray_tower = _tower(channels, tower_convs, gn_groups)
        self.cls = nn.Conv2d(channels, 1, 3, padding=1)
        self.ctr = nn.Conv2d(channels, 1, 3, padding=1)
        self.rays = nn.Conv2d(channels, num_rays, 3, padding=1)
        self.scales = nn.ModuleList(Scale(1.0) for _ in range(num_levels))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.constant_(self.cls.bias, -math.log((1 - prior_prob) / prior_prob))
        nn.init.constant_(self.rays.bias, ray_bias)
        # after the N(0, 0.01) loop: zero, so the extra input starts switched off
        self.search_proj = nn.Conv2d(channels, channels, 1) if search_features else None
        if self.search_proj is not None:
            nn.init.zeros_(self.search_proj.weight)
            nn.init.zeros_(self.search_proj.bias)

    def forward(self, x: torch.Tensor, level: int, search: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One level's correlation features (and aligned search features, same shape) -> (cls, ctr, rays px)."""
        c = self.cls_tower(x)
        if self.search_proj is not None:
            if search is None or search.shape != x.shape:
                raise ValueError("this head's ray branch needs the aligned search features, "
                                 "shaped like the correlation")
            x = x + self.search_proj(search)
        r = self.ray_tower(x)
        log_rays = self.scales[level](self.rays(r)).clamp(RAY_LOG_MIN, RAY_LOG_MAX)
        return self.cls(c), self.ctr(c), torch.exp(log_rays)
