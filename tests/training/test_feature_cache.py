"""Cached backbone maps: windows line up with the pixels, pairs feed the network like crops do."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from siampolar_lib import build_model
from siampolar_lib.data.sources import videos_from_davis
from siampolar_lib.training.feature_cache import CacheConfig, CachedPairs, build_feature_cache, window_difference
from siampolar_lib.training.targets import TargetCollate


@pytest.fixture(scope="module")
def quick():
    torch.manual_seed(0)
    return build_model("quick", pretrained=False).eval()


@pytest.fixture(scope="module")
def cache(quick, synthetic_davis):
    videos = videos_from_davis(synthetic_davis)[:2]
    return videos, build_feature_cache(quick, videos, ccfg=CacheConfig(variants=2, template_variants=2, margin=32))


def test_cache_shapes_and_rows(quick, cache):
    videos, c = cache
    visible = sum(1 for v in videos for f in v.frames if f.mask_rle is not None)
    L = quick.config.search_size + 2 * 32
    assert len(c.search_rows) == 2 * visible and len(c.template_rows) == 2 * visible
    assert c.masks.shape == (2 * visible, L, L) and c.masks.any()
    assert c.step == 16  # the quick backbone stops at stride 16
    for s, m in c.search.items():
        assert m.dtype == torch.float16 and m.shape[-1] == -(-L // s)
    assert {fl for _, _, fl in c.template_rows} == {False, True}


def test_pairs_run_through_the_network_like_crops(quick, cache):
    _, c = cache
    pairs = CachedPairs(c, quick.config, length=40, seed=3)
    items = [pairs[i] for i in range(40)]
    negatives = [it for it in items if not it["positive"]]
    assert 0 < len(negatives) < 20 and not any(it["search_mask"].any() for it in negatives)  # negative_rate 0.2
    batch = TargetCollate(quick.config)(items[:8])
    out = quick(batch["template"], batch["search"])
    ref = quick(torch.zeros(8, 3, 127, 127), torch.zeros(8, 3, 255, 255))
    for k in ("cls", "ctr", "rays"):
        assert [t.shape for t in out[k]] == [t.shape for t in ref[k]]
    assert [t.shape[-2:] for t in batch["targets"][0].values()][0] == out["cls"][0].shape[-2:]
    a, b = pairs[5], pairs[5]  # an item is a pure function of (index, seed)
    assert torch.equal(a["search_mask"], b["search_mask"]) and all(torch.equal(a["search"][s], b["search"][s])
                                                                  for s in a["search"])


def test_window_maps_equal_the_crop_inside_and_differ_only_at_the_border(quick, synthetic_davis):
    from siampolar_lib.data.davis import first_box, load_sequence, read_frame

    seq = load_sequence(synthetic_davis, "synth00")
    frame, box = read_frame(seq.frame_paths[0]), first_box(seq)
    diff = window_difference(quick, frame, box, margin=32)
    assert set(diff) == set(quick.backbone.out_channels)
    for s, (ring, inner) in diff.items():
        assert np.isfinite(ring) and ring > 0.0, "the outer cells see context the lone crop pads with zeros"
        assert inner < ring, (s, ring, inner)


def test_bad_margin_is_refused(quick, cache):
    videos, _ = cache
    with pytest.raises(ValueError, match="multiple of the coarsest stride 16"):
        build_feature_cache(quick, videos, ccfg=CacheConfig(margin=24))


def test_a_cached_run_trains_and_needs_a_frozen_backbone(synthetic_davis, tmp_path):
    from siampolar_lib.errors import UserError
    from siampolar_lib.models.config import QUICK
    from siampolar_lib.training.config import OptimConfig, TrainConfig
    from siampolar_lib.training.log import read_log
    from siampolar_lib.training.train import train

    cfg = TrainConfig(model=QUICK, data=(str(synthetic_davis),), out=str(tmp_path / "run"), iters=4, batch=4,
                      optim=OptimConfig(warmup=0, freeze_backbone_iters=4), ckpt_every=0, device="cpu",
                      pretrained=False, progress=False, feature_cache=1)
    result = train(cfg)
    rows = read_log(result["log"])
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all(np.isfinite(r["loss"]) for r in rows)
    with pytest.raises(UserError, match="--freeze-backbone-iters 4"):
        train(TrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "run2"), "optim": OptimConfig(warmup=0)}))
