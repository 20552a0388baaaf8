"""Target assignment: centre sampling inside the mask, regress ranges, batched rays, centerness."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from siampolar_lib.geometry.polar import mask_to_rays, mass_centre
from siampolar_lib.models.grid import location_grid
from siampolar_lib.training.targets import build_targets, polar_centerness

S = 255


def disk(cx: float, cy: float, r: float, size: int = S) -> np.ndarray:
    """A filled disk mask (size, size) bool."""
    yy, xx = np.mgrid[:size, :size]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


SIDE = {8: 25, 16: 13}  # map sides as the SiamCAR-style network gives them on a 255 crop


def grids(strides=(8,)):
    """location_grid per level: 25x25 at stride 8 (x = 31 + 8 j), 13x13 at stride 16 (x = 31 + 16 j)."""
    return [location_grid(SIDE[s], SIDE[s], s, S) for s in strides]


def test_grid_sizes():
    g8, g16 = grids((8, 16))
    assert g8.shape == (25, 25, 2) and g16.shape == (13, 13, 2)
    assert float(g8[12, 12, 0]) == 127.0 and float(g16[6, 6, 1]) == 127.0


def test_empty_mask_is_all_negative():
    pts = grids((8, 16))
    t = build_targets(np.zeros((2, S, S), bool), pts, (8, 16), ((-1, 64), (64, np.inf)))
    assert len(t) == 2
    for lvl, p in zip(t, pts):
        H, W = p.shape[:2]
        assert lvl["labels"].shape == (2, H, W) and lvl["rays"].shape == (2, H, W, 36)
        assert lvl["centerness"].shape == (2, H, W)
        assert lvl["labels"].sum() == 0 and lvl["rays"].abs().sum() == 0 and lvl["centerness"].sum() == 0


def test_centred_disk_gives_3x3_positives_with_exact_rays():
    m = disk(127, 127, 30)
    pts = grids((8,))
    t = build_targets(m[None], pts, (8,), ((-1, np.inf),))[0]
    lab = t["labels"][0]
    assert lab.dtype == torch.float32 and int(lab.sum()) == 9  # |dx|, |dy| in {0, 8} < 1.5 * 8
    ii, jj = torch.nonzero(lab, as_tuple=True)
    assert set(ii.tolist()) == {11, 12, 13} and set(jj.tolist()) == {11, 12, 13}
    centres = pts[0][ii, jj].numpy()
    np.testing.assert_allclose(t["rays"][0][ii, jj].numpy(), mask_to_rays(m, centres), atol=1e-6)
    centre_rays = t["rays"][0, 12, 12]
    assert abs(float(centre_rays.mean()) - 30.0) < 0.6
    c = t["centerness"][0]
    expect = torch.sqrt(t["rays"][0][ii, jj].min(-1).values / t["rays"][0][ii, jj].max(-1).values)
    torch.testing.assert_close(c[ii, jj], expect)
    assert float(c[12, 12]) > 0.97 and float(c.max()) == float(c[12, 12])
    assert float(c[lab == 0].abs().sum()) == 0.0 and float(t["rays"][0][lab == 0].abs().sum()) == 0.0


def test_regress_ranges_pick_the_level_by_object_size():
    pts = grids((8, 16))
    ranges = ((-1, 64), (64, np.inf))
    small, big = disk(127, 127, 30), disk(127, 127, 90)
    t = build_targets(np.stack([small, big]), pts, (8, 16), ranges)
    assert int(t[0]["labels"][0].sum()) > 0 and int(t[1]["labels"][0].sum()) == 0
    assert int(t[0]["labels"][1].sum()) == 0 and int(t[1]["labels"][1].sum()) > 0
    # At stride 16 the window is +-24 px: offsets 0 and 16 per axis -> 3x3 again.
    assert int(t[1]["labels"][1].sum()) == 9


def test_off_centre_object_and_window_cut_to_box():
    # A thin horizontal bar: the centre window (+-12 px) is cut by the box (7 px tall) to one row.
    m = np.zeros((S, S), bool)
    m[124:131, 40:200] = True
    t = build_targets(m[None], grids((8,)), (8,), ((-1, np.inf),))[0]
    ii, jj = torch.nonzero(t["labels"][0], as_tuple=True)
    assert set(ii.tolist()) == {12}  # y = 127 only
    cx = mass_centre(m)[0]
    px = grids((8,))[0][ii, jj][:, 0].numpy()
    assert np.all(np.abs(px - cx) < 12) and len(px) == 3  # x = 111, 119, 127 around cx = 119.5


def test_ring_mask_falls_back_to_one_positive_inside_the_mask():
    yy, xx = np.mgrid[:S, :S]
    r2 = (xx - 127) ** 2 + (yy - 127) ** 2
    ring = (r2 <= 60 ** 2) & (r2 >= 45 ** 2)  # mass centre (127, 127) is in the hole
    pts = grids((8,))
    t = build_targets(ring[None], pts, (8,), ((-1, np.inf),))[0]
    lab = t["labels"][0]
    assert int(lab.sum()) == 1
    i, j = torch.nonzero(lab)[0].tolist()
    x, y = pts[0][i, j].round().long().tolist()
    assert ring[y, x]
    assert float(t["rays"][0, i, j].max()) > 0


def test_positive_locations_always_on_the_mask_random_ellipses():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:S, :S]
    masks = []
    for _ in range(12):
        cx, cy = rng.uniform(40, 215, 2)
        a, b = rng.uniform(6, 70, 2)
        th = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(th) + (yy - cy) * np.sin(th)
        v = -(xx - cx) * np.sin(th) + (yy - cy) * np.cos(th)
        masks.append((u / a) ** 2 + (v / b) ** 2 <= 1)
    pts = grids((8, 16))
    t = build_targets(torch.from_numpy(np.stack(masks)), pts, (8, 16), ((-1, 64), (64, np.inf)))
    for b, m in enumerate(masks):
        n = 0
        for lvl, p in zip(t, pts):
            ii, jj = torch.nonzero(lvl["labels"][b], as_tuple=True)
            n += ii.numel()
            xy = p[ii, jj].round().long().numpy()
            assert m[xy[:, 1], xy[:, 0]].all()
            assert (lvl["rays"][b][ii, jj] >= 0).all() and (lvl["centerness"][b][ii, jj] <= 1).all()
        assert 1 <= n <= 9 + 9, f"mask {b}: {n} positives"


def test_shapes_device_and_errors():
    pts = grids((8,))
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        build_targets(np.zeros((S, S), bool), pts, (8,), ((-1, np.inf),))
    with pytest.raises(ValueError, match="one entry per level"):
        build_targets(np.zeros((1, S, S), bool), pts, (8, 16), ((-1, np.inf),))
    t = build_targets(np.zeros((1, S, S), bool), pts, (8,), ((-1, np.inf),))
    assert t[0]["labels"].device == pts[0].device


def test_real_davis_mask(real_davis):
    """A real DAVIS mask cropped like a search image gives positives, rays that fit the mask."""
    import cv2

    from siampolar_lib.data.davis import load_sequence, read_mask
    from siampolar_lib.geometry.boxes import box_centre, mask_to_box
    from siampolar_lib.geometry.crops import crop_square, search_side
    from siampolar_lib.geometry.polar import mask_iou, polygon_to_mask, rays_to_polygon

    seq = load_sequence(real_davis, "car-roundabout")  # a compact, nearly star-shaped object
    m = read_mask(seq.mask_paths[10])
    box = mask_to_box(m)
    crop, _ = crop_square(m.astype(np.uint8), box_centre(box), search_side(box[2], box[3]), S,
                          pad_value=0, interpolation=cv2.INTER_NEAREST)
    crop = crop > 0
    pts = grids((8,))
    t = build_targets(crop[None], pts, (8,), ((-1, np.inf),))[0]
    lab = t["labels"][0]
    assert int(lab.sum()) >= 3
    for i, j in torch.nonzero(lab).tolist():  # every positive's polygon is the car (measured: 0.94-0.96)
        poly = rays_to_polygon(pts[0][i, j].numpy(), t["rays"][0, i, j].numpy())
        assert mask_iou(polygon_to_mask(poly, crop.shape), crop) > 0.9


@pytest.mark.parametrize("name", ["quick", "lite0", "r18"])
def test_config_points_equal_the_networks_grid(name):
    """The grid the DataLoader builds targets on is the one a real forward reports, for each backbone family."""
    from siampolar_lib import build_model
    from siampolar_lib.training.targets import config_points

    model = build_model(name, pretrained=False).eval()
    cfg = model.config
    with torch.no_grad():
        out = model(torch.zeros(1, 3, cfg.template_size, cfg.template_size),
                    torch.zeros(1, 3, cfg.search_size, cfg.search_size))
    pts = config_points(cfg)
    assert len(pts) == len(out["points"])
    for a, b in zip(pts, out["points"]):
        assert a.shape == b.shape and torch.equal(a, b)


def test_worker_targets_equal_the_step_targets(synthetic_davis):
    """TargetCollate (what DataLoader workers run) gives exactly the targets train_step would build."""
    from torch.utils.data import DataLoader, default_collate

    from siampolar_lib import build_model
    from siampolar_lib.data.pairs import PairDataset, worker_loader_kwargs
    from siampolar_lib.data.sources import videos_from_davis
    from siampolar_lib.models.config import QUICK
    from siampolar_lib.training.targets import TargetCollate, model_targets

    data = PairDataset(videos_from_davis(synthetic_davis), length=6, seed=1, geometry=QUICK)
    loader = DataLoader(data, batch_size=3, collate_fn=TargetCollate(QUICK), **worker_loader_kwargs(2))
    model = build_model(QUICK, pretrained=False).eval()
    positives = 0
    for n, batch in enumerate(loader):
        plain = default_collate([data[3 * n + i] for i in range(3)])
        assert torch.equal(batch["search_mask"], plain["search_mask"])
        with torch.no_grad():
            out = model(plain["template"], plain["search"])
        for got, want in zip(batch["targets"], model_targets(plain["search_mask"], out, QUICK)):
            assert got.keys() == want.keys()
            assert all(torch.equal(got[k], want[k]) for k in want)
        positives += int(sum(t["labels"].sum() for t in batch["targets"]))
    assert positives > 0  # the comparison covered positive locations, not only empty maps


def test_polar_centerness_matches_hand_values_and_has_finite_gradients():
    """sqrt(min(d) / max(d)) over the rays; 0 for all-zero rays, with finite gradients there too."""
    rays = torch.tensor([[1.0, 4.0, 2.0, 4.0], [3.0, 3.0, 3.0, 3.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(polar_centerness(rays).numpy(), [0.5, 1.0, 0.0], atol=1e-6)
    torch.manual_seed(0)
    pred = (torch.rand(8, 36, dtype=torch.float64) * 20 + 1).requires_grad_()
    polar_centerness(pred).sum().backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    zero = torch.zeros(2, 36, requires_grad=True)
    polar_centerness(zero).sum().backward()
    assert torch.isfinite(zero.grad).all()
