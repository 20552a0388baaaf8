"""Polygon voting: several scored polygons -> one mask, to get below the score map's cell size.

The tracker's polygon is centred on a grid location (stride 8 on the search crop, about 8 / scale frame
pixels: ~30-50 px on a large object), so a single best location puts the whole contour off by up to half a
cell. Neighbouring locations see the same object from slightly different centres; a score-weighted vote of
their polygons (each rasterised, summed with its weight, kept where the weighted share reaches a threshold)
averages that quantisation out, the way an ensemble averages its members' errors.
"""
from __future__ import annotations

import numpy as np

from siampolar_lib.geometry.polar import polygon_to_mask


def vote_mask(polygons: np.ndarray, weights: np.ndarray, shape: tuple[int, int], threshold: float = 0.5) -> np.ndarray:
    """Weighted vote of polygons: polygons (K, R, 2) float pixels, weights (K,) >= 0 -> mask (H, W) bool.

    A pixel is kept when the weights of the polygons covering it sum to at least `threshold` times the total
    weight. K = 1 (or all weight on one polygon) gives that polygon's mask exactly.
    """
    polygons = np.asarray(polygons, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if polygons.ndim != 3 or polygons.shape[0] != w.shape[0]:
        raise ValueError(f"polygons (K, R, 2) and weights (K,) disagree: {polygons.shape} vs {w.shape}")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
    H, W = shape[:2]
    total = float(np.clip(w, 0.0, None).sum())
    if total <= 0.0:
        return np.zeros((H, W), bool)
    # Rasterise only inside the polygons' joint bounding box: the rest of the frame gets no votes.
    finite = polygons[np.isfinite(polygons).all(axis=(1, 2))]
    if finite.size == 0:
        return np.zeros((H, W), bool)
    x0 = int(np.clip(np.floor(finite[..., 0].min()), 0, W))
    x1 = int(np.clip(np.ceil(finite[..., 0].max()) + 1, 0, W))
    y0 = int(np.clip(np.floor(finite[..., 1].min()), 0, H))
    y1 = int(np.clip(np.ceil(finite[..., 1].max()) + 1, 0, H))
    votes = np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), np.float64)
    if votes.size:
        for poly, wk in zip(polygons, w):
            if wk > 0:
                votes += wk * polygon_to_mask(poly - np.array([x0, y0]), votes.shape)
    out = np.zeros((H, W), bool)
    out[y0:y1, x0:x1] = votes >= threshold * total - 1e-12
    return out
