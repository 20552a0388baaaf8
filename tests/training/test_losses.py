"""Losses against hand-computed values on tiny tensors, and finiteness with zero positives."""
from __future__ import annotations

import math

import pytest
import torch

from siampolar_lib.training.losses import LossConfig, compute_losses, polar_iou, polar_iou_loss


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def focal(x: float, y: float, alpha: float = 0.25, gamma: float = 2.0) -> float:
    """Sigmoid focal loss of one logit, written out from the formula."""
    p = sig(x)
    ce = -(y * math.log(p) + (1 - y) * math.log(1 - p))
    p_t = p * y + (1 - p) * (1 - y)
    a_t = alpha * y + (1 - alpha) * (1 - y)
    return a_t * (1 - p_t) ** gamma * ce


def bce(x: float, y: float) -> float:
    p = sig(x)
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def tiny(requires_grad: bool = True):
    """One level, B=1, a 2x2 map, R=4 rays; positives at (0,0) and (1,1)."""
    cls = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])  # (1, 1, 2, 2)
    ctr = torch.tensor([[[[0.3, 0.0], [0.0, -0.7]]]])
    rays = torch.ones(1, 4, 2, 2)
    rays[0, :, 0, 0] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    rays[0, :, 1, 1] = torch.tensor([5.0, 5.0, 5.0, 5.0])
    out = dict(cls=[cls.requires_grad_(requires_grad)], ctr=[ctr.requires_grad_(requires_grad)],
               rays=[rays.requires_grad_(requires_grad)])
    labels = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    trays = torch.zeros(1, 2, 2, 4)
    trays[0, 0, 0] = torch.tensor([2.0, 2.0, 2.0, 2.0])
    trays[0, 1, 1] = torch.tensor([4.0, 8.0, 4.0, 8.0])
    tctr = torch.zeros(1, 2, 2)
    tctr[0, 0, 0] = 1.0
    tctr[0, 1, 1] = math.sqrt(4.0 / 8.0)
    return out, [dict(labels=labels, rays=trays, centerness=tctr)]


def test_hand_computed_values():
    out, tg = tiny()
    L = compute_losses(out, tg, LossConfig())
    cls = (focal(2.0, 1) + focal(-1.0, 0) + focal(0.5, 0) + focal(-3.0, 1)) / 2
    w1, w2 = 1.0, math.sqrt(0.5)
    ctr = (bce(0.3, w1) + bce(-0.7, w2)) / 2
    # pred (1,2,3,4) vs target (2,2,2,2): sum min = 7, sum max = 11.
    # pred (5,5,5,5) vs target (4,8,4,8): sum min = 18, sum max = 26.
    rays = (w1 * -math.log(7 / 11) + w2 * -math.log(18 / 26)) / (w1 + w2)
    assert L["cls"].item() == pytest.approx(cls, rel=1e-5)
    assert L["ctr"].item() == pytest.approx(ctr, rel=1e-5)
    assert L["rays"].item() == pytest.approx(rays, rel=1e-5)
    assert L["total"].item() == pytest.approx(cls + ctr + rays, rel=1e-5)
    assert L["num_pos"].item() == 2.0


def test_weights_scale_the_total():
    out, tg = tiny()
    a = compute_losses(out, tg, LossConfig())
    b = compute_losses(out, tg, LossConfig(cls_weight=2.0, ctr_weight=0.0, rays_weight=3.0))
    assert b["total"].item() == pytest.approx(2 * a["cls"].item() + 3 * a["rays"].item(), rel=1e-5)


def test_zero_positives_are_finite_with_finite_gradients():
    out, tg = tiny()
    tg[0]["labels"].zero_()
    tg[0]["rays"].zero_()
    tg[0]["centerness"].zero_()
    L = compute_losses(out, tg)
    assert L["num_pos"].item() == 0.0 and L["ctr"].item() == 0.0 and L["rays"].item() == 0.0
    cls = sum(focal(x, 0) for x in (2.0, -1.0, 0.5, -3.0))  # divided by max(0, 1) = 1
    assert L["cls"].item() == pytest.approx(cls, rel=1e-5)
    L["total"].backward()
    for k in ("cls", "ctr", "rays"):
        g = out[k][0].grad
        assert g is not None and torch.isfinite(g).all()
    assert float(out["rays"][0].grad.abs().sum()) == 0.0


def test_perfect_rays_give_zero_ray_loss_and_gradient_points_the_right_way():
    pred = torch.tensor([[3.0, 3.0, 3.0]], requires_grad=True)
    target = torch.tensor([[3.0, 3.0, 3.0]])
    w = torch.tensor([0.5])
    assert polar_iou_loss(pred, target, w).item() == pytest.approx(0.0, abs=1e-6)
    short = torch.tensor([[1.0, 3.0, 3.0]], requires_grad=True)
    polar_iou_loss(short, target, w).backward()
    assert float(short.grad[0, 0]) < 0  # lengthening the short ray lowers the loss


def test_several_levels_are_concatenated():
    out, tg = tiny()
    out2 = {k: v + [v[0].detach().clone()] for k, v in out.items()}
    neg = {k: torch.zeros_like(v) for k, v in tg[0].items()}
    L1 = compute_losses(out, tg)
    L2 = compute_losses(out2, tg + [neg])
    extra = sum(focal(x, 0) for x in (2.0, -1.0, 0.5, -3.0)) / 2
    assert L2["cls"].item() == pytest.approx(L1["cls"].item() + extra, rel=1e-5)
    assert L2["rays"].item() == pytest.approx(L1["rays"].item(), rel=1e-6)


def test_mismatched_levels_or_shapes_are_clear_errors():
    out, tg = tiny()
    with pytest.raises(ValueError, match="levels"):
        compute_losses(out, tg + tg)
    bad = [dict(labels=torch.zeros(1, 3, 3), rays=torch.zeros(1, 3, 3, 4), centerness=torch.zeros(1, 3, 3))]
    with pytest.raises(ValueError, match="do not match"):
        compute_losses(out, bad)


def test_polar_iou_matches_hand_values():
    pred = torch.tensor([1.0, 2.0, 3.0, 4.0])
    tgt = torch.tensor([2.0, 2.0, 2.0, 2.0])
    # min: 1 + 2 + 2 + 2 = 7; max: 2 + 2 + 3 + 4 = 11
    assert abs(polar_iou(pred, tgt).item() - 7.0 / 11.0) < 1e-6
    assert abs(polar_iou(tgt, tgt).item() - 1.0) < 1e-6


def test_polar_iou_gradients_are_finite():
    torch.manual_seed(0)
    pred = (torch.rand(8, 36, dtype=torch.float64) * 20 + 1).requires_grad_()
    tgt = torch.rand(8, 36, dtype=torch.float64) * 20 + 1
    assert torch.autograd.gradcheck(lambda p: polar_iou(p, tgt), (pred,))
    (-torch.log(polar_iou(pred, tgt))).sum().backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    zero = torch.zeros(2, 36, requires_grad=True)
    polar_iou(zero, zero).sum().backward()
    assert torch.isfinite(zero.grad).all()


def test_a_registered_loss_term_is_weighted_logged_and_old_logs_still_read(tmp_path, monkeypatch):
    """Adding a loss term is one registration: compute_losses, its weight, the log's columns and read_log follow."""
    from siampolar_lib.training import losses as L
    from siampolar_lib.training.log import log_columns, read_log, write_log

    out, tg = tiny()
    before = compute_losses(out, tg, LossConfig())
    monkeypatch.setitem(L.LOSS_TERMS, "size", (lambda b, cfg: b.rays.mean() * 0.0 + 0.5, 2.0))
    after = compute_losses(out, tg, LossConfig())
    assert float(after["size"]) == 0.5 and float(after["total"]) == pytest.approx(float(before["total"]) + 1.0)
    assert log_columns() == ("step", "loss", "cls", "ctr", "rays", "size", "lr", "num_pos", "pairs_per_s")
    row = {"step": 1, "loss": 1.5, "cls": 0.4, "ctr": 0.3, "rays": 0.3, "size": 0.5, "lr": 0.01, "num_pos": 3,
           "pairs_per_s": 9.0}
    write_log(tmp_path / "new.csv", [row])
    assert read_log(tmp_path / "new.csv") == [row]
    old = "step,loss,cls,ctr,rays,lr,num_pos,pairs_per_s\n1,1.0,0.4,0.3,0.3,0.01,3,9.0\n"
    (tmp_path / "old.csv").write_text(old)  # a log written before the term existed
    assert read_log(tmp_path / "old.csv")[0]["rays"] == 0.3


def test_a_file_that_is_not_a_training_log_is_refused(tmp_path):
    from siampolar_lib.training.log import read_log

    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a training log"):
        read_log(tmp_path / "x.csv")
    (tmp_path / "y.csv").write_text("step,loss\n1,abc\n")
    with pytest.raises(ValueError, match="not a number"):
        read_log(tmp_path / "y.csv")
