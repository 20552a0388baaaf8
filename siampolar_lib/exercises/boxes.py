"""The check of notebook 01's fill-in: the tight box of a mask, against `geometry.boxes.mask_to_box`.

    problems = check_tight_box(tight_box)
    assert not problems, problems[0]
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from siampolar_lib.exercises.common import Case, run_cases
from siampolar_lib.geometry.boxes import mask_to_box

BOX_ATOL = 0.0  # pixels: a mask's box is whole pixels, integers that every float type holds exactly; nothing to forgive


def box_cases(seed: int = 0) -> list[Case]:
    """The cases of `check_tight_box`: (name, (mask,), the library's box (4,) float64 or None) each.

    Small masks (H, W) (under 20 x 30 px), one drawn from np.random.default_rng(seed); the caller's RNG is untouched.
    """
    rng = np.random.default_rng(seed)
    masks = {name: np.zeros((12, 16), bool) for name in ("rect", "pixel", "parts", "edge", "empty")}
    masks["rect"][3:6, 4:9] = True  # rows 3-5, columns 4-8
    masks["pixel"][7, 2] = True
    masks["parts"][1:3, 2:4] = masks["parts"][8:11, 11:14] = True
    masks["edge"][5:, 10:] = True  # reaches the last row and the last column
    davis = np.zeros((12, 16), np.uint8)  # a DAVIS-2016 PNG holds 0 and 255
    davis[2:9, 6:8] = 255
    blob = np.zeros((20, 30), bool)
    blob[4:17, 5:27] = rng.random((13, 22)) < 0.08  # scattered pixels: the box spans the outermost ones
    named = (("a rectangle 5 px wide, 3 px high", masks["rect"]), ("a single pixel", masks["pixel"]),
             ("two parts (one box spans both)", masks["parts"]),
             ("a mask touching the last row and column", masks["edge"]),
             ("a 0/255 uint8 mask, as a DAVIS-2016 PNG stores it", davis),
             (f"scattered pixels (seed {seed})", blob),
             ("an empty mask (the object has left the frame)", masks["empty"]))
    return [(name, (m,), mask_to_box(m)) for name, m in named]


def _box_hint(got: np.ndarray, expected: np.ndarray) -> str:
    """What a wrong box most likely got wrong, read from how it differs from the library's."""
    x, y, w, h = expected
    if np.array_equal(got, [x, y, w - 1, h - 1]):
        return "w and h are one short: a box covers whole pixels, so w = x_max - x_min + 1 (the columns it covers)"
    if np.array_equal(got, [y, x, h, w]):
        return "x and y are swapped: np.nonzero(mask) gives (rows, columns), that is (y, x)"
    if np.array_equal(got, [x, y, x + w - 1, y + h - 1]) or np.array_equal(got, [x, y, x + w, y + h]):
        return "that is (x0, y0, x1, y1), two corners: the course's box is (x, y, w, h), a corner and a size"
    return f"yours {_plain(got)}, the library's {_plain(expected)} (x, y, w, h)"


def _plain(values) -> str:
    return "(" + ", ".join(f"{float(v):g}" for v in values) + ")"


def _judge_box(got, expected, args) -> str | None:
    mask = args[0]
    if expected is None:
        if got is None:
            return None
        return (f"returned {got!r} for an empty mask: return None, there is no box (cv2.boundingRect's (0, 0, 0, 0) "
                "would be a 0 x 0 box in the corner, not 'no object')")
    if got is None:
        return (f"returned None for a mask of {int(np.count_nonzero(mask))} pixels (values {np.unique(mask).tolist()}):"
                " a pixel is in the mask when it is nonzero, not only when it equals 1 or True")
    box = np.asarray(got, dtype=np.float64).reshape(-1) if np.size(got) == 4 else None
    if box is None:
        return f"returned {got!r}: expected 4 numbers (x, y, w, h)"
    if np.allclose(box, expected, rtol=0.0, atol=BOX_ATOL):
        return None
    return _box_hint(box, expected)


def check_tight_box(fn: Callable, seed: int = 0) -> list[str]:
    """Compare fn(mask) -> (x, y, w, h) or None with `geometry.boxes.mask_to_box` on the cases of `box_cases`.

    fn gets a mask (H, W) bool or 0/255 uint8 and returns its tight box (x, y, w, h), pixels (w = columns covered),
    or None when the mask is empty. Prints a line per case; returns the problems found, one line each ([] when every
    box equals the library's within BOX_ATOL).
    """
    return run_cases(fn, box_cases(seed), _judge_box, "the library's box",
                     lambda err, args: ("; an empty mask has no pixels to take min/max of: return None first"
                                        if not np.any(args[0]) else ""))
