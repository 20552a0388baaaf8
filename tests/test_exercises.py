"""The fill-in exercises' checks: the library's own function passes, and each kind of wrong one fails with a hint."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from siampolar_lib.evaluation.metrics import BOUND_TH, f_measure, jaccard, seg2bmap
from siampolar_lib.exercises import (
    check_boundary_f,
    check_crop_matrix,
    check_fill_polygon,
    check_rays_loss,
    check_refinement_iteration,
    check_sgd_step,
    check_tight_box,
)
from siampolar_lib.exercises.boundaries import boundary_cases
from siampolar_lib.exercises.boxes import box_cases
from siampolar_lib.exercises.crops import crop_cases
from siampolar_lib.exercises.losses import loss_cases
from siampolar_lib.exercises.polygons import EDGE_MARGIN, edge_distance, polygon_cases
from siampolar_lib.exercises.refinement import refinement_cases
from siampolar_lib.exercises.sgd import copy_step_args, library_step, sgd_cases
from siampolar_lib.geometry.boxes import mask_to_box
from siampolar_lib.geometry.crops import crop_square
from siampolar_lib.geometry.polar import polygon_to_mask
from siampolar_lib.models.refine import RayRefiner, circular_pad
from siampolar_lib.training.losses import polar_iou_loss
from siampolar_lib.training.targets import polar_centerness
from siampolar_lib.training.train import GRAD_CLIP


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


# What the checks share.

@pytest.mark.parametrize("check, n_args", [(check_tight_box, 1), (check_fill_polygon, 2), (check_crop_matrix, 3),
                                           (check_rays_loss, 2), (check_sgd_step, 3), (check_boundary_f, 2)])
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


# Notebook 05: the ray loss, Polar IoU weighted by the centerness targets.

def rays_loss(pred, target, weight="target", iou="sums", loss="log", norm="weights", empty=True):
    """compute_losses' ray term by hand, over (P, R) rays; with a mistake chosen by argument."""
    if empty and pred.shape[0] == 0:
        return pred.sum() * 0.0
    low, high = torch.minimum(pred, target), torch.maximum(pred, target)
    ious = {"sums": low.sum(1) / high.sum(1), "rays": (low / high).mean(1),
            "squared": (low ** 2).sum(1) / (high ** 2).sum(1), "no_min_max": pred.sum(1) / target.sum(1)}[iou]
    of = lambda r: r.min(1).values / r.max(1).values  # noqa: E731
    w = {"target": torch.sqrt(of(target)), "pred": torch.sqrt(of(pred)), "no_sqrt": of(target),
         "none": torch.ones(pred.shape[0])}[weight]
    per = -torch.log(ious) if loss == "log" else 1 - ious
    return (per * w).sum() / (w.sum() if norm == "weights" else pred.shape[0])


def test_rays_loss_the_library_and_a_hand_version_pass(capsys):
    assert check_rays_loss(lambda p, t: polar_iou_loss(p, t, polar_centerness(t))) == []
    assert check_rays_loss(rays_loss) == []
    assert capsys.readouterr().out.count(": ok") == 2 * len(loss_cases())


@pytest.mark.parametrize("mistake, hint", [
    (dict(weight="none"), "centerness target"),
    (dict(weight="pred"), "predicted rays"),
    (dict(weight="no_sqrt"), "square root"),
    (dict(iou="squared"), "squared"),
    (dict(iou="rays"), "ratio of sums"),
    (dict(loss="one_minus"), "1 - IoU"),
    (dict(norm="count"), "number of positives"),
    (dict(iou="no_min_max"), "negative loss"),
])
def test_rays_loss_mistakes_fail_with_their_hint(mistake, hint):
    problems = check_rays_loss(lambda p, t: rays_loss(p, t, **mistake))
    assert problems and all(hint in p for p in problems), problems


def test_rays_loss_no_positive_is_an_exact_zero_with_a_gradient():
    nan = check_rays_loss(lambda p, t: rays_loss(p, t, empty=False))  # 0 / 0
    assert len(nan) == 1 and nan[0].startswith("no positive") and "pred_rays.sum() * 0.0" in nan[0]
    detached = check_rays_loss(lambda p, t: torch.tensor(0.0) if p.shape[0] == 0 else rays_loss(p, t))
    assert len(detached) == 1 and detached[0].startswith("no positive") and "no gradient" in detached[0]


def test_rays_loss_in_numpy_is_right_but_has_no_gradient():
    def in_numpy(pred, target):
        d, t = pred.detach().numpy(), target.numpy()
        if d.shape[0] == 0:
            return 0.0
        w = np.sqrt(t.min(1) / t.max(1))
        return float((-np.log(np.minimum(d, t).sum(1) / np.maximum(d, t).sum(1)) * w).sum() / w.sum())

    problems = check_rays_loss(in_numpy)
    assert len(problems) == len(loss_cases()) and all("no gradient" in p for p in problems)
    crash = check_rays_loss(lambda p, t: rays_loss(torch.from_numpy(p.numpy()), t))  # numpy() refuses a grad tensor
    assert crash and all("RuntimeError" in p and "not numpy" in p for p in crash if not p.startswith("no positive"))


def test_rays_loss_cases_are_the_same_each_time_and_leave_the_rngs_alone():
    np.random.seed(5)
    torch.manual_seed(5)
    before, before_torch = np.random.get_state()[1].copy(), torch.random.get_rng_state()
    first, second, other = loss_cases(), loss_cases(), loss_cases(seed=1)
    assert np.array_equal(np.random.get_state()[1], before) and torch.equal(torch.random.get_rng_state(), before_torch)
    flat = lambda cases: [(n, *a, e) for n, a, e in cases]  # noqa: E731
    same = lambda a, b: all(torch.equal(x, y) if torch.is_tensor(x) else x == y for x, y in zip(a, b))  # noqa: E731
    assert all(same(a, b) for a, b in zip(flat(first), flat(second)))
    assert not all(same(a, b) for a, b in zip(flat(first), flat(other)))  # the seed does draw something
    assert all(a[0].requires_grad and not a[1].requires_grad for _, a, _ in first)
    assert abs(first[1][2] - 0.417083) < 1e-6  # notebook 05's worked example, printed there


# Notebook 06: one clipped SGD step with momentum.

def sgd_step(groups, lr_scale, velocity, mistake=None, max_norm=GRAD_CLIP):
    """One clipped SGD step in place, written the way the exercise asks; with a mistake chosen by argument."""
    stepped = [w for g in groups for w in g["params"] if w.grad is not None]
    if mistake == "decay_in_clip":
        for g in groups:
            for w in g["params"]:
                if w.grad is not None:
                    w.grad = w.grad + g["weight_decay"] * w.detach()
    norm = float(torch.sqrt(sum((w.grad ** 2).sum() for w in stepped)))
    clip = {"no_clip": 1.0, "always_scale": max_norm / norm}.get(mistake, min(1.0, max_norm / norm))
    with torch.no_grad():
        for g in groups:
            lr = max(h["lr"] for h in groups) if mistake == "one_lr" else g["lr"]
            lr *= 1.0 if mistake == "no_lr_scale" else lr_scale
            decay = {"no_decay": 0.0, "decay_all": 1e-4, "decay_in_clip": 0.0}.get(mistake, g["weight_decay"])
            for w in g["params"]:
                if w.grad is None:
                    continue
                c = min(1.0, max_norm / float(w.grad.norm())) if mistake == "per_tensor" else clip
                d = c * w.grad + decay * w
                if w in velocity and mistake != "no_momentum":
                    d = g["momentum"] * velocity[w] + (0.1 * d if mistake == "dampening" else d)
                velocity[w] = d
                w.add_(lr * d if mistake == "ascent" else -lr * d)


def test_sgd_step_the_library_and_a_hand_version_pass(capsys):
    assert check_sgd_step(library_step) == []
    assert check_sgd_step(sgd_step) == []
    assert capsys.readouterr().out.count(": ok") == 2 * len(sgd_cases())


@pytest.mark.parametrize("mistake, hint, cases", [
    ("no_clip", "not clipped", {1, 3}),
    ("per_tensor", "on its own", {1}),
    ("always_scale", "scaled up", {0, 2}),
    ("decay_in_clip", "clipped with the gradient", {1, 3}),
    ("no_decay", "no weight decay", {0, 1, 2, 3}),
    ("decay_all", "biases and norm scales", {0, 1, 2, 3}),
    ("no_lr_scale", "schedule", {0, 1, 2, 3}),
    ("one_lr", "own lr", {0, 1, 2, 3}),
    ("no_momentum", "old velocity", {2, 3}),
    ("dampening", "damped", {2, 3}),
    ("ascent", "climbs", {0, 1, 2, 3}),
])
def test_sgd_step_mistakes_fail_where_they_show_with_their_hint(mistake, hint, cases):
    problems = check_sgd_step(lambda g, s, v: sgd_step(g, s, v, mistake=mistake))
    names = [name for name, _, _ in sgd_cases()]
    failed = {next(k for k, name in enumerate(names) if p.startswith(name + ": ")): p for p in problems}
    assert set(failed) >= cases and all(hint in failed[k] for k in cases), problems


def test_sgd_step_without_torch_no_grad_or_the_frozen_check_fails_with_a_hint():
    def no_guard(groups, lr_scale, velocity):
        for g in groups:
            for w in g["params"]:
                if w.grad is not None:
                    w -= g["lr"] * lr_scale * w.grad  # a leaf that requires grad: autograd refuses

    assert all("no_grad" in p for p in check_sgd_step(no_guard))

    def all_params(groups, lr_scale, velocity):
        with torch.no_grad():
            for g in groups:
                for w in g["params"]:
                    w -= g["lr"] * lr_scale * (w.grad + g["weight_decay"] * w)  # the frozen tensor's grad is None

    problems = check_sgd_step(all_params)
    assert len(problems) == len(sgd_cases()) and all("frozen" in p for p in problems)


def test_sgd_step_rebinding_or_a_lost_velocity_is_named():
    def rebinds(groups, lr_scale, velocity):
        for g in groups:
            for w in g["params"]:
                if w.grad is not None:
                    w = w - g["lr"] * lr_scale * w.grad  # noqa: F841 (the mistake: a new tensor, the parameter stays)

    assert all("no parameter changed" in p for p in check_sgd_step(rebinds))

    def new_list(groups, lr_scale, velocity):  # new tensors in the group's list: the network's own stay as they were
        for g in groups:
            g["params"] = [w if w.grad is None else w.detach() - g["lr"] * lr_scale * w.grad for w in g["params"]]

    assert all("no parameter changed" in p for p in check_sgd_step(new_list))
    lost = check_sgd_step(lambda g, s, v: sgd_step(g, s, dict(v)))  # the new velocities go to a copy
    assert len(lost) == len(sgd_cases()) and all("velocity[w]" in p and "store" in p for p in lost)
    assert sum("previous step's v" in p for p in lost) == 2  # the cases after a step: the old v is still there

    def by_id(groups, lr_scale, velocity):  # keyed by id(w): the next step would not find its velocity
        keyed = {w: velocity[id(w)] for g in groups for w in g["params"] if id(w) in velocity}
        sgd_step(groups, lr_scale, keyed)
        velocity.update({id(w): v for w, v in keyed.items()})

    problems = check_sgd_step(by_id)
    assert problems and all("velocity" in p for p in problems)


def test_sgd_cases_are_the_same_each_time_keep_their_gradients_and_leave_the_rng_alone():
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    first, second, other = sgd_cases(), sgd_cases(), sgd_cases(seed=1)
    assert torch.equal(torch.random.get_rng_state(), before)
    for (name, (groups, scale, velocity), (params, vs)), (_, (groups2, scale2, _), (params2, _)) in zip(first, second):
        assert scale == scale2 and all(torch.equal(a, b) for a, b in zip(params, params2)), name
        grads = [w.grad for g in groups for w in g["params"]]
        assert sum(d is None for d in grads) == 2 and all(d.dtype == torch.float64 for d in grads if d is not None)
        assert len(velocity) == (len(grads) - 2 if "after step" in name else 0)
        copied = copy_step_args((groups, scale, velocity))
        pairs = [(w, c) for g, h in zip(groups, copied[0]) for w, c in zip(g["params"], h["params"])]
        assert all(c is not w and torch.equal(w.grad, c.grad) for w, c in pairs if w.grad is not None)
        assert set(map(id, copied[2])) <= {id(c) for h in copied[0] for c in h["params"]}
    assert not torch.equal(first[0][2][0][-1], other[0][2][0][-1])  # the seed does draw something


# Notebook 07: the boundary measure F.

def boundary_f(pred, gt, radius=None, footprint="disk", boundary=seg2bmap, combine="F", empty=True):
    """DAVIS's F by distance transforms (as notebook 07 writes it); with a mistake chosen by argument."""
    if empty and not pred.any() and not gt.any():
        return 1.0
    pred_b, gt_b = boundary(pred), boundary(gt)
    if empty and (not pred_b.any() or not gt_b.any()):
        return 0.0
    r = int(np.ceil(BOUND_TH * np.hypot(*pred.shape))) if radius is None else radius(pred.shape)
    kind, size = {"disk": (cv2.DIST_L2, cv2.DIST_MASK_PRECISE), "square": (cv2.DIST_C, 3)}[footprint]
    dist = lambda b: cv2.distanceTransform((~b).view(np.uint8), kind, size)  # noqa: E731  to b's nearest pixel
    P, R = np.mean(dist(gt_b)[pred_b] <= r), np.mean(dist(pred_b)[gt_b] <= r)
    if combine == "P":
        return P
    if combine == "mean":
        return (P + R) / 2
    return 2 * P * R / (P + R) if (P + R > 0 or not empty) else 0.0


def test_boundary_f_the_library_and_a_hand_version_pass(capsys):
    assert check_boundary_f(f_measure) == []
    assert check_boundary_f(boundary_f) == []
    assert capsys.readouterr().out.count(": ok") == 2 * len(boundary_cases())


@pytest.mark.parametrize("wrong, hint", [
    (jaccard, "that is J"),
    (lambda p, g: boundary_f(p, g, radius=lambda s: 8), "a tolerance of 8 px"),
    (lambda p, g: boundary_f(p, g, radius=lambda s: int(BOUND_TH * np.hypot(*s))), "rounded down"),
    (lambda p, g: boundary_f(p, g, footprint="square"), "square"),
    (lambda p, g: boundary_f(p, g, combine="P"), "precision P alone"),
    (lambda p, g: boundary_f(p, g, combine="mean"), "harmonic"),
    (lambda p, g: boundary_f(p, g, boundary=lambda m: seg2bmap(np.pad(m, ((0, 1), (0, 1))))[:-1, :-1]), "edge"),
])
def test_boundary_f_mistakes_fail_with_their_hint(wrong, hint):
    problems = check_boundary_f(wrong)
    non_empty = [p for p in problems if "empty" not in p.split(":")[0]]
    assert non_empty and all(hint in p for p in non_empty), problems


def test_boundary_f_a_strict_distance_fails_on_the_frame_at_exactly_r():
    def strict(pred, gt):  # matched only closer than r
        return boundary_f(pred, gt, radius=lambda s: np.nextafter(np.ceil(BOUND_TH * np.hypot(*s)), 0))

    problems = check_boundary_f(strict)
    assert any(p.startswith("the same disc 8 px to the right") and "exactly r" in p for p in problems), problems


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the mistake takes 0 / 0 and the mean of no pixel, on purpose
def test_boundary_f_the_empty_cases_are_named():
    problems = check_boundary_f(lambda p, g: boundary_f(p, g, empty=False))
    named = {p.split(":")[0]: p for p in problems}
    assert set(named) == {"two boxes far apart", "an empty prediction of a visible object",
                          "both masks empty"}, problems
    assert "P = R = 0" in named["two boxes far apart"]
    assert "one mask is empty" in named["an empty prediction of a visible object"]
    assert "F = 1" in named["both masks empty"]


def test_boundary_cases_are_the_same_each_time_and_leave_the_global_rng_alone():
    np.random.seed(5)
    before = np.random.get_state()[1].copy()
    first, second = boundary_cases(), boundary_cases()
    assert np.array_equal(np.random.get_state()[1], before)
    assert all(same_case(a, b) for a, b in zip(first, second))
    assert not all(same_case(a, b) for a, b in zip(first, boundary_cases(seed=1)))
    assert [round(f, 2) for _, _, f in first[:2]] == [1.0, 1.0] and first[2][2] < 0.6  # r = 8 px at 854 x 480
