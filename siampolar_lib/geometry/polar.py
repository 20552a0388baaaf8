"""The polar representation: a mask as a centre plus N ray lengths at equal angles.

Angles are defined once, here: theta_k = 2 pi k / N, k = 0..N-1. A ray of length d from the centre
(cx, cy) ends at (cx + d cos theta_k, cy + d sin theta_k) in image coordinates (x right, y down), so
ray 0 points right and ray N/4 points down. (The reference code uses 0 degrees = +y; we do not.)
Pixel centres sit at integer coordinates, as in OpenCV and COCO; pixel (i, j) is the unit square
around (j, i).

Mask -> rays, two ways (`mask_to_rays(..., method=)`):
- "cast" (default): exact ray casting. A ray finally leaves the union of the mask's pixel squares (the
  farthest exit, so a part beyond a gap is covered) through a boundary pixel, found analytically from
  the boundary pixels alone in O(centres x boundary pixels); the end is then moved to where the ray
  crosses the 0.5 level of the mask blurred by SIGMA = 0.7 px, a smooth outline rather than the
  pixel staircase ("exit" skips this step). It is the default because it is exact (no empty bins) and
  fits real masks more closely; "contour" is faster (measurements: docs/design.md, section 4).
- "contour": the PolarMask way. cv2.findContours points (boundary pixel centres, all outer parts) are
  binned by angle into N bins of width 2 pi / N centred on theta_k; a ray is the largest distance in its
  bin plus half a pixel (from the boundary pixel's centre to its edge). An empty bin is filled by linear
  interpolation (in angle, around the circle) between the nearest non-empty bins on either side (the
  reference code's binning differs: docs/design.md, section 4).
Both end a ray near the outline between inside and outside pixel centres, so that `polygon_to_mask`,
which keeps exactly the pixels whose centres lie inside the polygon, gives the mask back.
"""
from __future__ import annotations

import cv2
import numpy as np

NUM_RAYS: int = 36  # default ray count; models.config.ModelConfig.num_rays reads it (a model's own: model.config)
_SQUARE_RADIUS = 0.5 * np.sqrt(2.0)  # a pixel square lies within this distance of its centre


def ray_angles(n_rays: int = NUM_RAYS) -> np.ndarray:
    """The ray angles theta_k = 2 pi k / n: (n,) float64, radians."""
    return np.arange(n_rays, dtype=np.float64) * (2.0 * np.pi / n_rays)


def mass_centre(mask: np.ndarray) -> np.ndarray:
    """Mean (x, y) of the mask's pixels: (2,) float64, pixels. An empty mask raises ValueError."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        raise ValueError("an empty mask has no mass centre")
    return np.array([xs.mean(), ys.mean()])


def mask_box_centre(mask: np.ndarray) -> np.ndarray:
    """Centre (x, y) of the mask's tight box: (2,) float64, pixels. An empty mask raises ValueError."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        raise ValueError("an empty mask has no box centre")
    return np.array([(xs.min() + xs.max()) / 2.0, (ys.min() + ys.max()) / 2.0])


def boundary_pixels(mask: np.ndarray) -> np.ndarray:
    """Mask pixels with a 4-neighbour off the mask (or off the image): (P, 2) float64 (x, y), pixels."""
    m = np.asarray(mask).astype(np.uint8)
    inner = cv2.erode(m, np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8),
                      borderType=cv2.BORDER_CONSTANT, borderValue=0)
    ys, xs = np.nonzero(m & (1 - inner))
    return np.stack([xs, ys], axis=1).astype(np.float64)


def _square_exit(dx, dy, cos, sin):
    """Ray (cos, sin) from the origin vs the unit square centred at (dx, dy): (hit, t_exit), elementwise."""
    cos = np.where(cos == 0.0, 1e-12, cos)  # slab method; the sign of a zero does not matter
    sin = np.where(sin == 0.0, 1e-12, sin)
    ax, bx = (dx - 0.5) / cos, (dx + 0.5) / cos
    ay, by = (dy - 0.5) / sin, (dy + 0.5) / sin
    t_in = np.maximum(np.minimum(ax, bx), np.minimum(ay, by))
    t_out = np.minimum(np.maximum(ax, bx), np.maximum(ay, by))
    return (t_in <= t_out) & (t_out >= 0.0), t_out


def _cast(mask: np.ndarray, c: np.ndarray, n_rays: int) -> np.ndarray:
    """Farthest exit of each ray from the mask's pixel squares: c (N, 2) -> (N, n_rays) float64, 0 = miss."""
    b = boundary_pixels(mask)  # the farthest exit always leaves through a boundary pixel's edge
    out = np.zeros(c.shape[0] * n_rays, np.float64)
    step = 2.0 * np.pi / n_rays
    th = ray_angles(n_rays)
    cos_k, sin_k = np.cos(th), np.sin(th)
    near = _SQUARE_RADIUS / np.sin(step / 2.0)  # beyond this a square spans less than one ray gap
    chunk = max(1, 2_000_000 // max(len(b), 1))
    for s in range(0, c.shape[0], chunk):
        cc = c[s:s + chunk]
        dx = (b[None, :, 0] - cc[:, None, 0]).ravel()  # (n P,) one entry per (centre, boundary pixel)
        dy = (b[None, :, 1] - cc[:, None, 1]).ravel()
        row = np.repeat(np.arange(cc.shape[0]) + s, len(b))
        k0 = np.rint(np.arctan2(dy, dx) / step).astype(np.int64) % n_rays
        rho = np.hypot(dx, dy)
        # Candidate rays: the nearest in angle for every square; its neighbours too for the few near squares.
        reach = np.zeros(dx.shape, np.int64)
        close = rho < near
        reach[close] = np.ceil(np.arcsin(np.minimum(1.0, _SQUARE_RADIUS / np.maximum(rho[close], 1e-12)))
                               / step).astype(np.int64)
        reach = np.minimum(reach, n_rays // 2)
        for j in range(int(reach.max()) + 1):
            for sign in ((0,) if j == 0 else (1, -1)):
                sel = np.nonzero(reach >= j)[0] if j else np.arange(dx.size)
                k = (k0[sel] + sign * j) % n_rays
                ck, sk = cos_k[k], sin_k[k]
                # A square can only be hit if its centre is within its circumradius of the ray's line.
                keep = np.abs(dy[sel] * ck - dx[sel] * sk) <= _SQUARE_RADIUS
                sel, k, ck, sk = sel[keep], k[keep], ck[keep], sk[keep]
                hit, t = _square_exit(dx[sel], dy[sel], ck, sk)
                np.maximum.at(out, row[sel][hit] * n_rays + k[hit], t[hit])
    return out.reshape(c.shape[0], n_rays)


SIGMA = 0.7  # blur (pixels) before the 0.5 crossing: chosen on disks and DAVIS (benchmarks/bench_polar.py)
_MARGIN = 5  # > the blur's radius of 3 pixels
_OFFSETS = np.arange(-16, 13) / 8.0  # (S,) samples from 2 px before to 1.5 px after the exit, 1/8 px apart


def _bilinear_end(mask: np.ndarray, c: np.ndarray, t_exit: np.ndarray) -> np.ndarray:
    """Sub-pixel ray ends: the farthest 0.5 crossing of the slightly blurred mask near each square exit.

    c (N, 2), t_exit (N, R) farthest square exits (0 = miss) -> (N, R) float64. The squares' staircase
    puts the exit anywhere from 0.3 px inside to 0.7 px outside a smooth outline, which costs a disk of
    radius 20 1.3% IoU; the 0.5 level of the mask blurred by SIGMA is that smooth outline (disk r = 20:
    IoU 0.994). Falls back to t_exit - 0.5 where no sample in [-2, +1.5] px of the exit is inside.
    """
    n, R = t_exit.shape
    th = ray_angles(R)
    t = t_exit[..., None] + _OFFSETS  # (N, R, S)
    px = (c[:, None, None, 0] + t * np.cos(th)[None, :, None]).astype(np.float32).reshape(-1, _OFFSETS.size)
    py = (c[:, None, None, 1] + t * np.sin(th)[None, :, None]).astype(np.float32).reshape(-1, _OFFSETS.size)
    f = np.empty(px.shape, np.float32)
    field = mask.astype(np.float32)
    if SIGMA > 0:
        field = cv2.GaussianBlur(field, (0, 0), SIGMA)
    for s in range(0, px.shape[0], 30000):  # cv2.remap maps must stay under 32767 rows
        f[s:s + 30000] = cv2.remap(field, px[s:s + 30000], py[s:s + 30000], cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    f = f.reshape(n, R, -1)
    inside = f >= 0.5
    S = _OFFSETS.size
    last = S - 1 - np.argmax(inside[..., ::-1], axis=2)  # farthest sample still in
    any_in = inside.any(axis=2)
    j1 = np.minimum(last + 1, S - 1)
    f0 = np.take_along_axis(f, last[..., None], 2)[..., 0]
    f1 = np.take_along_axis(f, j1[..., None], 2)[..., 0]
    frac = np.where((j1 > last) & (f0 > f1), (f0 - 0.5) / np.maximum(f0 - f1, 1e-6), 0.0)
    end = t_exit + _OFFSETS[last] + frac / 8.0
    end = np.where(any_in, end, t_exit - 0.5)
    return np.where(t_exit > 0.0, np.maximum(end, 0.0), 0.0)


def _contour(mask: np.ndarray, c: np.ndarray, n_rays: int) -> np.ndarray:
    """PolarMask-style rays: max contour distance per angle bin + 0.5, empty bins interpolated: (N, n_rays)."""
    contours, _ = cv2.findContours(np.asarray(mask).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    pts = np.concatenate([q.reshape(-1, 2) for q in contours]).astype(np.float64)  # (P, 2) x, y
    n = c.shape[0]
    step = 2.0 * np.pi / n_rays
    dx = pts[None, :, 0] - c[:, None, 0]
    dy = pts[None, :, 1] - c[:, None, 1]
    k = np.rint(np.arctan2(dy, dx) / step).astype(np.int64) % n_rays
    best = np.full(n * n_rays, -1.0)
    np.maximum.at(best, (np.arange(n)[:, None] * n_rays + k).ravel(), np.hypot(dx, dy).ravel())
    best = best.reshape(n, n_rays)
    filled = best >= 0.0
    out = np.zeros((n, n_rays), np.float64)
    idx = np.arange(n_rays)
    for i in range(n):  # circular linear interpolation over the empty bins (np.interp with a period)
        f = filled[i]
        out[i] = np.interp(idx, idx[f], best[i, f] + 0.5, period=n_rays)
    return out


def mask_to_rays(mask: np.ndarray, centres, n_rays: int = NUM_RAYS, method: str = "cast") -> np.ndarray:
    """Rays from each centre to the mask's boundary: (H, W) mask, centres (N, 2) or (2,) x, y pixels.

    Returns rays: (N, n_rays) float32, pixels ((n_rays,) for a single (2,) centre). method "cast"
    (default: the farthest exit from the pixel squares, ended on the smooth outline), "exit" (that exit
    itself, no sub-pixel end) or "contour" (PolarMask binning); see the module docstring. Edge cases, no NaN: an empty
    mask gives all zeros; "cast" gives 0 for a ray that
    meets no mask pixel (e.g. from a centre outside the mask, rays pointing away), "contour" fills such
    angles by interpolation; a one-pixel mask from its own centre gives 0.5 to 0.71 (the square's edge).
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {m.shape}")
    m = m.astype(bool)
    c = np.asarray(centres, dtype=np.float64)
    single = c.ndim == 1
    c = c.reshape(-1, 2)
    if not np.all(np.isfinite(c)):
        raise ValueError("centres must be finite")
    if c.shape[0] == 0 or not m.any():
        out = np.zeros((c.shape[0], n_rays), np.float32)
        return out[0] if single and len(out) else out
    # Work on the mask's box plus a margin wider than the blur: zeros there are what lies off the image.
    ys, xs = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
    y0, x0 = max(ys[0] - _MARGIN, 0), max(xs[0] - _MARGIN, 0)
    m = m[y0:ys[-1] + _MARGIN + 1, x0:xs[-1] + _MARGIN + 1]
    c = c - np.array([x0, y0], np.float64)
    if method == "cast":
        rays = _bilinear_end(m, c, _cast(m, c, n_rays))
    elif method == "exit":
        rays = _cast(m, c, n_rays)
    elif method == "contour":
        rays = _contour(m, c, n_rays)
    else:
        raise ValueError(f"unknown method {method!r}: use 'cast', 'exit' or 'contour'")
    rays = rays.astype(np.float32)
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
    """Pixels whose centres lie inside a polygon (R, 2) float pixels: (H, W) bool (nonzero winding).

    Exact at any sub-pixel position (a vectorised scanline, one pass per pixel row; a centre exactly on
    an edge counts on its right/lower side). Not cv2.fillPoly, which also fills every pixel an edge
    touches (a half-pixel halo around the polygon).
    """
    H, W = shape[:2]
    out = np.zeros((H, W), bool)
    p = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    if p.shape[0] < 3 or not np.all(np.isfinite(p)):
        return out
    y_lo = max(int(np.ceil(p[:, 1].min())), 0)
    y_hi = min(int(np.floor(p[:, 1].max())), H - 1)
    if y_hi < y_lo:
        return out
    # Only the polygon's bounding columns are scanned (pixels left of x_lo or right of x_hi are outside).
    x_lo = max(int(np.ceil(p[:, 0].min())), 0)
    x_hi = min(int(np.floor(p[:, 0].max())), W - 1)
    if x_hi < x_lo:
        return out
    ys = np.arange(y_lo, y_hi + 1, dtype=np.float64)[:, None]  # (Y, 1) pixel-row centres
    x0, y0 = p[:, 0], p[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    up = (y0 <= ys) & (ys < y1)  # half-open, so a vertex on a row is crossed once
    down = (y1 <= ys) & (ys < y0)
    r_idx, e_idx = np.nonzero(up | down)
    dy = np.where(y1 == y0, 1.0, y1 - y0)
    xc = x0[e_idx] + (ys[r_idx, 0] - y0[e_idx]) * (x1 - x0)[e_idx] / dy[e_idx]  # crossing x of each (row, edge)
    width = x_hi - x_lo + 2  # one spare column: a crossing right of every pixel centre
    col = np.clip(np.ceil(xc), x_lo, x_hi + 1).astype(np.int64) - x_lo
    sign = np.where(up[r_idx, e_idx], 1.0, -1.0)
    diff = np.bincount(r_idx * width + col, weights=sign, minlength=ys.shape[0] * width)  # winding steps
    winding = np.cumsum(diff.reshape(ys.shape[0], width), axis=1)[:, : width - 1]
    out[y_lo:y_hi + 1, x_lo:x_hi + 1] = winding != 0
    return out


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Region IoU of two (H, W) masks; 1.0 when both are empty (the DAVIS convention)."""
    a = np.asarray(a, bool)
    b = np.asarray(b, bool)
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / union)


def _fit_on_box(m: np.ndarray, centres: np.ndarray, n_rays: int, method: str) -> np.ndarray:
    """Round-trip IoU for each centre on an already cropped mask: centres (N, 2) -> (N,) float64."""
    rays = mask_to_rays(m, centres, n_rays, method=method)
    polys = rays_to_polygon(centres, rays)
    return np.array([mask_iou(polygon_to_mask(p, m.shape), m) for p in polys])


def _crop(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mask's box plus a 3-pixel margin (rays end within 1.5 px of it): (crop, (x0, y0) offset)."""
    ys, xs = np.nonzero(mask)
    y0, x0 = max(ys.min() - 3, 0), max(xs.min() - 3, 0)
    return mask[y0:ys.max() + 4, x0:xs.max() + 4], np.array([x0, y0], np.float64)


def best_centre(mask: np.ndarray, n_rays: int = NUM_RAYS, grid: int = 5, method: str = "cast") -> np.ndarray:
    """The centre with the best round-trip IoU: (2,) float64 (x, y) pixels; empty mask -> ValueError.

    Tries a grid x grid lattice over the mask's box (points inside the mask) plus the mass and box
    centres, then refines by pattern search (8 neighbours, step halved from one lattice cell to 1 px).
    """
    m = np.asarray(mask).astype(bool)
    if not m.any():
        raise ValueError("an empty mask has no best centre")
    crop, off = _crop(m)
    ys, xs = np.nonzero(crop)
    gx = np.linspace(xs.min(), xs.max(), grid)
    gy = np.linspace(ys.min(), ys.max(), grid)
    cand = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
    cand = cand[crop[np.rint(cand[:, 1]).astype(int), np.rint(cand[:, 0]).astype(int)]]
    cand = np.vstack([cand, mass_centre(crop), mask_box_centre(crop)])
    ious = _fit_on_box(crop, cand, n_rays, method)
    best, best_iou = cand[np.argmax(ious)], ious.max()
    step = max(xs.max() - xs.min(), ys.max() - ys.min(), 1) / max(grid - 1, 1)
    moves = np.array([[dx, dy] for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy], np.float64)
    while step >= 1.0:
        nb = best + step * moves
        iou = _fit_on_box(crop, nb, n_rays, method)
        if iou.max() > best_iou:
            best, best_iou = nb[np.argmax(iou)], iou.max()
        else:
            step /= 2.0
    return best + off


def polar_fit_iou(mask: np.ndarray, n_rays: int = NUM_RAYS, centre="mass", method: str = "cast") -> float:
    """IoU of a mask with its own polar polygon (the representation's upper bound), in [0, 1].

    centre: "mass", "box", "best" (`best_centre`) or an (x, y) point in pixels. An empty mask gives 1.0
    (nothing to represent, and the empty polygon matches it: the DAVIS convention of `mask_iou`).
    """
    m = np.asarray(mask).astype(bool)
    if not m.any():
        return 1.0
    if isinstance(centre, str):
        if centre not in ("mass", "box", "best"):
            raise ValueError(f"unknown centre {centre!r}: use 'mass', 'box', 'best' or an (x, y) point")
        pick = {"mass": mass_centre, "box": mask_box_centre}
        c = pick.get(centre, lambda q: best_centre(q, n_rays, method=method))(m)
    else:
        c = np.asarray(centre, np.float64).reshape(2)
    crop, off = _crop(m)
    return float(_fit_on_box(crop, (c - off)[None], n_rays, method)[0])
