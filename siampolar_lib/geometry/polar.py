"""The polar representation: a mask as a centre plus N ray lengths at equal angles.

Angles are defined once, here: theta_k = 2 pi k / N, k = 0..N-1. A ray of length d from the centre
(cx, cy) ends at (cx + d cos theta_k, cy + d sin theta_k) in image coordinates (x right, y down), so
ray 0 points right and ray N/4 points down. (The reference code uses 0 degrees = +y; we do not.)
Pixel centres sit at integer coordinates, as in OpenCV and COCO.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

NUM_RAYS = 36  # 10 degrees apart, as in PolarMask and SiamPolar


def ray_angles(n_rays: int = NUM_RAYS) -> np.ndarray:
    """The ray angles theta_k = 2 pi k / n: (n,) float64, radians."""
    return np.arange(n_rays, dtype=np.float64) * (2.0 * np.pi / n_rays)


def mass_centre(mask: np.ndarray) -> np.ndarray:
    """Mean (x, y) of the mask's pixels: (2,) float64, pixels. An empty mask raises ValueError."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        raise ValueError("an empty mask has no mass centre")
    return np.array([xs.mean(), ys.mean()])


def mask_to_rays(mask: np.ndarray, centres, n_rays: int = NUM_RAYS,
                 max_dist: float | None = None) -> np.ndarray:
    """Exact ray casting: the distance from each centre to the farthest mask pixel along each angle.

    mask: (H, W) bool (or 0/1/255). centres: (N, 2) or (2,) float, pixels (x, y).
    Returns rays: (N, n_rays) float32, pixels ((n_rays,) for a single (2,) centre).
    A ray is the largest t such that the point centre + t (cos, sin) lies in a mask pixel (a pixel is
    the unit square around its centre), found at 1-pixel steps then refined to 1/8 pixel, less half a
    pixel (so it ends on the boundary pixels' centres). A ray that meets no mask pixel has length 0, so
    an empty mask gives all zeros (never NaN).
    Farthest rather than first exit: it matches PolarMask's "largest distance in the angle bin" and
    covers a part that lies beyond a gap, which scores better IoU on non-star-shaped objects.
    """
    m = np.asarray(mask).astype(bool)
    c = np.asarray(centres, dtype=np.float64)
    single = c.ndim == 1
    c = c.reshape(-1, 2)
    H, W = m.shape
    n = c.shape[0]
    if n == 0:
        return np.zeros((0, n_rays), np.float32)
    if not m.any():
        out = np.zeros((n, n_rays), np.float32)
        return out[0] if single else out
    th = ray_angles(n_rays)
    d = np.stack([np.cos(th), np.sin(th)], axis=1)  # (R, 2)
    if max_dist is None:
        # Farthest any mask pixel can be from any centre.
        ys, xs = np.nonzero(m)
        corners = np.array([[xs.min(), ys.min()], [xs.max(), ys.max()], [xs.min(), ys.max()], [xs.max(), ys.min()]])
        max_dist = float(np.max(np.linalg.norm(c[:, None, :] - corners[None], axis=2))) + 1.5
    steps = np.arange(0.0, max_dist + 1.0, 1.0)  # (S,)

    def inside(t: np.ndarray) -> np.ndarray:
        """t: (N, R, S) distances -> (N, R, S) bool, point in a mask pixel."""
        px = c[:, None, None, 0] + t * d[None, :, None, 0]
        py = c[:, None, None, 1] + t * d[None, :, None, 1]
        ix = np.floor(px + 0.5).astype(np.int64)
        iy = np.floor(py + 0.5).astype(np.int64)
        ok = (ix >= 0) & (ix < W) & (iy >= 0) & (iy < H)
        res = np.zeros(t.shape, dtype=bool)
        res[ok] = m[iy[ok], ix[ok]]
        return res

    coarse = inside(np.broadcast_to(steps, (n, n_rays, steps.size)))
    hit = coarse.any(axis=2)
    last = steps.size - 1 - np.argmax(coarse[..., ::-1], axis=2)  # index of the farthest inside sample
    t0 = steps[last]  # (N, R)
    fine = t0[..., None] + np.arange(1, 9)[None, None, :] / 8.0  # (N, R, 8) beyond the coarse hit
    f_in = inside(fine)
    # Farthest fine step still inside (contiguous from t0 at this resolution), plus half a sub-step,
    # minus half a pixel: the ray ends on the boundary pixels' centres, as a cv2 contour does, so that
    # filling the polygon (pixel centres inside) gives back the mask without a one-pixel halo.
    k = np.where(f_in.all(axis=2), 8, np.argmin(f_in, axis=2))
    rays = np.where(hit, np.maximum(t0 + k / 8.0 + 1.0 / 16.0 - 0.5, 0.0), 0.0).astype(np.float32)
    return rays[0] if single else rays


def rays_to_polygon(centres, rays) -> np.ndarray:
    """Ray ends as polygon vertices: centres (N, 2), rays (N, R) -> polygon (N, R, 2) float, pixels.

    Also accepts a single centre (2,) with rays (R,), giving (R, 2). Works on numpy arrays.
    """
    c = np.asarray(centres, dtype=np.float64)
    r = np.asarray(rays, dtype=np.float64)
    th = ray_angles(r.shape[-1])
    x = c[..., 0:1] + r * np.cos(th)
    y = c[..., 1:2] + r * np.sin(th)
    return np.stack([x, y], axis=-1)


def polygon_to_mask(polygon, shape: tuple[int, int]) -> np.ndarray:
    """Fill a polygon (R, 2) float pixels into an (H, W) bool mask, sub-pixel accurate (cv2.fillPoly, shift 4)."""
    H, W = shape[:2]
    out = np.zeros((H, W), np.uint8)
    p = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    if p.shape[0] < 3 or not np.all(np.isfinite(p)):
        return out.astype(bool)
    # Clamp far-away vertices so fixed-point coordinates cannot overflow int32.
    p = np.clip(p, -4.0 * max(H, W), 5.0 * max(H, W))
    pts = np.round(p * 16.0).astype(np.int32).reshape(1, -1, 2)
    cv2.fillPoly(out, pts, 1, lineType=cv2.LINE_8, shift=4)
    return out.astype(bool)


def polar_centerness(rays: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Polar centerness sqrt(min d / max d): rays (..., R) -> (...,), in [0, 1]; 0 for all-zero rays."""
    mn = rays.min(dim=-1).values
    mx = rays.max(dim=-1).values
    return torch.sqrt(torch.clamp(mn, min=0.0) / torch.clamp(mx, min=eps))


def polar_iou(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Polar IoU sum(min(d, d*)) / sum(max(d, d*)) over rays: (..., R), (..., R) -> (...,), differentiable."""
    inter = torch.minimum(pred, target).sum(dim=-1)
    union = torch.maximum(pred, target).sum(dim=-1)
    return (inter + eps) / (union + eps)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Region IoU of two (H, W) masks; 1.0 when both are empty (the DAVIS convention)."""
    a = np.asarray(a, bool)
    b = np.asarray(b, bool)
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / union)
