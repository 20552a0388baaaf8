"""The object-scale refinement stage: a crop around the first polygon, stride-4 features, ray residuals.

    crop r (B, 3, S, S) RGB 0..255, S = config.refine_size, the first polygon's centre at its middle pixel
    (`geometry.refine`), rays (B, R) crop pixels from that centre
      -> backbone.early_features: stride 4 and stride 8 maps -> 1x1 laterals, the stride-8 one upsampled, summed,
         two 3x3 conv + GroupNorm + ReLU -> F (B, C, S/4, S/4)
      -> per iteration: F sampled (bilinear) at SAMPLES points along every ray, at 0.4 ... 1.6 x its length
         -> (B, C x T, R), beside the same averaged over the rays (what the object looks like overall) and
         log(ray / S) -> three circular 1-D convs over the ray index (a ray sees its neighbours) -> delta (B, R)
         -> rays x exp(tanh(delta)): each ray may shrink or grow by up to e per iteration.
The last conv starts at zero, so an untrained stage returns its input rays unchanged. The same weights run every
iteration (config.refine_iters); `forward` returns the rays after each one, for deep supervision.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from siampolar_lib.geometry.polar import ray_angles

SAMPLES = (0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6)  # sample points along a ray, as multiples of its current length


def circular_pad(x: torch.Tensor) -> torch.Tensor:
    """(B, C, R) -> (B, C, R + 2): the last ray before the first and the first after the last (rays are a circle)."""
    return torch.cat([x[..., -1:], x, x[..., :1]], dim=-1)


class RayRefiner(nn.Module):
    """Ray residuals on an object-scale crop (module docstring): (crop, rays) -> list of refined rays per iteration."""

    def __init__(self, early_channels: tuple[int, int], channels: int = 64, num_rays: int = 36, iters: int = 2,
                 size: int = 128, hidden: int = 128, gn_groups: int = 16):
        super().__init__()
        self.iters, self.size, self.num_rays = int(iters), int(size), int(num_rays)
        self.lat4 = nn.Conv2d(early_channels[0], channels, 1)
        self.lat8 = nn.Conv2d(early_channels[1], channels, 1)
        self.smooth = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.GroupNorm(gn_groups, channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.GroupNorm(gn_groups, channels), nn.ReLU())
        c_in = 2 * channels * len(SAMPLES) + 1
        # kernel 3 over the ray index, padded by `circular_pad` (ray 0 and ray R-1 are neighbours)
        self.ray_convs = nn.ModuleList([nn.Conv1d(c_in, hidden, 3), nn.Conv1d(hidden, hidden, 3),
                                        nn.Conv1d(hidden, 1, 3)])
        nn.init.zeros_(self.ray_convs[-1].weight)
        nn.init.zeros_(self.ray_convs[-1].bias)
        th = torch.as_tensor(ray_angles(num_rays), dtype=torch.float32)
        self.register_buffer("dirs", torch.stack([torch.cos(th), torch.sin(th)], -1), persistent=False)  # (R, 2)
        self.register_buffer("samples", torch.tensor(SAMPLES), persistent=False)  # (T,)

    def feature_map(self, s4: torch.Tensor, s8: torch.Tensor) -> torch.Tensor:
        """Backbone maps at strides 4 (B, C4, h, w) and 8 (B, C8, h/2, w/2) -> F (B, C, h, w)."""
        up = F.interpolate(self.lat8(s8), size=s4.shape[-2:], mode="bilinear", align_corners=False)
        return self.smooth(torch.relu(self.lat4(s4) + up))

    def step(self, fmap: torch.Tensor, rays: torch.Tensor) -> torch.Tensor:
        """One iteration: F (B, C, h, w), rays (B, R) crop pixels from the crop's middle -> new rays (B, R)."""
        B, R = rays.shape
        mid = (self.size - 1) / 2.0
        # (B, R, T, 2): T sample points along each ray
        pts = mid + rays[:, :, None, None] * self.samples[None, None, :, None] * self.dirs[None, :, None, :]
        grid = (pts + 0.5) * (2.0 / self.size) - 1.0  # crop pixels -> grid_sample's [-1, 1] (align_corners=False)
        feat = F.grid_sample(fmap, grid.to(fmap.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
        feat = feat.permute(0, 1, 3, 2).reshape(B, -1, R)  # (B, C, R, T) -> (B, C x T, R)
        glob = feat.mean(dim=-1, keepdim=True).expand(-1, -1, R)
        logr = torch.log(rays.clamp(min=1e-2) / self.size)[:, None, :].to(feat.dtype)
        x = torch.cat([feat, glob, logr], dim=1)
        for i, conv in enumerate(self.ray_convs):
            x = conv(circular_pad(x))
            if i < len(self.ray_convs) - 1:
                x = torch.relu(x)
        return rays * torch.exp(torch.tanh(x[:, 0].float()))

    def forward(self, s4: torch.Tensor, s8: torch.Tensor, rays: torch.Tensor) -> list[torch.Tensor]:
        """Early backbone maps of the crop and first rays (B, R) crop pixels -> rays after each iteration."""
        if rays.dim() != 2 or rays.shape[1] != self.num_rays:
            raise ValueError(f"rays must be (B, {self.num_rays}) crop pixels, got {tuple(rays.shape)}")
        fmap = self.feature_map(s4, s8)
        out = []
        for _ in range(self.iters):
            rays = self.step(fmap, rays)
            out.append(rays)
        return out
