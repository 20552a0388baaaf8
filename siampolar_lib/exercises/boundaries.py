"""The check of notebook 07's fill-in: the boundary measure F of two masks, against `evaluation.metrics.f_measure`.

    problems = check_boundary_f(boundary_f)
    assert not problems, problems[0]
"""
from __future__ import annotations

import math
from typing import Callable

import cv2
import numpy as np

from siampolar_lib.evaluation.metrics import BOUND_TH, boundary_radius, disk, f_measure, jaccard, seg2bmap
from siampolar_lib.exercises.common import Case, run_cases

# F is 2PR / (P + R) of pixel counts: float64 in another order of operations moves it by ~1e-16; a mistake (another
# tolerance, boundary or mean) changes at least one matched boundary pixel, which moves F by 1e-3 or more here.
F_ATOL = 1e-12


def _disc(shape: tuple[int, int], cx: float, cy: float, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return np.hypot(xx - cx, yy - cy) <= radius


def _blob(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Three random ellipses, joined: an (H, W) bool mask with a ragged outline."""
    out = np.zeros(shape, np.uint8)
    for _ in range(3):
        centre = tuple(int(v) for v in rng.uniform([40, 30], [shape[1] - 40, shape[0] - 30]))
        axes = tuple(int(v) for v in rng.uniform(8, 28, 2))
        cv2.ellipse(out, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return out > 0


def boundary_cases(seed: int = 0) -> list[Case]:
    """The cases of `check_boundary_f`: (name, (pred, gt) (H, W) bool, the library's F) each.

    A DAVIS-sized frame (854 x 480, r = 8 px) and small images (r = 1 or 2 px), the empty cases of the protocol, and a
    pair of blobs drawn from np.random.default_rng(seed); the caller's RNG is untouched.
    """
    rng = np.random.default_rng(seed)
    frame, small = (480, 854), (60, 80)
    box, lower = np.zeros(small, bool), np.zeros(small, bool)
    box[20:40, 25:55], lower[22:42, 25:55] = True, True  # 30 x 20 px, then 2 px lower
    corner, short = np.zeros(small, bool), np.zeros(small, bool)
    corner[35:, 50:], short[35:57, 50:77] = True, True  # to the last row and column (seg2bmap's edge rule); 3 px short
    blob = _blob(rng, (120, 160))
    grown = cv2.dilate(blob.view(np.uint8), np.ones((3, 3), np.uint8)) > 0
    moved = np.roll(grown, tuple(int(v) for v in rng.integers(2, 5, 2)), axis=(0, 1))  # 2 to 4 px down and right
    apart_a, apart_b = np.zeros(small, bool), np.zeros(small, bool)
    apart_a[5:15, 5:20], apart_b[35:55, 50:75] = True, True
    named = (
        ("a disc of radius 60 and the same disc 5 px to the right, on an 854 x 480 frame (r = 8 px): F = 1, J = 0.90",
         _disc(frame, 405, 240, 60), _disc(frame, 400, 240, 60)),
        ("the same disc 8 px to the right: every outline pixel within r = 8 px, F = 1 (r = 7 would give 0.78)",
         _disc(frame, 408, 240, 60), _disc(frame, 400, 240, 60)),
        ("the same disc 12 px to the right: part of each outline is farther than 8 px",
         _disc(frame, 412, 240, 60), _disc(frame, 400, 240, 60)),
        ("a 30 x 20 box and the box 2 px lower, on an 80 x 60 image (r = ceil(0.008 x 100) = 1 px)", lower, box),
        ("a mask reaching the last row and column of an 80 x 60 image, the true one ending 3 px before them", corner,
         short),
        (f"three ellipses, and a copy grown by 1 px and moved 2 to 4 px, on a 160 x 120 image (r = 2 px, seed {seed})",
         moved, blob),
        ("two boxes far apart: no boundary pixel matched, P = R = 0", apart_a, apart_b),
        ("an empty prediction of a visible object", np.zeros(frame, bool), _disc(frame, 400, 240, 60)),
        ("both masks empty: the object is absent and the tracker says so", np.zeros(small, bool),
         np.zeros(small, bool)),
    )
    return [(name, (pred, gt), f_measure(pred, gt)) for name, pred, gt in named]


def _matched(pred_b: np.ndarray, gt_b: np.ndarray, kernel: np.ndarray) -> tuple[float, float]:
    """Boundary precision and recall, a pixel matched when the other map has one under the kernel centred on it."""
    pred_near = cv2.dilate(pred_b.view(np.uint8), kernel) > 0
    gt_near = cv2.dilate(gt_b.view(np.uint8), kernel) > 0
    return (np.count_nonzero(pred_b & gt_near) / max(np.count_nonzero(pred_b), 1),
            np.count_nonzero(gt_b & pred_near) / max(np.count_nonzero(gt_b), 1))


def _f(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def _inner_boundary(mask: np.ndarray) -> np.ndarray:
    """The mask's pixels with a background 4-neighbour: an outline, but not DAVIS's."""
    eroded = cv2.erode(mask.view(np.uint8), cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)),
                       borderType=cv2.BORDER_REPLICATE)
    return mask & (eroded == 0)


def _zero_padded_boundary(mask: np.ndarray) -> np.ndarray:
    """seg2bmap with the image continued by background: a mask reaching the edge gets an outline along it."""
    return seg2bmap(np.pad(mask, ((0, 1), (0, 1))))[:-1, :-1]


def _mistakes(pred: np.ndarray, gt: np.ndarray) -> list[tuple[float, str]]:
    """The F each typical mistake gives on these masks (both non-empty), with what to tell the learner."""
    r = boundary_radius(pred.shape)
    diag = math.hypot(*pred.shape)
    pred_b, gt_b = seg2bmap(pred), seg2bmap(gt)
    p, rc = _matched(pred_b, gt_b, disk(r))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return [
        (jaccard(pred, gt), "that is J, the overlap of the regions: F compares the outlines (seg2bmap's maps)"),
        (_f(*_matched(pred_b, gt_b, disk(8))),
         f"that is F with a tolerance of 8 px (or as wide): r = ceil({BOUND_TH} x the image diagonal) is {r} px on "
         f"this {pred.shape[1]} x {pred.shape[0]} image (8 px on an 854 x 480 frame)"),
        (_f(*_matched(pred_b, gt_b, disk(int(BOUND_TH * diag)))),
         f"the tolerance is rounded down: r = ceil({BOUND_TH} x {diag:.1f}) = {r} px, not int(...)"),
        (_f(*_matched(pred_b, gt_b, (xx * xx + yy * yy < r * r).astype(np.uint8))),
         f"a pixel at distance exactly r = {r} px was not matched: matched means distance <= r"),
        (_f(*_matched(pred_b, gt_b, np.ones((2 * r + 1, 2 * r + 1), np.uint8))),
         f"matched within a square of side 2r + 1: match within the disk of radius r = {r} px (Euclidean distance)"),
        (p, "that is the precision P alone: F = 2PR / (P + R) of precision and recall"),
        (rc, "that is the recall R alone: F = 2PR / (P + R) of precision and recall"),
        ((p + rc) / 2, "that is the mean (P + R) / 2: F is the harmonic mean 2PR / (P + R)"),
        (_f(*_matched(_zero_padded_boundary(pred), _zero_padded_boundary(gt), disk(r))),
         "a mask reaching the image's edge got an outline along it: at the edge seg2bmap compares only neighbours "
         "inside the image (pad with a copy of the last row and column, not with zeros)"),
        (_f(*_matched(_inner_boundary(pred), _inner_boundary(gt), disk(r))),
         "the outlines are not DAVIS's: take seg2bmap(mask), a pixel differing from its east, south or south-east "
         "neighbour"),
    ]


def _judge_f(got, expected: float, args) -> str | None:
    pred, gt = args
    try:
        v = float(np.asarray(got, dtype=np.float64))
    except (TypeError, ValueError):
        return f"returned {type(got).__name__} {np.shape(got)}: expected one number, F in [0, 1]"
    if math.isclose(v, expected, rel_tol=0.0, abs_tol=F_ATOL):
        return None
    if not pred.any() and not gt.any():
        return f"returned {v:g}: both masks empty is a perfect answer, F = 1 (no boundary on either side, none missed)"
    if not pred.any() or not gt.any():
        return (f"returned {v:g}: one mask is empty, so one side has no boundary (P = 1 and R = 0, or the reverse) and "
                "F = 2PR / (P + R) = 0")
    if expected == 0.0 and math.isnan(v):
        return "returned NaN: no boundary pixel is matched, P = R = 0, and then F = 0 (not 0 / 0)"
    hints = [hint for wrong, hint in _mistakes(pred, gt) if math.isclose(v, wrong, rel_tol=0.0, abs_tol=F_ATOL)]
    if hints:  # two mistakes can give the same F on a case (r = 1 px: int() and "< r" both match distance 0 only)
        return hints[0] + (f" (or: {hints[1]})" if len(hints) > 1 else "")
    return (f"yours {v:.6f}, the library's {expected:.6f}: check the boundaries (seg2bmap), r = ceil({BOUND_TH} x "
            "diagonal), matched within distance <= r, P, R and F = 2PR / (P + R)")


def _explain_f_error(err: Exception, args) -> str:
    """A hint for an error the learner's F raised, from the case: an empty side, or nothing matched."""
    pred, gt = args
    if not pred.any() or not gt.any():
        return "; an empty mask has no boundary pixel: give F for the empty cases first (both empty 1, one empty 0)"
    if isinstance(err, ZeroDivisionError):
        return "; P + R = 0 here (no boundary pixel matched): F = 0"
    return ""


def check_boundary_f(fn: Callable, seed: int = 0) -> list[str]:
    """Compare fn(pred, gt) -> F with `evaluation.metrics.f_measure` on the cases of `boundary_cases`.

    fn gets two (H, W) bool masks and returns DAVIS's boundary F-measure: boundaries by seg2bmap, a boundary pixel
    matched when one of the other map lies within r = ceil(BOUND_TH x diagonal) px, P and R the matched shares,
    F = 2PR / (P + R) (0 when P + R = 0), 1 when both masks are empty and 0 when one is. Prints a line per case;
    returns the problems found, one line each ([] when every F is the library's within F_ATOL).
    """
    return run_cases(fn, boundary_cases(seed), _judge_f, f"the library's F, within {F_ATOL:g}", _explain_f_error)
