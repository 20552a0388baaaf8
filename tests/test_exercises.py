"""The fill-in exercises' checks: the library's own function passes, and each kind of wrong one fails with a hint."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from siampolar_lib.exercises import check_crop_matrix, check_fill_polygon, check_refinement_iteration, check_tight_box
from siampolar_lib.exercises.boxes import box_cases
from siampolar_lib.exercises.crops import crop_cases
from siampolar_lib.exercises.polygons import EDGE_MARGIN, edge_distance, polygon_cases
from siampolar_lib.exercises.refinement import refinement_cases
from siampolar_lib.geometry.boxes import mask_to_box
from siampolar_lib.geometry.crops import crop_square
from siampolar_lib.geometry.polar import polygon_to_mask
from siampolar_lib.models.refine import RayRefiner, circular_pad


def iteration(stage, fmap, rays, pad=circular_pad, bound=torch.tanh, relu=True):
    """One refinement iteration from the stage's parts (what the exercise asks), with a mistake chosen by argument."""
    B, R = rays.shape
    mid = (stage.size - 1) / 2.0
    pts = mid + rays[:, :, None, None] * stage.samples[None, None, :, None] * stage.dirs[None, :, None, :]
    feat = F.grid_sample(fmap, (pts + 0.5) / stage.size * 2 - 1, align_corners=False)  # (B, C, R, T)
    feat = feat.permute(0, 1, 3, 2).reshape(B, -1, R)
    x = torch.cat([feat, feat.mean(-1, keepdim=True).expand(-1, -1, R),
                   torch.log(rays.clamp(min=1e-2) / stage.size)[:, None]], dim=1)
    for i, conv in enumerate(stage.ray_convs):
        x = conv(pad(x))
        if relu and i < len(stage.ray_convs) - 1:
            x = torch.relu(x)
    return rays * torch.exp(bound(x[:, 0]))


def test_the_library_and_a_correct_hand_version_pass(capsys):
    assert check_refinement_iteration(RayRefiner.step) == []
    assert check_refinement_iteration(iteration) == []
    assert capsys.readouterr().out.count(": ok") == 8


def test_an_unwritten_skeleton_fails_once_and_says_so(capsys):
    def skeleton(stage, fmap, rays):
        raise NotImplementedError

    problems = check_refinement_iteration(skeleton)
    assert len(problems) == 1 and "not written yet" in problems[0]
    assert "not written yet" in capsys.readouterr().out


def test_zero_padding_fails_and_points_at_the_circle():
    problems = check_refinement_iteration(lambda s, f, r: iteration(s, f, r, pad=lambda x: F.pad(x, (1, 1))))
    assert problems and all("circle" in p for p in problems if "36 rays" in p)


def test_no_padding_fails_on_the_shape():
    problems = check_refinement_iteration(lambda s, f, r: iteration(s, f, r, pad=lambda x: x))
    assert len(problems) == 4 and all("do not pad" in p for p in problems)


def test_an_unbounded_update_and_unchanged_rays_fail():
    assert check_refinement_iteration(lambda s, f, r: iteration(s, f, r, bound=lambda d: 5 * d))
    unchanged = check_refinement_iteration(lambda s, f, r: r)
    assert len(unchanged) == 4 and all("unchanged" in p for p in unchanged)


def test_a_missing_relu_fails():
    assert len(check_refinement_iteration(lambda s, f, r: iteration(s, f, r, relu=False))) == 4


def test_calling_the_stage_itself_is_refused_and_the_stage_is_restored():
    problems = check_refinement_iteration(lambda s, f, r: s.step(f, r))
    assert len(problems) == 4 and all("RuntimeError" in p for p in problems)
    name, stage, fmap, rays = refinement_cases()[0]
    assert "step" not in vars(stage) and stage.step(fmap, rays).shape == rays.shape


def test_the_cases_leave_the_callers_rng_alone_and_have_real_updates():
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    cases = refinement_cases()
    assert torch.equal(torch.random.get_rng_state(), before)
    for name, stage, fmap, rays in cases:
        with torch.no_grad():
            change = (stage.step(fmap, rays) / rays).log().abs()
        assert change.max() > 0.01, name  # a non-identity stage: a wrong update cannot pass by accident


# Notebook 01: the tight box of a mask.

def tight_box(mask, one_short=False, swap=False):
    """The tight box (x, y, w, h) by hand, None for an empty mask; with a mistake chosen by argument."""
    cols, rows = np.flatnonzero(np.any(mask, axis=0)), np.flatnonzero(np.any(mask, axis=1))
    if cols.size == 0:
        return None
    x, y, w, h = cols[0], rows[0], cols[-1] - cols[0] + 1 - one_short, rows[-1] - rows[0] + 1 - one_short
    return (y, x, h, w) if swap else (x, y, w, h)


def test_tight_box_the_library_and_a_hand_version_pass(capsys):
    assert check_tight_box(mask_to_box) == []
    assert check_tight_box(tight_box) == []
    assert capsys.readouterr().out.count(": ok") == 2 * len(box_cases())


def test_tight_box_one_short_and_swapped_fail_with_their_hint():
    short = check_tight_box(lambda m: tight_box(m, one_short=True))
    assert len(short) == len(box_cases()) - 1 and all("one short" in p for p in short)  # all but the empty mask
    swapped = check_tight_box(lambda m: tight_box(m, swap=True))
    assert swapped and all("swapped" in p for p in swapped)
    assert any(p.startswith("a rectangle 5 px wide, 3 px high") for p in swapped)


def test_tight_box_the_empty_mask_is_none():
    rect = check_tight_box(lambda m: cv2.boundingRect(np.asarray(m, np.uint8)))  # (0, 0, 0, 0) for an empty mask
    assert len(rect) == 1 and rect[0].startswith("an empty mask") and "return None" in rect[0]

    def no_check(mask):  # min of an empty array raises
        ys, xs = np.nonzero(mask)
        return xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1

    crash = check_tight_box(no_check)
    assert len(crash) == 1 and crash[0].startswith("an empty mask") and "ValueError" in crash[0]


def test_tight_box_a_0_255_mask_is_a_mask():
    problems = check_tight_box(lambda m: tight_box(np.asarray(m) == 1))
    assert len(problems) == 1 and problems[0].startswith("a 0/255 uint8 mask") and "nonzero" in problems[0]


# Notebook 02: a polygon filled by pixel centres.

def fill_polygon(polygon, shape, centre_offset=0.0, swap=False):
    """Pixels whose centres are inside, by counting edge crossings to the right; with a mistake chosen by argument."""
    H, W = shape
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64) + centre_offset
    if swap:
        xs, ys = ys, xs
    p = np.asarray(polygon, np.float64)
    inside = np.zeros((H, W), bool)
    for (x0, y0), (x1, y1) in zip(p, np.roll(p, -1, axis=0)):
        if y0 != y1:
            inside ^= ((y0 <= ys) != (y1 <= ys)) & (xs < x0 + (ys - y0) * (x1 - x0) / (y1 - y0))
    return inside


def fill_poly_cv2(polygon, shape):
    """cv2.fillPoly on the rounded vertices: it also fills the pixels the outline touches."""
    out = np.zeros(shape, np.uint8)
    cv2.fillPoly(out, [np.round(np.asarray(polygon)).astype(np.int32)], 1)
    return out


def fill_unclipped(polygon, shape):
    """The polygon filled on its own box, then pasted pixel by pixel without clipping the box to the image."""
    p = np.asarray(polygon, np.float64)
    (x_lo, y_lo), (x_hi, y_hi) = np.floor(p.min(0)).astype(int), np.ceil(p.max(0)).astype(int)
    out = np.zeros(shape, bool)
    for i, j in np.argwhere(fill_polygon(p - (x_lo, y_lo), (y_hi - y_lo + 1, x_hi - x_lo + 1))):
        out[i + y_lo, j + x_lo] = True  # a negative index wraps round; one past the last row raises
    return out


def test_fill_polygon_the_library_and_a_hand_version_pass(capsys):
    assert check_fill_polygon(polygon_to_mask) == []
    assert check_fill_polygon(fill_polygon) == []
    assert capsys.readouterr().out.count(": ok") == 2 * len(polygon_cases())


def test_fill_polygon_cases_keep_every_pixel_centre_off_the_edges():
    """What makes FILL_TOLERANCE = 0 fair: no pixel centre near an edge, where rounding could flip it."""
    for name, (polygon, (H, W)), mask in polygon_cases():
        centres = np.stack(np.meshgrid(np.arange(W), np.arange(H)), axis=-1).reshape(-1, 2)
        assert edge_distance(centres, polygon).min() > 100 * EDGE_MARGIN, name
    names = [name for name, _, mask in polygon_cases() if not mask.any()]
    assert len(names) == 2  # the triangle between centres and the rays of 0 px: empty masks are cases too


def test_fill_polygon_a_halo_fails_and_names_the_outline():
    problems = check_fill_polygon(fill_poly_cv2)
    assert any(p.startswith("a small triangle between pixel centres") for p in problems)
    assert any(p.startswith("a rectangle with edges between pixels") and "outline" in p for p in problems)


def test_fill_polygon_half_pixel_centres_and_swapped_axes_fail_with_their_hint():
    shifted = check_fill_polygon(lambda p, s: fill_polygon(p, s, centre_offset=0.5))
    assert len(shifted) >= 4 and all("integer coordinates" in p for p in shifted)
    swapped = check_fill_polygon(lambda p, s: fill_polygon(p, s, swap=True))
    assert len(swapped) >= 4 and all("swapped" in p for p in swapped)


def test_fill_polygon_an_unclipped_loop_fails_on_the_polygon_off_the_image():
    problems = check_fill_polygon(fill_unclipped)
    assert len(problems) == 1 and problems[0].startswith("a polygon partly off the image")


# Notebook 04: the crop as a 2 x 3 matrix.

def crop_matrix(centre_xy, side, out_size, middle=None, inverse=False):
    """frame -> crop: crop = (frame - centre) x out_size / side + the middle pixel; with a mistake by argument."""
    s = out_size / side
    t = (out_size - 1) / 2 if middle is None else middle(out_size)
    cx, cy = centre_xy
    m = np.array([[s, 0.0, t - s * cx], [0.0, s, t - s * cy]])
    return cv2.invertAffineTransform(m) if inverse else m


def test_crop_matrix_the_library_and_a_hand_version_pass(capsys):
    frame = np.zeros((2, 2, 3), np.uint8)
    assert check_crop_matrix(lambda c, side, out: crop_square(frame, c, side, out)[1].matrix()) == []
    assert check_crop_matrix(crop_matrix) == []
    assert capsys.readouterr().out.count(": ok") == 2 * len(crop_cases())


@pytest.mark.parametrize("wrong, hint", [
    (lambda c, side, out: crop_matrix(c, side, out, middle=lambda n: n / 2), "half a pixel"),
    (lambda c, side, out: crop_matrix(c, side, out, inverse=True), "crop -> frame"),
    (lambda c, side, out: crop_matrix(c[::-1], side, out), "swapped"),
    (lambda c, side, out: crop_matrix(c, out * out / side, out), "out_size / side"),  # scale side / out
])
def test_crop_matrix_mistakes_fail_on_every_case_with_their_hint(wrong, hint):
    problems = check_crop_matrix(wrong)
    assert len(problems) == len(crop_cases()) and all(hint in p for p in problems), problems


def test_crop_matrix_a_wrong_shape_is_named():
    problems = check_crop_matrix(lambda c, side, out: np.vstack([crop_matrix(c, side, out), [0, 0, 1]]))
    assert len(problems) == len(crop_cases()) and all("3 x 3" in p for p in problems)


# What the three checks share.

@pytest.mark.parametrize("check, n_args", [(check_tight_box, 1), (check_fill_polygon, 2), (check_crop_matrix, 3)])
def test_an_unwritten_skeleton_is_one_problem_that_says_so(check, n_args, capsys):
    """The skeleton's NotImplementedError is not swallowed: it is the one problem, and the notebook's assert raises."""
    def skeleton(*args):
        assert len(args) == n_args
        raise NotImplementedError("write skeleton")

    problems = check(skeleton)
    assert len(problems) == 1 and "NotImplementedError('write skeleton')" in problems[0]
    assert "not written yet" in problems[0] and capsys.readouterr().out.count("\n") == 1
    with pytest.raises(AssertionError, match="not written yet"):
        assert not problems, problems[0]


@pytest.mark.parametrize("cases", [box_cases, polygon_cases, crop_cases])
def test_the_cases_are_the_same_each_time_and_leave_the_global_rng_alone(cases):
    np.random.seed(5)
    before = np.random.get_state()[1].copy()
    first, second = cases(), cases()
    assert np.array_equal(np.random.get_state()[1], before)
    assert len(first) == len(second) and all(same_case(a, b) for a, b in zip(first, second))
    assert not all(same_case(a, b) for a, b in zip(first, cases(seed=1)))  # the seed does draw something


def same_case(a, b) -> bool:
    """Two (name, args, expected) cases are equal, arrays compared element for element (None is None)."""
    flat = lambda case: [case[0], *case[1], case[2]]  # noqa: E731
    return all(type(x) is type(y) and (np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y)
               for x, y in zip(flat(a), flat(b)))
