"""The three losses of the polar head (PolarMask/SiamPolar): focal, centerness BCE, Polar IoU.

  cls  = sum over all locations of all levels of sigmoid_focal_loss(logit, label) / max(num_pos, 1)
  ctr  = mean over positives of BCE-with-logits(ctr_logit, centerness_target)
  rays = sum_pos w_i * -log(sum_k min(d_ik, d*_ik) / sum_k max(d_ik, d*_ik)) / sum_pos w_i,
         w_i = centerness target of positive i (central locations count more)
  total = w_cls * cls + w_ctr * ctr + w_rays * rays
Each term is registered (`register_loss`): a new term is one decorated function here; `compute_losses`, the
training log's columns and the loss curve follow the registry. Its weight is `LossConfig.<name>_weight` when that
field exists, else the weight it was registered with.
With no positive (a batch of negative pairs) ctr and rays are exact zeros that still carry a (zero) gradient,
so a training step never produces NaN.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import torch
import torch.nn.functional as F

from siampolar_lib.errors import check_fields


@dataclass(frozen=True)
class LossConfig:
    """Loss weights and focal-loss parameters (PolarMask defaults)."""

    cls_weight: float = 1.0  # focal classification loss
    ctr_weight: float = 1.0  # centerness BCE on positives
    rays_weight: float = 1.0  # Polar IoU loss on positives
    focal_alpha: float = 0.25  # weight of positives in the focal loss
    focal_gamma: float = 2.0  # focusing exponent
    eps: float = 1e-6  # keeps logs and divisions finite

    def __post_init__(self):
        """Refuse a weight or parameter no loss can use, naming its flag (a negative weight would train backwards)."""
        check_fields(self, "loss", LOSS_RULES)


_WEIGHT = (lambda v: v >= 0, "a weight >= 0")
LOSS_RULES = {"cls_weight": _WEIGHT, "ctr_weight": _WEIGHT, "rays_weight": _WEIGHT,
              "focal_alpha": (lambda v: 0 <= v <= 1, "a weight of positives in [0, 1]"),
              "focal_gamma": (lambda v: v >= 0, "an exponent >= 0"),
              "eps": (lambda v: 0 < v < 1, "a small number in (0, 1)")}


def _flatten_levels(outputs: dict, targets: Sequence[dict]) -> tuple[torch.Tensor, ...]:
    """Concatenate all levels: cls/ctr logits (M,), rays (M, R); labels (M,), ray targets (M, R), ctr targets (M,)."""
    if len(outputs["cls"]) != len(targets):
        raise ValueError(f"outputs have {len(outputs['cls'])} levels but targets have {len(targets)}")
    cls, ctr, rays, lab, trays, tctr = [], [], [], [], [], []
    for l, t in enumerate(targets):
        c = outputs["cls"][l]  # (B, 1, H, W)
        R = outputs["rays"][l].shape[1]
        if t["labels"].shape != c.shape[:1] + c.shape[2:]:
            raise ValueError(f"level {l}: labels {tuple(t['labels'].shape)} do not match cls {tuple(c.shape)}")
        cls.append(c.reshape(-1))
        ctr.append(outputs["ctr"][l].reshape(-1))
        rays.append(outputs["rays"][l].permute(0, 2, 3, 1).reshape(-1, R))  # (B*H*W, R)
        dev = c.device
        lab.append(t["labels"].to(dev, torch.float32).reshape(-1))
        trays.append(t["rays"].to(dev, torch.float32).reshape(-1, R))
        tctr.append(t["centerness"].to(dev, torch.float32).reshape(-1))
    return tuple(torch.cat(x, dim=0) for x in (cls, ctr, rays, lab, trays, tctr))


def polar_iou(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Polar IoU sum(min(d, d*)) / sum(max(d, d*)) over rays: (..., R), (..., R) -> (...,), differentiable."""
    inter = torch.minimum(pred, target).sum(dim=-1)
    union = torch.maximum(pred, target).sum(dim=-1)
    return (inter + eps) / (union + eps)


def polar_iou_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Weighted Polar IoU loss: pred, target (P, R) pixels, weight (P,) -> scalar sum(w * -log IoU) / sum(w)."""
    if pred.shape[0] == 0:
        return pred.sum() * 0.0
    loss = -torch.log(polar_iou(pred, target, eps=eps).clamp(min=eps))  # (P,)
    return (loss * weight).sum() / weight.sum().clamp(min=eps)


class FlatBatch(NamedTuple):
    """One batch's outputs and targets, all levels concatenated (M locations, R rays)."""

    cls: torch.Tensor  # (M,) classification logits
    ctr: torch.Tensor  # (M,) centerness logits
    rays: torch.Tensor  # (M, R) predicted rays, crop pixels
    labels: torch.Tensor  # (M,) 1 positive, 0 negative
    target_rays: torch.Tensor  # (M, R) crop pixels
    target_ctr: torch.Tensor  # (M,) centerness targets in [0, 1]
    pos: torch.Tensor  # (M,) bool, labels > 0.5
    num_pos: torch.Tensor  # 0-d float32


LossTerm = Callable[[FlatBatch, "LossConfig"], torch.Tensor]  # -> a scalar tensor carrying the gradient
LOSS_TERMS: dict[str, tuple[LossTerm, float]] = {}  # name -> (term, weight when LossConfig has no <name>_weight)


def register_loss(name: str, weight: float = 1.0) -> Callable[[LossTerm], LossTerm]:
    """Decorator adding a loss term under `name`: the one place a new term is written."""
    if not name.isidentifier() or name in ("total", "num_pos", "step", "loss", "lr"):
        raise ValueError(f"{name!r} cannot name a loss term")

    def add(fn: LossTerm) -> LossTerm:
        LOSS_TERMS[name] = (fn, weight)
        return fn

    return add


def loss_terms() -> tuple[str, ...]:
    """The registered terms' names, in registration order (cls, ctr, rays, then any added)."""
    return tuple(LOSS_TERMS)


def term_weight(cfg: LossConfig, name: str) -> float:
    """The weight of term `name`: LossConfig's `<name>_weight` field, else its registered weight."""
    return float(getattr(cfg, f"{name}_weight", LOSS_TERMS[name][1]))


@register_loss("cls")
def focal_term(b: FlatBatch, cfg: LossConfig) -> torch.Tensor:
    """Sigmoid focal loss over every location, normalised by the number of positives (at least 1)."""
    # imported here, not at the top: torchvision.ops pulls in torch._dynamo (about 2.6 s), which every command that
    # merely imports the training code (a CLI checking its flags, a refused run) would otherwise pay
    from torchvision.ops import sigmoid_focal_loss

    loss = sigmoid_focal_loss(b.cls, b.labels, alpha=cfg.focal_alpha, gamma=cfg.focal_gamma, reduction="sum")
    return loss / b.num_pos.clamp(min=1.0)


@register_loss("ctr")
def centerness_term(b: FlatBatch, cfg: LossConfig) -> torch.Tensor:
    """Centerness BCE-with-logits, mean over positives (an exact zero that keeps the graph without any)."""
    if bool(b.pos.any()):
        return F.binary_cross_entropy_with_logits(b.ctr[b.pos], b.target_ctr[b.pos], reduction="mean")
    return b.ctr.sum() * 0.0  # keeps the graph (and DDP/AMP) happy with an exact zero


@register_loss("rays")
def polar_iou_term(b: FlatBatch, cfg: LossConfig) -> torch.Tensor:
    """Polar IoU loss over positives, weighted by their centerness targets."""
    return polar_iou_loss(b.rays[b.pos], b.target_rays[b.pos], b.target_ctr[b.pos], eps=cfg.eps)


def compute_losses(outputs: dict, targets: Sequence[dict], cfg: LossConfig = LossConfig()) -> dict[str, torch.Tensor]:
    """Losses of one batch: outputs of SiamPolar.forward, targets of `targets.build_targets`.

    Returns dict(total, one scalar tensor per registered term (cls, ctr, rays, ...), num_pos: 0-d float tensor);
    total = the weighted sum of the terms and carries the gradient.
    """
    cls, ctr, rays, lab, trays, tctr = _flatten_levels(outputs, targets)
    pos = lab > 0.5
    batch = FlatBatch(cls, ctr, rays, lab, trays, tctr, pos, pos.sum().to(torch.float32))
    terms = {name: fn(batch, cfg) for name, (fn, _) in LOSS_TERMS.items()}
    total = sum(term_weight(cfg, name) * value for name, value in terms.items())
    return dict(total=total, **terms, num_pos=batch.num_pos.detach())
