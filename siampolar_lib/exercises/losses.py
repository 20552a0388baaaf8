"""The check of notebook 05's fill-in: the ray loss (Polar IoU, centerness-weighted), against `compute_losses`' own.

    problems = check_rays_loss(rays_loss)
    assert not problems, problems[0]
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from siampolar_lib.exercises.common import Case, run_cases
from siampolar_lib.training.losses import polar_iou_loss
from siampolar_lib.training.targets import polar_centerness

# A loss may differ from the library's by LOSS_RTOL x the loss + LOSS_ATOL: float32 sums of 36 rays round at ~1e-7
# of the sum, and the library's eps (1e-6 px added to sums of 4 px or more) moves a loss by under 1e-6; the mistakes
# worth catching (no weights, squared rays, 1 - IoU, another denominator) move it by 2% or more on these cases.
LOSS_RTOL = 1e-5
LOSS_ATOL = 1e-6
VARIANT_RTOL = 1e-4  # how close to a known mistake a wrong loss must be to be named as that mistake (float64 vs 32)
ANGLES = 2 * np.pi * np.arange(36) / 36  # ray k at angle 2 pi k / 36, as geometry.polar casts them


def ellipse_rays(a: float, b: float) -> np.ndarray:
    """The 36 rays (36,) px from the centre of an ellipse of half-axes a (x) and b (y): centerness sqrt(b / a)."""
    return a * b / np.hypot(b * np.cos(ANGLES), a * np.sin(ANGLES))


def loss_cases(seed: int = 0) -> list[Case]:
    """The cases of `check_rays_loss`: (name, (pred_rays (P, R), target_rays (P, R)) float32 crop px, loss) each.

    pred_rays requires a gradient, as the network's rays do. One case is drawn from np.random.default_rng(seed);
    the caller's RNGs (numpy's and torch's) are untouched.
    """
    rng = np.random.default_rng(seed)
    halves = rng.uniform([15.0, 0.1], [40.0, 1.0], (6, 2))  # half-axes a and the ratio b / a: centerness 0.3 .. 1
    targets = np.stack([ellipse_rays(a, a * q) for a, q in halves])
    noisy = targets * np.exp(rng.normal(0.0, 0.3, targets.shape))  # every ray off by ~30%, some long, some short
    round_, long_ = np.full(36, 20.0), ellipse_rays(30.0, 7.5)  # centerness 1 and 0.5
    named = (
        ("one positive: a disc of 20 px predicted as 15 px (IoU 0.75, centerness 1)", [np.full(36, 15.0)], [round_]),
        ("notebook 05's two positives of 4 rays (section 4): the loss printed there, 0.417083",
         [[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0]], [[2.0, 2.0, 2.0, 2.0], [4.0, 8.0, 4.0, 8.0]]),
        ("a prediction 1.5 x its target on every ray: min and max change roles", [1.5 * long_], [long_]),
        ("two positives, the round one predicted exactly (its loss is 0), the long one 20% short",
         [round_, 0.8 * long_], [round_, long_]),
        (f"6 positives of 36 rays: ellipses of centerness 0.3 to 1, predictions ~30% off (seed {seed})",
         noisy, targets),
        ("no positive (a batch of negative pairs): P = 0", np.zeros((0, 36)), np.zeros((0, 36))),
    )
    cases = []
    for name, pred, target in named:
        pred = torch.tensor(np.asarray(pred), dtype=torch.float32).requires_grad_(True)
        target = torch.tensor(np.asarray(target), dtype=torch.float32)
        expected = polar_iou_loss(pred.detach(), target, polar_centerness(target))  # what compute_losses' rays term is
        cases.append((name, (pred, target), float(expected)))
    return cases


def _mistakes(pred: torch.Tensor, target: torch.Tensor) -> list[tuple[float, str]]:
    """The loss each typical mistake gives on these rays (float64), with what to tell the learner."""
    d, t = pred.detach().double().numpy(), target.double().numpy()
    low, high = np.minimum(d, t), np.maximum(d, t)
    nll = -np.log(low.sum(1) / high.sum(1))  # (P,) -log Polar IoU
    w = np.sqrt(t.min(1) / t.max(1))  # (P,) centerness targets
    mean = lambda loss, weight: float((loss * weight).sum() / weight.sum())
    return [
        (mean(nll, np.ones_like(w)), "every positive counts the same: weight each by its centerness target "
                                     "sqrt(min d* / max d*), so central locations count more"),
        (mean(nll, np.sqrt(d.min(1) / d.max(1))), "the weights come from the predicted rays: the centerness *target* "
                                                  "is sqrt(min d* / max d*) of the target rays d*"),
        (mean(nll, w ** 2), "the weight min d* / max d* lacks its square root: the centerness is "
                            "sqrt(min d* / max d*)"),
        (mean(-np.log((low ** 2).sum(1) / (high ** 2).sum(1)), w),
         "the rays are squared (the sector-area IoU of section 4): the Polar IoU is sum_k min / sum_k max, unsquared"),
        (mean(-np.log((low / high).mean(1)), w), "that averages the per-ray ratios min / max: the Polar IoU is one "
                                                 "ratio of sums, sum_k min(d, d*) / sum_k max(d, d*)"),
        (mean(1.0 - np.exp(-nll), w), "that is 1 - IoU: the loss of one positive is -log(IoU)"),
        (float((nll * w).sum() / len(w)), "divided by the number of positives: divide the weighted sum by the sum "
                                          "of the weights"),
        (float((nll * w).sum()), "the weighted sum is not divided: divide it by the sum of the weights"),
    ]


def _judge_loss(got, expected: float, args) -> str | None:
    pred, target = args
    P = pred.shape[0]
    try:
        value = torch.as_tensor(got.detach() if torch.is_tensor(got) else got, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return f"returned {type(got).__name__}: expected the loss, a 0-d tensor"
    if value.numel() != 1:
        return f"returned shape {tuple(value.shape)}: the loss is one number, the weighted mean over the {P} positives"
    v = float(value)
    close = lambda a, b, rtol=LOSS_RTOL: math.isclose(a, b, rel_tol=rtol, abs_tol=LOSS_ATOL)
    if close(v, expected):
        if torch.is_tensor(got) and got.requires_grad:
            return None
        return ("the right value, but it carries no gradient: compute it with torch on pred_rays (no .item(), "
                "numpy or new tensor), so that backward() reaches the rays" +
                ("; with no positive return pred_rays.sum() * 0.0, an exact 0 that keeps the graph" if P == 0 else ""))
    if P == 0:
        return (f"returned {v:g} for a batch without positives: the sum of the weights is 0, so 0 / 0; return an "
                "exact 0 that keeps the graph, pred_rays.sum() * 0.0 (notebook 05, section 5)")
    if math.isnan(v):
        return "returned NaN: is a log or a division taken of 0 somewhere?"
    if v < 0:
        return ("a negative loss, so an IoU above 1: take min(d, d*) and max(d, d*) ray by ray, so that a ray too long "
                "costs as much as one too short")
    for wrong, hint in _mistakes(pred, target):
        if close(v, wrong, VARIANT_RTOL):
            return hint
    return (f"yours {v:.6g}, the library's {expected:.6g}: per positive -log(sum_k min / sum_k max), weighted by "
            "sqrt(min d* / max d*), then the weighted mean")


def check_rays_loss(fn: Callable, seed: int = 0) -> list[str]:
    """Compare fn(pred_rays, target_rays) -> loss with compute_losses' ray term on the cases of `loss_cases`.

    fn gets the P positives' predicted rays (P, R) float32 crop px (with a gradient) and target rays (P, R); it
    returns sum_i w_i -log(IoU_i) / sum_i w_i, IoU_i = sum_k min(d_ik, d*_ik) / sum_k max(d_ik, d*_ik),
    w_i = sqrt(min_k d*_ik / max_k d*_ik), as a 0-d tensor carrying the gradient (0 when P = 0). Prints a line per
    case; returns the problems found, one line each ([] when every loss is the library's within LOSS_RTOL).
    """
    return run_cases(fn, loss_cases(seed), _judge_loss, f"the library's loss, within {LOSS_RTOL:g} of it",
                     _explain_loss_error)


def _explain_loss_error(err: Exception, args) -> str:
    """A hint for an error the learner's loss raised, from the message and the case."""
    if args[0].shape[0] == 0:
        return "; with no positive (P = 0) there is nothing to average: return pred_rays.sum() * 0.0 first"
    if "numpy()" in str(err):
        return "; pred_rays carries a gradient: compute the loss with torch, not numpy, so that it keeps the gradient"
    if "in-place" in str(err):
        return "; pred_rays carries a gradient: change no tensor in place (clamp, not clamp_)"
    return ""
