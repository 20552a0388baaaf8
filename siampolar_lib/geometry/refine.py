"""The refinement crop: a square around a first polygon's centre, at the object's own scale.

The first stage reads an object of about 64-90 px on a 255 search crop with stride-8 features; DAVIS's boundary
tolerance (8 px at 480p) is about 3 px there, under half a cell. The refinement stage crops again around the
first polygon so that the object fills about two thirds of the crop's width, and reads stride-4 features:

    side = REFINE_MARGIN x 2 x max(rays), at least MIN_SIDE frame pixels; the crop's middle pixel is the centre,

so a ray may grow by REFINE_MARGIN (x1.5) before it leaves the crop. Rays on the crop are frame rays x scale
(scale = refine_size / side, crop pixels per frame pixel); the crop's centre is ((S - 1) / 2, (S - 1) / 2).
"""
from __future__ import annotations

import numpy as np

from siampolar_lib.geometry.polar import ray_angles, rays_to_polygon

REFINE_MARGIN = 1.5  # crop half-side / longest first ray: how far the longest ray may grow
MIN_SIDE = 16.0  # frame pixels: the crop of a tiny or empty polygon still sees some context


def refine_side(rays: np.ndarray) -> float:
    """Refinement crop side in frame pixels for first rays (R,) frame pixels: 2 x margin x max ray, >= MIN_SIDE."""
    r = np.asarray(rays, dtype=np.float64)
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"rays must be (R,), got shape {r.shape}")
    longest = float(np.nanmax(r)) if np.isfinite(r).any() else 0.0
    return max(2.0 * REFINE_MARGIN * longest, MIN_SIDE)


def flip_rays(rays: np.ndarray) -> np.ndarray:
    """Rays (..., R) of a shape mirrored left-right: angle theta -> pi - theta, i.e. index k -> (R/2 - k) mod R."""
    r = np.asarray(rays)
    n = r.shape[-1]
    return r[..., (n // 2 - np.arange(n)) % n] if n % 2 == 0 else _flip_odd(r)


def _flip_odd(r: np.ndarray) -> np.ndarray:
    """flip_rays for an odd ray count: the mirrored angles fall between rays, so interpolate periodically."""
    n = r.shape[-1]
    src = (n / 2.0 - np.arange(n)) % n  # fractional index of pi - theta_k
    lo = np.floor(src).astype(int) % n
    w = src - np.floor(src)
    return r[..., lo] * (1 - w) + r[..., (lo + 1) % n] * w


def smooth_rays(rays: np.ndarray, sigma: float) -> np.ndarray:
    """Rays (R,) smoothed around the circle by a Gaussian of sigma rays (0: unchanged): a rounder outline."""
    r = np.asarray(rays, dtype=np.float64)
    if sigma <= 0:
        return r.copy()
    n = r.shape[-1]
    k = np.arange(n)
    d = np.minimum(k, n - k)  # circular distance
    w = np.exp(-0.5 * (d / sigma) ** 2)
    w /= w.sum()
    return np.real(np.fft.ifft(np.fft.fft(r) * np.fft.fft(w)))


def polygon_centroid(polygon: np.ndarray) -> np.ndarray | None:
    """Area centroid (2,) (x, y) pixels of a closed polygon (R, 2) pixels; None for one of (near) zero area."""
    p = np.asarray(polygon, dtype=np.float64)
    q = np.roll(p, -1, axis=0)
    cross = p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1]
    area = cross.sum() / 2.0
    if abs(area) < 1e-9:
        return None
    return ((p + q) * cross[:, None]).sum(axis=0) / (6.0 * area)


def recast_rays(polygon: np.ndarray, centre: np.ndarray, num_rays: int) -> np.ndarray:
    """Rays (num_rays,) pixels from centre (2,) to the polygon (R, 2): the farthest crossing of each ray's direction
    with an edge (0 where none); exact, no rasterising, so a polygon re-drawn from a new centre keeps its outline."""
    p = np.asarray(polygon, dtype=np.float64)
    e = np.roll(p, -1, axis=0) - p  # (E, 2) edge vectors
    th = ray_angles(num_rays)
    d = np.stack([np.cos(th), np.sin(th)], axis=-1)  # (R, 2) unit directions
    w = p - np.asarray(centre, dtype=np.float64)  # (E, 2) centre -> edge start
    # c + t d = p + s e  ->  t = cross(w, e) / cross(d, e), s = cross(w, d) / cross(d, e)
    den = d[:, None, 0] * e[None, :, 1] - d[:, None, 1] * e[None, :, 0]  # (R, E)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (w[None, :, 0] * e[None, :, 1] - w[None, :, 1] * e[None, :, 0]) / den
        s = (w[None, :, 0] * d[:, None, 1] - w[None, :, 1] * d[:, None, 0]) / den
    hit = (np.abs(den) > 1e-12) & (s >= 0.0) & (s <= 1.0) & (t > 0.0)
    return np.where(hit, t, 0.0).max(axis=1)

def recentred(origin: np.ndarray, rays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The polygon of origin (2,) and rays (R,) frame px re-drawn from its area centroid: (centre, rays); the same
    pair where the centroid does not see the whole outline (a ray from it would miss every edge)."""
    poly = rays_to_polygon(origin, rays)
    centre = polygon_centroid(poly)
    if centre is None:
        return origin, rays
    new = recast_rays(poly, centre, len(rays))
    return (centre, new) if bool((new > 0).all()) else (origin, rays)
