"""The check of notebook 06's fill-in: one clipped SGD step with momentum, against `train_step`'s clip + torch's SGD.

    problems = check_sgd_step(sgd_step)
    assert not problems, problems[0]
"""
from __future__ import annotations

import copy
import functools
from typing import Callable

import torch
from torch import nn

from siampolar_lib.exercises.common import Case, run_cases
from siampolar_lib.training.schedule import lr_factor, make_optimizer
from siampolar_lib.training.train import GRAD_CLIP

LR, WEIGHT_DECAY, MOMENTUM = 0.01, 1e-4, 0.9  # notebook 06's optimiser: make_optimizer(net, "sgd", LR, 1e-4)
ITERS, WARMUP = 60, 10  # notebook 06's quick run: each case's lr_scale is lr_factor(step, ITERS, WARMUP)
# The cases run in float64, and a parameter may differ from the library's by STEP_RTOL x the case's largest update:
# another order of float64 operations moves it by ~1e-13 of that, torch's clip divides by norm + 1e-6 (under 3e-8 of
# it, as the norm is 35 or more when it clips); the mistakes worth catching (a decayed bias, a missed clip, the old
# velocity ignored) move it by 1e-5 or more.
STEP_RTOL = 1e-7

SGD_CASES = (  # (what the case is, its step of the 60-step run, the gradients' joint norm, whether a step came before)
    ("step 0: no velocity yet, gradients of norm 9 (under 35: not clipped), lr x 1/3 (warm-up)", 0, 9.0, False),
    ("step 0 with gradients of norm 350: clipped together to norm 35", 0, 350.0, False),
    ("step 31, after step 30: v = 0.9 x step 30's velocity + the new d", 31, 12.0, True),
    ("step 45 after step 44, gradients of norm 120: clipped, then momentum", 45, 120.0, True),
)

SGD_CHECKLIST = ("check the clip factor min(1, max_norm / norm) with one norm over all gradients, d = clip x grad + "
                 "weight_decay x w with the group's weight_decay, v = momentum x velocity[w] + d (v = d when velocity "
                 "has no w) and w -= group lr x lr_scale x v")
MISTAKES = (  # (the mistake `_reference` makes, what to tell the learner)
    ("no_clip", "the gradients were not clipped: when their joint norm exceeds max_norm, scale them all by "
                "max_norm / norm"),
    ("per_tensor", "each tensor was clipped on its own: the norm is one number, the square root of the sum of the "
                   "squares of all gradients together"),
    ("always_scale", "gradients under the limit were scaled up: the factor is min(1, max_norm / norm)"),
    ("decay_in_clip", "the weight decay was clipped with the gradient: clip the gradients first, then add "
                      "weight_decay x w (torch's SGD adds it inside its step, after clip_grad_norm_)"),
    ("no_decay", "there is no weight decay: d = clip x grad + weight_decay x w, with the group's weight_decay"),
    ("decay_all", "biases and norm scales were decayed too: use each group's weight_decay (0 for tensors of one "
                  "dimension)"),
    ("no_lr_scale", "the schedule is missing: each group's lr is multiplied by lr_scale (1/3 at step 0)"),
    ("one_lr", "one lr for every group: use each group's own lr (the backbone's is a tenth of the head's), times "
               "lr_scale"),
    ("no_momentum", "the old velocity was ignored: v = momentum x velocity[w] + d once velocity holds w"),
    ("dampening", "the new d was damped: torch's SGD keeps v = momentum x v + d, not "
                  "momentum x v + (1 - momentum) x d"),
    ("lr_in_velocity", "the lr went into the velocity (v = momentum x v + lr x d, then w -= v): torch keeps "
                       "v = momentum x v + d and steps w -= lr x v"),
    ("ascent", "the step climbs the gradient: w <- w - lr x v, against it"),
)


def _tiny_model(g: torch.Generator) -> nn.Module:
    """A float64 network with SiamPolar's four parameter groups: backbone (a frozen conv, a GroupNorm, a conv), head."""
    model = nn.Module()
    model.backbone = nn.Sequential(nn.Conv2d(2, 4, 3), nn.GroupNorm(2, 4), nn.Conv2d(4, 4, 3))
    model.head = nn.Conv2d(4, 3, 1)
    model.double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=torch.float64))
    model.backbone[0].requires_grad_(False)  # a frozen stage: its .grad stays None and the step leaves it alone
    return model


def _draw_grads(model: nn.Module, norm: float, g: torch.Generator) -> None:
    """Give every trainable parameter a random .grad, all of them scaled to the joint L2 norm `norm`."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    grads = [torch.randn(p.shape, generator=g, dtype=torch.float64) for p in trainable]
    scale = norm / float(torch.sqrt(sum((d ** 2).sum() for d in grads)))
    for p, d in zip(trainable, grads):
        p.grad = d * scale


def library_step(groups: list[dict], lr_scale: float, velocity: dict) -> None:
    """`train_step`'s optimiser part, in place: clip_grad_norm_ at GRAD_CLIP, then torch's SGD from `velocity`.

    groups: make_optimizer(...).param_groups (base lrs); velocity {parameter: momentum buffer}, updated in place.
    """
    opt = torch.optim.SGD([dict(g, lr=g["lr"] * lr_scale) for g in groups], lr=LR)
    for p, v in velocity.items():
        opt.state[p]["momentum_buffer"] = v
    params = [p for g in groups for p in g["params"] if p.grad is not None]
    torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
    opt.step()
    velocity.update({p: opt.state[p]["momentum_buffer"] for p in params})


def copy_step_args(args: tuple) -> tuple:
    """A deep copy of (groups, lr_scale, velocity) that keeps each parameter's .grad (deepcopy drops it)."""
    new = copy.deepcopy(args)  # one memo: the copied velocity's keys are the copied parameters
    for old_group, new_group in zip(args[0], new[0]):
        for old, p in zip(old_group["params"], new_group["params"]):
            p.grad = None if old.grad is None else old.grad.clone()
    return new


def _lookup(velocity, w: torch.Tensor):
    """velocity[w] by identity, None when absent (keys that are not tensors, such as id(w) or names, are absent)."""
    return next((v for k, v in velocity.items() if k is w), None) if isinstance(velocity, dict) else None


def _state(params: list[torch.Tensor], velocity) -> tuple[list[torch.Tensor], list]:
    """The parameters, copied, and their velocities (None where velocity has none)."""
    vs = [_lookup(velocity, w) for w in params]
    return [w.detach().clone() for w in params], [v.detach().clone() if torch.is_tensor(v) else v for v in vs]


def sgd_cases(seed: int = 0) -> list[Case]:
    """The cases of `check_sgd_step`: (name, (groups, lr_scale, velocity), (parameters, velocities) after) each.

    Each case is a small float64 network's make_optimizer param_groups with random gradients (a frozen tensor has
    none), lr_scale = lr_factor(step, 60, 10) and the velocity the library's previous step left ({} at step 0). Drawn
    from torch.Generator(seed x 100 + case) under a forked RNG (nn's initialisers): the caller's RNG is untouched.
    """
    cases = []
    with torch.random.fork_rng(devices=[]):
        for k, (name, step, norm, after_a_step) in enumerate(SGD_CASES):
            g = torch.Generator().manual_seed(seed * 100 + k)
            model = _tiny_model(g)
            groups = make_optimizer(model, "sgd", LR, WEIGHT_DECAY, MOMENTUM).param_groups
            velocity = {}
            if after_a_step:
                _draw_grads(model, 20.0, g)
                library_step(groups, lr_factor(step - 1, ITERS, WARMUP), velocity)
            _draw_grads(model, norm, g)
            args = (groups, lr_factor(step, ITERS, WARMUP), velocity)
            twin_groups, lr_scale, twin_velocity = copy_step_args(args)
            library_step(twin_groups, lr_scale, twin_velocity)
            cases.append((name, args, _state([w for g in twin_groups for w in g["params"]], twin_velocity)))
    return cases


def _reference(args: tuple, mistake: str | None = None) -> list[torch.Tensor]:
    """The parameters after one step of the case's (groups, lr_scale, velocity), made with `mistake` (None: right)."""
    groups, lr_scale, velocity = args
    decay = lambda g: {"no_decay": 0.0, "decay_all": WEIGHT_DECAY}.get(mistake, g["weight_decay"])
    raw = {id(w): w.grad + decay(g) * w.detach() if mistake == "decay_in_clip" else w.grad
           for g in groups for w in g["params"] if w.grad is not None}
    norm = float(torch.sqrt(sum((d ** 2).sum() for d in raw.values())))
    clip = {"no_clip": 1.0, "always_scale": GRAD_CLIP / norm}.get(mistake, min(1.0, GRAD_CLIP / (norm + 1e-6)))
    out = []
    for g in groups:
        lr = max(h["lr"] for h in groups) if mistake == "one_lr" else g["lr"]
        lr *= 1.0 if mistake == "no_lr_scale" else lr_scale
        for p in g["params"]:
            if p.grad is None:
                out.append(p.detach().clone())
                continue
            w, grad = p.detach(), raw[id(p)]
            c = min(1.0, GRAD_CLIP / float(grad.norm())) if mistake == "per_tensor" else clip
            d = grad * c + (0.0 if mistake == "decay_in_clip" else decay(g)) * w
            old = None if mistake == "no_momentum" else _lookup(velocity, p)
            if mistake == "lr_in_velocity":
                step = lr * d if old is None else MOMENTUM * old + lr * d
            else:
                v = d if old is None else MOMENTUM * old + (1 - MOMENTUM if mistake == "dampening" else 1.0) * d
                step = lr * v
            out.append(w + step if mistake == "ascent" else w - step)
    return out


def _close(xs: list, ys: list, tol: float) -> bool:
    """Every x equals its y within tol (a missing or non-tensor x, or another shape, is not equal)."""
    return all(torch.is_tensor(x) and torch.is_tensor(y) and x.shape == y.shape
               and torch.allclose(x.double(), y.double(), rtol=0.0, atol=tol) for x, y in zip(xs, ys))


def _judge_step(got, expected, args) -> str | None:
    (params, vs, returned), (params_exp, vs_exp) = got, expected
    before = [w.detach() for g in args[0] for w in g["params"]]
    tol = STEP_RTOL * max(float((a - b).abs().max()) for a, b in zip(params_exp, before))
    if all(torch.equal(p, b) for p, b in zip(params, before)):
        returns = ", and the step returns nothing" if returned is not None else ""
        return ("no parameter changed: update each in place (under torch.no_grad(): w -= lr * v); w = w - lr * v "
                f"only gives the name w a new tensor{returns}")
    frozen = [i for i, w in enumerate(w for g in args[0] for w in g["params"]) if w.grad is None]
    if any(not torch.equal(params[i], before[i]) for i in frozen):
        return "a frozen parameter (its .grad is None) moved: the step skips it"
    if _close(params, params_exp, tol):
        wanted = [i for i, v in enumerate(vs_exp) if v is not None]
        v_tol = STEP_RTOL * max(float(vs_exp[i].abs().max()) for i in wanted)
        if _close([vs[i] for i in wanted], [vs_exp[i] for i in wanted], v_tol):
            return None
        if all(vs[i] is None for i in wanted):
            return ("the parameters are right, but velocity[w] does not hold the new v: store it there (keyed by the "
                    "parameter itself, as optimizer.state is), the next step reads it")
        old = [_lookup(args[2], w) for g in args[0] for w in g["params"]]
        if _close([vs[i] for i in wanted], [old[i] for i in wanted], 0.0):
            return "the parameters are right, but velocity[w] still holds the previous step's v: store the new v there"
        return "the parameters are right, but velocity[w] is not the step's v = momentum x velocity[w] + d: store v"
    for mistake, hint in MISTAKES:
        if _close(params, _reference(args, mistake), tol):
            return hint
    bad = [i for i, (p, q) in enumerate(zip(params, params_exp)) if not _close([p], [q], tol)]
    return f"{len(bad)} of {len(params)} parameter tensors differ from the library's; {SGD_CHECKLIST}"


def _stepped(fn: Callable) -> Callable:
    """fn(groups, lr_scale, velocity), which works in place, as a function returning (parameters, velocities, its
    return value) after it ran."""
    @functools.wraps(fn)
    def run(groups, lr_scale, velocity):
        params = [w for g in groups for w in g["params"]]  # the tensors themselves: a new list in groups changes none
        returned = fn(groups, lr_scale, velocity)
        return (*_state(params, velocity), returned)

    return run


def _explain_step_error(err: Exception, args) -> str:
    """A hint for an error the learner's step raised, from its message."""
    if "NoneType" in str(err):
        return "; a frozen parameter's .grad is None: skip it"
    if "leaf Variable" in str(err) or "requires grad" in str(err):
        return "; change the parameters under torch.no_grad(): autograd refuses an in-place change of a leaf it tracks"
    if "ambiguous" in str(err):
        return ("; ask `w in velocity` (keys are the parameters themselves) or `velocity.get(w) is None`, not the "
                "truth of a tensor")
    return ""


def check_sgd_step(fn: Callable, seed: int = 0) -> list[str]:
    """Compare fn(groups, lr_scale, velocity), one SGD step in place, with `train_step`'s on the `sgd_cases`.

    fn gets optimizer.param_groups (each with "params", its base "lr", "weight_decay" and "momentum"; a frozen
    parameter's .grad is None), the schedule's factor lr_scale, and velocity {parameter: v} ({} before the first
    step). It clips all gradients together at GRAD_CLIP, steps every parameter that has a gradient, w -= lr x
    lr_scale x v, and stores each new v in velocity. Prints a line per case; returns the problems found, one line
    each ([] when every parameter and velocity matches the library's within STEP_RTOL).
    """
    return run_cases(_stepped(fn), sgd_cases(seed), _judge_step,
                     f"the library's parameters and velocities, within {STEP_RTOL:g} of the step",
                     _explain_step_error, copy_args=copy_step_args)
