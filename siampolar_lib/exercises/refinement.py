"""The check of notebook 06c's fill-in: one refinement iteration from a RayRefiner's parts, against `RayRefiner.step`.

    problems = check_refinement_iteration(one_refinement_iteration)
    assert not problems, problems[0]
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from siampolar_lib.models.refine import RayRefiner

REFINE_RTOL = 1e-4  # a learner's rays must match the library's within 1e-4 x the ray + 1e-4 px (float32 rounding
REFINE_ATOL = 1e-4  # of another order of operations stays below 1e-5 x the ray)

# (what the case is, rays per outline, outlines in the batch, shortest and longest ray in crop pixels) on a 32 px crop
REFINE_CASES = (
    ("a circle of 36 rays of 9 px, batch 1", 36, 1, 9.0, 9.0),
    ("an irregular outline of 36 rays, batch 3", 36, 3, 4.0, 13.0),
    ("rays whose outer samples leave the crop, batch 2", 36, 2, 11.0, 19.0),
    ("8 rays, batch 2 (ray 0 and ray 7 are neighbours)", 8, 2, 5.0, 12.0),
)


REFINE_CHECKLIST = ("check the sample points (the crop's middle (S - 1) / 2 + t x ray x (cos, sin)), their grid_sample "
                    "coordinates ((p + 0.5) / S x 2 - 1, align_corners=False), the channel order (sampled features, "
                    "their mean over the rays, log(ray / S)), the ReLU after the first two convolutions and the "
                    "update rays x exp(tanh(delta))")


def refinement_cases(seed: int = 0) -> list[tuple[str, RayRefiner, torch.Tensor, torch.Tensor]]:
    """The cases of `check_refinement_iteration`: (name, stage, F (B, 16, 8, 8), rays (B, R) crop px) each.

    Each stage is a small RayRefiner (crop 32 px, 16 channels) whose last convolution is made non-zero (a new stage
    starts as the identity, which would hide a wrong update). Drawn under a forked RNG: the caller's is untouched.
    """
    cases = []
    with torch.random.fork_rng(devices=[]):
        for k, (name, num_rays, batch, lo, hi) in enumerate(REFINE_CASES):
            torch.manual_seed(seed * 100 + k)
            stage = RayRefiner((8, 8), channels=16, num_rays=num_rays, iters=1, size=32, hidden=24, gn_groups=4)
            nn.init.normal_(stage.ray_convs[-1].weight, std=0.05)
            nn.init.normal_(stage.ray_convs[-1].bias, std=0.1)
            fmap = torch.randn(batch, 16, 8, 8)
            rays = lo + (hi - lo) * torch.rand(batch, num_rays)
            cases.append((name, stage.eval(), fmap, rays))
    return cases


def _forbidden(*args, **kwargs):
    raise RuntimeError("the exercise is to write the iteration, not to call stage.step or stage(...)")


def _refinement_hint(got: torch.Tensor, rays: torch.Tensor, expected: torch.Tensor) -> str:
    """What a wrong result most likely got wrong, read from where and how it differs from the library's."""
    bad = ~torch.isclose(got, expected, rtol=REFINE_RTOL, atol=REFINE_ATOL)  # (B, R)
    R = rays.shape[1]
    if torch.allclose(got, rays, rtol=REFINE_RTOL, atol=REFINE_ATOL):
        return "it returned the input rays unchanged: multiply them by exp(tanh(delta))"
    ratio = got / rays
    if (ratio > math.e * (1 + 1e-4)).any() or (ratio < (1 - 1e-4) / math.e).any():
        return "a ray changed by a factor outside [1/e, e]: bound the update, rays x exp(tanh(delta))"
    if R > 6 and not bad[:, 3:R - 3].any():
        return ("only the rays near index 0 and index R-1 differ: the ray index is a circle; before each of the "
                "three convolutions put the last ray before the first and the first after the last (circular_pad)")
    b, r = divmod(int((got - expected).abs().argmax()), R)
    return (f"{int(bad.sum())} of {bad.numel()} rays differ (the most: outline {b}, ray {r}: yours "
            f"{float(got[b, r]):.3f} px, the library's {float(expected[b, r]):.3f} px); {REFINE_CHECKLIST}")


def check_refinement_iteration(fn: Callable, seed: int = 0) -> list[str]:
    """Compare fn(stage, fmap, rays) -> new rays (B, R) with `RayRefiner.step` on the cases of `refinement_cases`.

    fn gets a RayRefiner (use its ray_convs, samples, dirs and size; stage.step and stage(...) raise while it runs),
    F (B, C, h, w) and rays (B, R) crop pixels from the crop's middle pixel. Prints a line per case; returns the
    problems found, one line each ([] when every case matches within REFINE_RTOL / REFINE_ATOL).
    """
    problems = []
    for name, stage, fmap, rays in refinement_cases(seed):
        with torch.no_grad():
            expected = stage.step(fmap, rays)
        stage.step = stage.forward = _forbidden  # instance attributes shadow the methods while fn runs
        try:
            with torch.no_grad():
                got = fn(stage, fmap.clone(), rays.clone())
        except NotImplementedError:
            problems.append(f"{name}: fn raised NotImplementedError, so it is not written yet: write its body")
            print(problems[-1])
            return problems  # every other case would say the same
        except Exception as err:  # the learner's bug, reported as one line
            hint = ("; lost rays on the way? The library's convolutions do not pad: pad the ray index circularly "
                    "before each" if "size of tensor" in str(err) else "")
            problems.append(f"{name}: fn raised {type(err).__name__}: {err}{hint}")
        else:
            if not torch.is_tensor(got) or tuple(got.shape) != tuple(rays.shape):
                shape = tuple(got.shape) if torch.is_tensor(got) else type(got).__name__
                hint = (": the library's convolutions do not pad: pad the ray index circularly before each"
                        if torch.is_tensor(got) and got.dim() == 2 and got.shape[1] < rays.shape[1] else "")
                problems.append(f"{name}: fn returned {shape}, expected a tensor of shape {tuple(rays.shape)}{hint}")
            elif torch.allclose(got.float(), expected, rtol=REFINE_RTOL, atol=REFINE_ATOL):
                print(f"{name}: ok (within {REFINE_RTOL:g} x ray + {REFINE_ATOL:g} px of the library)")
                continue
            else:
                problems.append(f"{name}: {_refinement_hint(got.float(), rays, expected)}")
        finally:
            del stage.step, stage.forward
        shown = any(REFINE_CHECKLIST in p for p in problems[:-1])  # the long checklist once, then "as above"
        print(problems[-1].replace(REFINE_CHECKLIST, "check as above") if shown else problems[-1])
    return problems
