"""Optimiser and learning-rate schedule for training: parameter groups, warm-up, cosine or step decay.

The learning rate is a pure function of the step (`lr_factor`), so a resumed run gets exactly the
rate an uninterrupted run would have had; the LambdaLR wrapper only applies it.
"""
from __future__ import annotations

import math

import torch
from torch import nn

BACKBONE_LR_MULT = 0.1  # pysot: the backbone, once unfrozen, learns at a tenth of the head's rate
STEP_MILESTONES = (2 / 3, 8 / 9)  # step schedule: x0.1 at these fractions of the run (REF R50: epochs 8/12, ~11/12)


def lr_factor(step: int, total: int, warmup: int = 500, schedule: str = "cosine",
              warmup_start: float = 1 / 3, gamma: float = 0.1, min_factor: float = 0.01) -> float:
    """Multiplier of the base lr at 0-based `step` of a `total`-step run: linear warm-up then decay.

    Warm-up goes linearly from `warmup_start` to 1 over `warmup` steps (REF: 500 steps from lr/3).
    "cosine" decays from 1 to `min_factor` over the remaining steps; "step" multiplies by `gamma` at
    each fraction of STEP_MILESTONES.
    """
    if schedule not in {"cosine", "step"}:
        raise ValueError(f"unknown schedule {schedule!r}: use cosine or step")
    warm = 1.0
    if warmup > 0 and step < warmup:
        warm = warmup_start + (1.0 - warmup_start) * step / warmup
    if schedule == "cosine":
        span = max(1, total - warmup)
        t = min(1.0, max(0.0, (step - warmup) / span))
        decay = min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * t))
    else:
        decay = gamma ** sum(step >= int(f * total) for f in STEP_MILESTONES)
    return warm * decay


def is_backbone_param(name: str) -> bool:
    """True for a parameter of the shared backbone (named `backbone.*` in SiamPolar)."""
    return name.startswith("backbone.") or ".backbone." in name


def param_groups(model: nn.Module, lr: float, weight_decay: float) -> list[dict]:
    """Four groups: backbone / rest x weights / (biases and norm scales, no weight decay).

    Every parameter is in a group from the start (frozen ones simply get no gradient), so the
    optimiser state has the same layout before and after unfreezing and across a resume.
    """
    groups = {(bb, nd): [] for bb in (True, False) for nd in (True, False)}
    for name, p in model.named_parameters():
        groups[(is_backbone_param(name), p.ndim <= 1)].append(p)
    out = []
    for (bb, nd), params in groups.items():
        if params:
            mult = BACKBONE_LR_MULT if bb else 1.0
            out.append({"params": params, "lr": lr * mult, "weight_decay": 0.0 if nd else weight_decay,
                        "backbone": bb})
    return out


def make_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float,
                   momentum: float = 0.9) -> torch.optim.Optimizer:
    """SGD (momentum, REF) or AdamW over `param_groups(model)`."""
    groups = param_groups(model, lr, weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}: use sgd or adamw")


def make_scheduler(optimizer: torch.optim.Optimizer, total: int, warmup: int,
                   schedule: str, start: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR applying `lr_factor` per step to every group's base lr, positioned at step `start`.

    start > 0 (a resume) needs an optimizer that a scheduler drove before (its groups hold "initial_lr",
    the base lr); the lrs are set to base x lr_factor(start, total), so a changed total re-plans the rest.
    """
    lr_factor(0, total, warmup, schedule)  # validate the schedule name early
    if start > 0:
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
    # LambdaLR's constructor takes one step: from start - 1 it lands on step `start`.
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total, warmup, schedule), last_epoch=start - 1)


def trainable_backbone(model: nn.Module) -> frozenset[str]:
    """Names of the backbone parameters the model itself leaves trainable (its own frozen stages excluded)."""
    return frozenset(n for n, p in model.named_parameters() if is_backbone_param(n) and p.requires_grad)


def set_backbone_frozen(model: nn.Module, frozen: bool, trainable: frozenset[str]) -> None:
    """Freeze the backbone (no grad, every module in eval mode) or give back `trainable` its gradients.

    Unfreezing re-applies `model.train(model.training)`, so the model's own BatchNorm policy holds again.
    """
    for name, p in model.named_parameters():
        if is_backbone_param(name):
            p.requires_grad_(not frozen and name in trainable)
    if frozen:
        for name, m in model.named_modules():
            if is_backbone_param(name + "."):
                m.eval()
    else:
        model.train(model.training)


def scale_lr(lr: float, reference_batch: int, batch: int) -> float:
    """Linear scaling rule (Goyal et al. 2017): the lr for a global `batch`, given `lr` tuned at `reference_batch`.

    Keep the warm-up when scaling up: the rule holds only once the first noisy steps are past.
    """
    if reference_batch < 1 or batch < 1:
        raise ValueError(f"batches must be >= 1, got reference {reference_batch} and {batch}")
    return lr * batch / reference_batch
