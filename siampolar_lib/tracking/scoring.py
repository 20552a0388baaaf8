"""The tracker's scoring maths, pysot/SiamCAR style: which location of which level becomes the next polygon.

Per level, every location's polygon box is compared with the previous state (a size/aspect change penalty), the
network's score (cls x ctr) is penalised and blended with a cosine window, and the best location over all levels
wins. Pure functions of numpy arrays; `tracking.tracker.Tracker` calls them, notebook 07 rebuilds them by hand.

    penalty = exp(-(r_c s_c - 1) k)             r_c, s_c: aspect and size change >= 1 (`change`)
    final   = penalty x score x (1 - lambda) + window x lambda
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from siampolar_lib.geometry.crops import context_side
from siampolar_lib.geometry.polar import ray_angles

MIN_SIDE = 1e-3  # crop px: a degenerate polygon box is widened to this, so ratios stay finite


def change(r: np.ndarray) -> np.ndarray:
    """Symmetric ratio max(r, 1/r) >= 1 (pysot's `change`)."""
    return np.maximum(r, 1.0 / r)


def cosine_window(points: np.ndarray) -> np.ndarray:
    """Hanning window over a level's locations: points (H, W, 2) crop pixels -> (H, W) in [0, 1].

    Equals np.outer(np.hanning(H), np.hanning(W)) on a centred grid; written from the positions so that
    levels of different strides that cover the same crop area get the same weight at the same place.
    """
    c = points.reshape(-1, 2).mean(axis=0)
    half = np.abs(points.reshape(-1, 2) - c).max(axis=0)  # half extent of the grid, (2,)
    half = np.where(half > 0, half, 1.0)
    u = np.clip(np.abs(points - c) / half, 0.0, 1.0)
    w = 0.5 + 0.5 * np.cos(np.pi * u)
    return w[..., 0] * w[..., 1]


@lru_cache(maxsize=8)
def _trig(n_rays: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of the ray angles as (R, 1, 1) float64 (computed once per ray count)."""
    th = ray_angles(n_rays)
    return np.cos(th)[:, None, None], np.sin(th)[:, None, None]


def polygon_boxes(rays: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-location polygon box relative to the location: rays (R, H, W) -> (dx, dy, w, h), each (H, W).

    (dx, dy) is the box centre minus the location, (w, h) its size, all in the rays' pixels.
    """
    cos, sin = _trig(rays.shape[0])
    xs = rays * cos
    ys = rays * sin
    x0, x1, y0, y1 = xs.min(0), xs.max(0), ys.min(0), ys.max(0)
    return (x0 + x1) / 2.0, (y0 + y1) / 2.0, x1 - x0, y1 - y0


def change_penalty(bw: np.ndarray, bh: np.ndarray, prev_size: np.ndarray, scale: float, context: float,
                   k: float) -> np.ndarray:
    """Size/aspect change penalty exp(-(r_c s_c - 1) k) in (0, 1] of polygon boxes (bw, bh) (H, W) crop px.

    prev_size (2,) is the state's (w, h) in frame px; scale (crop px per frame px) puts it on the crop, where
    the template saw the target at the same scale. Sizes compare as context squares (`context_side`).
    """
    w_prev, h_prev = prev_size
    sz_prev = context_side(w_prev * scale, h_prev * scale, context)
    s_c = change(context_side(bw, bh, context) / sz_prev)
    r_c = change((w_prev / h_prev) / (bw / bh))
    return np.exp(-(r_c * s_c - 1.0) * k)


def windowed_score(score: np.ndarray, penalty: np.ndarray, window: np.ndarray, window_influence: float) -> np.ndarray:
    """The final score of every location: penalty x score x (1 - lambda) + window x lambda, (H, W)."""
    final = penalty * score * (1.0 - window_influence)
    return final + window * window_influence


def network_share(score: float, penalty: float, window: float, window_influence: float) -> float:
    """The network's part of one location's final score, penalty x score x (1 - lambda) / final (NaN for 0)."""
    net = float(penalty) * score * (1.0 - window_influence)
    total = net + window * window_influence
    return net / total if total > 0 else float("nan")


@dataclass(frozen=True)
class Choice:
    """The winning location: its level and cell (i, j), penalty, polygon box (dx, dy, w, h) crop px, and the
    winning level's final scores (H, W) (for a sub-cell refinement)."""

    level: int
    i: int
    j: int
    penalty: float
    box: tuple[float, float, float, float]
    final: np.ndarray


def best_location(levels: list[dict], windows: list[np.ndarray], prev_size: np.ndarray, scale: float,
                  context: float, penalty_k: float, window_influence: float) -> Choice:
    """The location with the highest final score over all levels (a tie keeps the earlier level).

    levels: the engine's per-level dicts (score (H, W), rays (R, H, W) crop px, points (H, W, 2));
    windows: each level's `cosine_window`; prev_size, scale, context: as `change_penalty`.
    """
    best = None
    for li, (lv, window) in enumerate(zip(levels, windows)):
        dx, dy, bw, bh = polygon_boxes(lv["rays"])
        bw, bh = np.maximum(bw, MIN_SIDE), np.maximum(bh, MIN_SIDE)
        penalty = change_penalty(bw, bh, prev_size, scale, context, penalty_k)
        final = windowed_score(lv["score"], penalty, window, window_influence)
        i, j = np.unravel_index(int(np.argmax(final)), final.shape)
        if best is None or final[i, j] > best[0]:
            best = (final[i, j], Choice(li, i, j, penalty[i, j], (dx[i, j], dy[i, j], bw[i, j], bh[i, j]), final))
    return best[1]


def parabola_vertex(a: float, b: float, c: float) -> float:
    """Offset in [-1/2, 1/2] cells of the vertex of the parabola through (-1, a), (0, b), (1, c); 0 unless a peak."""
    den = a - 2.0 * b + c
    return float(np.clip(0.5 * (a - c) / den, -0.5, 0.5)) if den < 0 else 0.0


def subcell_location(final: np.ndarray, lv: dict, i: int, j: int):
    """Cell (i, j) moved by (fy, fx) in [-1/2, 1/2] cells, each the vertex of a parabola through the final scores
    (H, W) there and at its two neighbours on that axis (0 at the map's edge).

    Returns (point (2,) crop px, rays (R,) read bilinearly there, (dx, dy, w, h) of their polygon box). Small
    changes of the scores move it a little, where the argmax would jump a whole cell.
    """
    h, w = final.shape
    p = final
    fy = parabola_vertex(p[i - 1, j], p[i, j], p[i + 1, j]) if 0 < i < h - 1 else 0.0
    fx = parabola_vertex(p[i, j - 1], p[i, j], p[i, j + 1]) if 0 < j < w - 1 else 0.0
    i1, j1 = min(max(i + int(np.sign(fy)), 0), h - 1), min(max(j + int(np.sign(fx)), 0), w - 1)
    ay, ax = abs(fy), abs(fx)
    r = lv["rays"]
    rays = ((1 - ay) * (1 - ax) * r[:, i, j] + (1 - ay) * ax * r[:, i, j1] + ay * (1 - ax) * r[:, i1, j]
            + ay * ax * r[:, i1, j1])
    pts = lv["points"]
    point = pts[i, j] + ay * (pts[i1, j] - pts[i, j]) + ax * (pts[i, j1] - pts[i, j])
    dx, dy, bw, bh = (float(v[0, 0]) for v in polygon_boxes(rays[:, None, None]))
    return point, rays, (dx, dy, max(bw, MIN_SIDE), max(bh, MIN_SIDE))
