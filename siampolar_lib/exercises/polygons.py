"""The check of notebook 02's fill-in: a polygon filled by pixel centres, against `geometry.polar.polygon_to_mask`.

    problems = check_fill_polygon(fill_polygon)
    assert not problems, problems[0]
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from siampolar_lib.exercises.common import Case, run_cases
from siampolar_lib.geometry.polar import polygon_to_mask, rays_to_polygon

# Pixels that may differ from the library's mask: none. Every case keeps each pixel centre at least EDGE_MARGIN px
# from every edge (tests/test_exercises.py checks), so any order of float64 operations (~1e-14 px of rounding), and
# any rule for a centre exactly on an edge, puts each pixel on the same side as the library does.
FILL_TOLERANCE = 0
EDGE_MARGIN = 1e-6  # pixels


def polygon_cases(seed: int = 0) -> list[Case]:
    """The cases of `check_fill_polygon`: (name, (polygon (R, 2) float64 x, y pixels, shape (H, W)), mask) each.

    Simple polygons, most of them from rays (the course's polygons), on images under 30 x 30 px, drawn from
    np.random.default_rng(seed); the caller's RNG is untouched.
    """
    rng = np.random.default_rng(seed)
    star = np.where(np.arange(36) % 2 == 0, 10.0, 2.0) + rng.uniform(-0.4, 0.4, 36)
    gaps = rng.uniform(3.0, 8.0, 8)
    gaps[[1, 2, 5]] = 0.0
    named = (
        (f"36 rays of 5 to 9 px (seed {seed})", rays_to_polygon((13.37, 11.61), rng.uniform(5.0, 9.0, 36)), (24, 28)),
        ("a rectangle with edges between pixels (x 1.5 to 6.5, y 2.5 to 5.5): exactly 5 x 3 pixels",
         np.array([[1.5, 2.5], [6.5, 2.5], [6.5, 5.5], [1.5, 5.5]]), (9, 10)),
        ("a polygon partly off the image (left and bottom)",
         rays_to_polygon((2.3, 20.4), rng.uniform(4.0, 10.0, 36)), (24, 28)),
        ("a small triangle between pixel centres: no centre inside, an empty mask",
         np.array([[3.1, 3.1], [3.9, 3.2], [3.4, 3.8]]), (8, 8)),
        ("8 rays, 3 of them 0 px (a centre on the object's edge)", rays_to_polygon((14.62, 9.28), gaps), (20, 24)),
        ("a concave star of 36 rays, 2 and 10 px in turn", rays_to_polygon((12.41, 12.83), star), (26, 26)),
        ("36 rays of 0 px: nothing to fill", rays_to_polygon((5.3, 4.7), np.zeros(36)), (10, 12)),
    )
    return [(name, (poly, shape), polygon_to_mask(poly, shape)) for name, poly, shape in named]


def edge_distance(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Distance from each point (N, 2) to the polygon's (R, 2) nearest edge (closed): (N,) float64, pixels."""
    a = np.asarray(polygon, np.float64)
    d = np.roll(a, -1, axis=0) - a  # (R, 2) edge vectors
    rel = np.asarray(points, np.float64)[:, None, :] - a[None]  # (N, R, 2)
    t = np.clip((rel * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-300), 0.0, 1.0)  # a 0-length edge is its vertex
    return np.hypot(*np.moveaxis(rel - t[..., None] * d, -1, 0)).min(axis=1)


def _count(mask: np.ndarray, what: str) -> str:
    n = int(mask.sum())
    return f"{n} {what}" + ("" if n == 1 else "s")


def _pixels(mask: np.ndarray) -> str:
    rows, cols = np.nonzero(mask)
    shown = ", ".join(f"({r}, {c})" for r, c in list(zip(rows.tolist(), cols.tolist()))[:3])
    return shown + (", ..." if rows.size > 3 else "")


def _judge_fill(got, expected: np.ndarray, args) -> str | None:
    polygon, shape = args
    got = np.asarray(got)
    if got.shape != expected.shape:
        return (f"returned shape {got.shape}, expected {expected.shape}: the whole image, (H, W) = rows, columns")
    got = got != 0
    extra, missing = got & ~expected, expected & ~got
    if int((extra | missing).sum()) <= FILL_TOLERANCE:
        return None
    if np.array_equal(got, polygon_to_mask(np.asarray(polygon)[:, ::-1], shape)):
        return "x and y are swapped: a vertex is (x, y) = (column, row), and pixel (row i, column j) is at x = j, y = i"
    if np.array_equal(got, polygon_to_mask(np.asarray(polygon) - 0.5, shape)):
        return ("every pixel is judged at (j + 0.5, i + 0.5): pixel centres sit at integer coordinates, pixel "
                "(row i, column j) is centred on (x, y) = (j, i)")
    near = edge_distance(np.argwhere(extra)[:, ::-1], polygon) <= 0.75 if extra.any() else np.zeros(0, bool)
    if not missing.any() and near.all():
        return (f"{_count(extra, 'extra pixel')}, all on the outline, at (row, column) {_pixels(extra)}: a pixel is "
                "in the mask when its centre is inside the polygon, not when the outline touches it (as cv2.fillPoly "
                "fills it)")
    parts = [f"{_count(m, 'pixel')} only in {whose}, at (row, column) {_pixels(m)}"
             for m, whose in ((extra, "yours"), (missing, "the library's")) if m.any()]
    return f"{int((extra | missing).sum())} of {expected.size} pixels differ: " + "; ".join(parts)


def check_fill_polygon(fn: Callable, seed: int = 0) -> list[str]:
    """Compare fn(polygon, shape) -> (H, W) mask with `geometry.polar.polygon_to_mask` on the `polygon_cases`.

    fn gets a polygon (R, 2) float64 (x, y) pixels and an image shape (H, W); it returns the pixels whose centres lie
    inside the polygon, (H, W) bool (any nonzero counts as inside). Prints a line per case; returns the problems
    found, one line each ([] when every mask equals the library's, up to FILL_TOLERANCE pixels).
    """
    return run_cases(fn, polygon_cases(seed), _judge_fill, "the library's mask, pixel for pixel",
                     lambda err, args: ("; the polygon may reach off the image: test only the image's pixels (or clip "
                                        "a loop's range to 0..H-1, 0..W-1)" if isinstance(err, IndexError) else ""))
