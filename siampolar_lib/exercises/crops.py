"""The check of notebook 04's fill-in: the crop as a 2 x 3 affine matrix, against the one `crop_square` warps with.

    problems = check_crop_matrix(crop_matrix)
    assert not problems, problems[0]
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from siampolar_lib.exercises.common import Case, run_cases
from siampolar_lib.geometry.crops import context_side, crop_square

# Crop pixels an entry may differ by: float64 in another order of operations moves an entry (at most ~1000 px here)
# by ~1e-13 px; the mistakes worth catching (half a pixel, an inverted scale) move it by 0.01 px or more.
MATRIX_ATOL = 1e-9


def crop_cases(seed: int = 0) -> list[Case]:
    """The cases of `check_crop_matrix`: (name, (centre_xy, side, out_size), the library's (2, 3) float64) each.

    Each expected matrix is `crop_square(...)[1].matrix()`, what crop_square gives cv2.warpAffine. One case is drawn
    from np.random.default_rng(seed); the caller's RNG is untouched.
    """
    rng = np.random.default_rng(seed)
    side = context_side(448.0, 345.0)  # notebook 01's 448 x 345 box: a 791.3 px template square
    named = (
        ("a template crop: centre (533, 288.5), side 791.3 -> 127 px", (533.0, 288.5), side, 127),
        ("its search crop: side 791.3 x 255 / 127 -> 255 px", (533.0, 288.5), side * 255 / 127, 255),
        ("a square leaving the frame: centre (-20.5, 10.25), side 120 -> 255 px (enlarged)",
         (-20.5, 10.25), 120.0, 255),
        ("a 4 px crop, whose middle pixel is 1.5, not 2: centre (5, 7), side 6", (5.0, 7.0), 6.0, 4),
        (f"a random centre and side (seed {seed}) -> 127 px",
         tuple(rng.uniform([0.0, 0.0], [854.0, 480.0]).tolist()), float(rng.uniform(20.0, 600.0)), 127),
    )
    frame = np.zeros((4, 4, 3), np.uint8)  # only the transform is kept
    return [(name, (centre, s, out), crop_square(frame, centre, s, out)[1].matrix()) for name, centre, s, out in named]


def _matrix_hint(m: np.ndarray, expected: np.ndarray, centre, side: float, out: int) -> str:
    """What a wrong matrix most likely got wrong, read from where it sends the crop's centre and how it scales."""
    close = lambda a, b: np.allclose(a, b, rtol=0.0, atol=MATRIX_ATOL)  # noqa: E731
    s, mid = out / side, (out - 1) / 2.0
    u, v = m @ np.array([centre[0], centre[1], 1.0])
    if close(m, cv2.invertAffineTransform(expected)):
        return ("that is the crop -> frame matrix: cv2.warpAffine takes frame -> crop (it inverts it to know where "
                "each crop pixel samples the frame)")
    if close(m[:, 2], expected[::-1, 2]):
        return "the translations of x and y are swapped: row 0 of the matrix gives the crop's x, from cx"
    if close(np.diag(m[:, :2]), [side / out] * 2):
        return (f"it scales by side / out_size = {side / out:.4g}: the scale is crop pixels per frame pixel, "
                "out_size / side")
    if close([u, v], [out / 2.0] * 2):
        return (f"it sends the centre to ({u:g}, {v:g}), half a pixel off: pixel centres sit at integers, so the "
                f"middle of pixels 0..{out - 1} is (out_size - 1) / 2 = {mid:g}")
    return (f"it scales by ({m[0, 0]:.4g}, {m[1, 1]:.4g}) and sends the centre to ({u:.4g}, {v:.4g}); the library's "
            f"scales by {s:.4g} and sends it to the middle pixel ({mid:g}, {mid:g})")


def _judge_matrix(got, expected: np.ndarray, args) -> str | None:
    got = np.asarray(got, dtype=np.float64)
    if got.shape == (3, 3):
        return "returned a 3 x 3 matrix: cv2.warpAffine takes the 2 x 3 affine part, its first two rows"
    if got.shape != (2, 3):
        return f"returned shape {got.shape}: expected the 2 x 3 matrix [[a, b, tx], [c, d, ty]] of cv2.warpAffine"
    if np.allclose(got, expected, rtol=0.0, atol=MATRIX_ATOL):
        return None
    return _matrix_hint(got, expected, *args)


def check_crop_matrix(fn: Callable, seed: int = 0) -> list[str]:
    """Compare fn(centre_xy, side, out_size) -> (2, 3) with the matrix `crop_square` warps with, on the `crop_cases`.

    fn gets the square's centre (cx, cy) and side in frame pixels and the crop's side out_size in pixels; it returns
    the affine matrix frame -> crop for cv2.warpAffine. Prints a line per case; returns the problems found, one line
    each ([] when every entry matches within MATRIX_ATOL crop pixels).
    """
    return run_cases(fn, crop_cases(seed), _judge_matrix, f"the library's matrix, within {MATRIX_ATOL:g} px")
