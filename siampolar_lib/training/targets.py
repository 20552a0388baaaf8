"""Training targets for the polar head: which locations are positive, their 36 rays and centerness.

For each search crop and each output level, a location is **positive** when all of these hold:
  1. centre sampling (FCOS/PolarMask): |x - cx| < radius * stride and |y - cy| < radius * stride, where
     (cx, cy) is the mask's mass centre (`geometry.polar.mass_centre`), with the window cut to the mask's box;
  2. the location lies **inside the mask** (the pixel under it is foreground). Our choice: a ray target cast
     from outside the object is not a polygon of the object (rays that miss are 0), so such locations would
     teach nonsense. If rule 1 + 2 leave a visible object without any positive (a thin or curved object whose
     mass centre falls outside it), the in-mask location nearest the mass centre on the level the size rule
     picks becomes the one positive, so that every visible object is trained on;
  3. the object's size seen from the location, max(l, t, r, b) to the mask's box edges (FCOS), lies in the
     level's regress range (lo, hi], as `models.config.ModelConfig.regress_ranges` defines it.
Ray targets are cast from each positive location to the mask boundary with `geometry.polar.mask_to_rays`
(one batched call per mask), and the centerness target is `polar_centerness(rays)` = sqrt(min / max).
An empty mask (a negative pair) gives all-negative levels.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from siampolar_lib.geometry.boxes import mask_to_box
from siampolar_lib.geometry.polar import NUM_RAYS, mask_to_rays, mass_centre
from siampolar_lib.models.config import ModelConfig
from siampolar_lib.models.grid import location_grid


def polar_centerness(rays: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Polar centerness sqrt(min d / max d): rays (..., R) -> (...,), in [0, 1]; 0 for all-zero rays."""
    mn = rays.min(dim=-1).values
    mx = rays.max(dim=-1).values
    return torch.sqrt(torch.clamp(mn, min=0.0) / torch.clamp(mx, min=eps))


def _as_mask_array(search_masks) -> np.ndarray:
    """(B, S, S) bool tensor or array -> (B, S, S) bool numpy array; anything else is a ValueError."""
    if isinstance(search_masks, torch.Tensor):
        search_masks = search_masks.detach().cpu().numpy()
    m = np.asarray(search_masks)
    if m.ndim != 3:
        raise ValueError(f"search_masks must be (B, H, W), got shape {m.shape}")
    return m.astype(bool)


def _positives_one_mask(mask: np.ndarray, pts: list[np.ndarray], strides: Sequence[float],
                        regress_ranges: Sequence[tuple[float, float]], centre_radius: float) -> list[np.ndarray]:
    """Boolean positive maps (H_l, W_l) per level for one non-empty (S, S) mask, by the rules above."""
    S_h, S_w = mask.shape
    cx, cy = mass_centre(mask)
    bx, by, bw, bh = mask_to_box(mask)
    # The box covers whole pixels: pixel centres are integers, so its edges sit half a pixel out.
    x0, y0, x1, y1 = bx - 0.5, by - 0.5, bx + bw - 0.5, by + bh - 0.5
    pos, in_range, inside = [], [], []
    for p, s, (lo, hi) in zip(pts, strides, regress_ranges):
        px, py = p[..., 0], p[..., 1]
        in_box = (px > x0) & (px < x1) & (py > y0) & (py < y1)
        r = centre_radius * s
        centre = (np.abs(px - cx) < r) & (np.abs(py - cy) < r) & in_box
        ix = np.clip(np.floor(px + 0.5).astype(np.int64), 0, S_w - 1)
        iy = np.clip(np.floor(py + 0.5).astype(np.int64), 0, S_h - 1)
        on_mask = mask[iy, ix] & in_box
        size = np.maximum.reduce([px - x0, py - y0, x1 - px, y1 - py])
        ok = (size > lo) & (size <= hi)
        pos.append(centre & on_mask & ok)
        in_range.append(ok)
        inside.append(on_mask)
    if not any(p.any() for p in pos):
        # Fallback: the in-mask location nearest the mass centre, among locations whose size fits their level.
        best = None
        for li, p in enumerate(pts):
            cand = inside[li] & in_range[li]
            if not cand.any():
                continue
            d2 = np.where(cand, (p[..., 0] - cx) ** 2 + (p[..., 1] - cy) ** 2, np.inf)
            k = int(np.argmin(d2))
            if best is None or d2.flat[k] < best[0]:
                best = (d2.flat[k], li, k)
        if best is not None:
            pos[best[1]].flat[best[2]] = True
    return pos


def build_targets(search_masks, points: Sequence[torch.Tensor], strides: Sequence[float],
                  regress_ranges: Sequence[tuple[float, float]], centre_radius: float = 1.5,
                  num_rays: int = NUM_RAYS) -> list[dict[str, torch.Tensor]]:
    """Per-level targets for a batch of search crops.

    search_masks: (B, S, S) bool tensor or array, the object's mask on each search crop (empty = negative).
    points: per level, (H, W, 2) float crop-pixel (x, y) of each location (`models.grid.location_grid`).
    strides: per level, pixels; regress_ranges: per level (lo, hi] in crop pixels (hi may be inf).
    Returns per level dict(labels (B, H, W) float32 0/1, rays (B, H, W, num_rays) float32 pixels (0 at
    negatives), centerness (B, H, W) float32 in [0, 1] (0 at negatives)), on the device of points[0].
    """
    if not (len(points) == len(strides) == len(regress_ranges)):
        raise ValueError(f"points, strides and regress_ranges need one entry per level, got "
                         f"{len(points)}, {len(strides)}, {len(regress_ranges)}")
    masks = _as_mask_array(search_masks)
    B = masks.shape[0]
    device = points[0].device if isinstance(points[0], torch.Tensor) else torch.device("cpu")
    pts = [p.detach().cpu().numpy().astype(np.float64) if isinstance(p, torch.Tensor) else np.asarray(p, np.float64)
           for p in points]
    shapes = [p.shape[:2] for p in pts]
    labels = [np.zeros((B, *hw), np.float32) for hw in shapes]
    rays = [np.zeros((B, *hw, num_rays), np.float32) for hw in shapes]
    ctr = [np.zeros((B, *hw), np.float32) for hw in shapes]
    for b in range(B):
        if not masks[b].any():
            continue
        pos = _positives_one_mask(masks[b], pts, strides, regress_ranges, centre_radius)
        centres = np.concatenate([pts[l][pos[l]] for l in range(len(pts))], axis=0)  # (P, 2)
        if centres.shape[0] == 0:
            continue
        r = mask_to_rays(masks[b], centres, n_rays=num_rays)  # (P, R), one batched cast for all levels
        c = polar_centerness(torch.from_numpy(r)).numpy()
        start = 0
        for l in range(len(pts)):
            n = int(pos[l].sum())
            labels[l][b][pos[l]] = 1.0
            rays[l][b][pos[l]] = r[start:start + n]
            ctr[l][b][pos[l]] = c[start:start + n]
            start += n
    return [dict(labels=torch.from_numpy(labels[l]).to(device), rays=torch.from_numpy(rays[l]).to(device),
                 centerness=torch.from_numpy(ctr[l]).to(device)) for l in range(len(pts))]


def config_points(config: ModelConfig) -> list[torch.Tensor]:
    """The network's fixed location grid, per level (H, W, 2) float32 crop pixels, from its config alone.

    A backbone level of stride s maps the S-pixel search crop to ceil(S / s) cells (every backbone we build
    pads that way) and correlating with the central k x k template cells leaves ceil(S / s) - k + 1 locations,
    centred on the crop (`models.grid.location_grid`). tests/training/test_targets.py checks this against the
    `points` of a real forward for each backbone family.
    """
    sides = [math.ceil(config.search_size / s) - k + 1 for s, k in zip(config.strides, config.template_crop)]
    return [location_grid(n, n, s, config.search_size) for n, s in zip(sides, config.strides)]


def config_targets(search_masks, config: ModelConfig, points: Sequence[torch.Tensor] | None = None
                   ) -> list[dict[str, torch.Tensor]]:
    """`build_targets` on the config's own grid (`config_points`): what a DataLoader worker can compute alone."""
    return build_targets(search_masks, points if points is not None else config_points(config), config.strides,
                         config.regress_ranges, config.centre_radius, config.num_rays)


class TargetCollate:
    """DataLoader collate_fn: `default_collate` of PairDataset items plus "targets" (`config_targets` of the batch).

    With DataLoader workers the targets are built in the worker processes, off the training process's critical
    path; the step then only moves them to the device. They equal what `model_targets` builds in the step.
    """

    def __init__(self, config: ModelConfig):
        self.config = config
        self.points = config_points(config)

    def __call__(self, items: list[dict]) -> dict:
        from torch.utils.data import default_collate

        batch = default_collate(items)
        batch["targets"] = config_targets(batch["search_mask"], self.config, self.points)
        return batch


def model_targets(search_masks, out: dict, config: ModelConfig) -> list[dict[str, torch.Tensor]]:
    """`build_targets` for a model's output dict (points, strides), with the model config's ranges and rays."""
    return build_targets(search_masks, out["points"], out["strides"], config.regress_ranges, config.centre_radius,
                         config.num_rays)
