"""Training pairs: shapes, determinism, the mask following the crop, jitter, negatives, loader workers."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from siampolar_lib.data.augment import LUMA, colour_jitter, gaussian_blur
from siampolar_lib.data.coco import FrameRecord, Video, encode_rle
from siampolar_lib.data.pairs import PairConfig, PairDataset, worker_loader_kwargs
from siampolar_lib.geometry.boxes import mask_to_box
from siampolar_lib.geometry.crops import context_side

RED = (255, 0, 0)
PLAIN = PairConfig(template_shift=0, template_scale=0, search_shift=0, search_scale=0, flip_p=0,
                   colour_jitter=0, blur_p=0, negative_rate=0)  # no randomness but the frame choice


def make_video(tmp_path, name: str, n: int = 8, absent=(5,), colour=RED, h: int = 120, w: int = 160,
               seed: int = 0) -> Video:
    """A tiny video written as PNGs: a coloured disk (radius 14) moving right over grey noise."""
    rng = np.random.default_rng(seed)
    folder = tmp_path / name
    folder.mkdir()
    yy, xx = np.mgrid[:h, :w]
    frames = []
    for t in range(n):
        img = rng.integers(60, 140, (h, w, 3)).astype(np.uint8)
        mask = np.zeros((h, w), bool)
        if t not in absent:
            mask = (xx - (40 + 8 * t)) ** 2 + (yy - 60) ** 2 <= 14 ** 2
            img[mask] = colour
        path = folder / f"{t:05d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        box = mask_to_box(mask)
        frames.append(FrameRecord(path, t, encode_rle(mask) if box is not None else None,
                                  tuple(box) if box is not None else None, h, w))
    return Video(name, frames)


@pytest.fixture
def videos(tmp_path):
    return [make_video(tmp_path, "red", seed=0), make_video(tmp_path, "blue", colour=(0, 0, 255), absent=(), seed=1)]


def test_item_shapes_types_and_ranges(videos):
    ds = PairDataset(videos, PairConfig(), length=12, seed=0)
    assert len(ds) == 12
    d = ds[3]
    assert d["template"].shape == (3, 127, 127) and d["template"].dtype == torch.float32
    assert d["search"].shape == (3, 255, 255) and d["search"].dtype == torch.float32
    assert d["search_mask"].shape == (255, 255) and d["search_mask"].dtype == torch.bool
    assert isinstance(d["positive"], bool)
    for k in ("template", "search"):
        assert float(d[k].min()) >= 0.0 and float(d[k].max()) <= 255.0 and float(d[k].max()) > 1.0


def test_same_index_same_pair_and_seed_matters(videos):
    a = PairDataset(videos, PairConfig(), length=20, seed=7)
    b = PairDataset(videos, PairConfig(), length=20, seed=7)
    c = PairDataset(videos, PairConfig(), length=20, seed=8)
    for i in (0, 5, 19):
        x, y = a[i], b[i]
        assert all(torch.equal(x[k], y[k]) for k in ("template", "search", "search_mask"))
        assert x["positive"] == y["positive"]
    assert any(not torch.equal(a[i]["search"], c[i]["search"]) for i in range(5))


def test_workers_reproduce_the_main_process(videos):
    ds = PairDataset(videos, PairConfig(), length=8, seed=3)
    b0 = next(iter(DataLoader(ds, batch_size=8, num_workers=0)))
    b2 = next(iter(DataLoader(ds, batch_size=8, **worker_loader_kwargs(2))))
    for k in ("template", "search", "search_mask", "positive"):
        assert torch.equal(b0[k], b2[k]), k


def test_workers_start_after_the_main_process_used_opencv(videos):
    """A plain fork hangs here: the parent's OpenCV pool makes cv2.setNumThreads block in the child."""
    import cv2
    import numpy as np

    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # as the trainer's process has it; with it, a big OpenCV warp...
    cv2.warpAffine(np.zeros((1080, 1920, 3), np.uint8), np.float32([[1, 0, 3], [0, 1, 2]]), (1920, 1080))
    ds = PairDataset(videos, PairConfig(), length=4, seed=1)
    try:  # ...leaves a state in which a forked worker's cv2.setNumThreads never returns
        batch = next(iter(DataLoader(ds, batch_size=4, timeout=120, **worker_loader_kwargs(2))))
    finally:
        torch.set_num_threads(threads)
    assert batch["search"].shape[0] == 4
    assert worker_loader_kwargs(0) == {}


@pytest.mark.parametrize("flip", [0.0, 1.0])
def test_mask_follows_the_crop(videos, flip):
    """The disk is pure red in the frame, so red pixels of the search crop and its mask must agree."""
    cfg = PairConfig(search_shift=40, search_scale=0.15, flip_p=flip, colour_jitter=0, blur_p=0, negative_rate=0)
    ds = PairDataset(videos[:1], cfg, length=10, seed=0)
    for i in range(10):
        d = ds[i]
        s = d["search"].numpy()
        red = (s[0] > 200) & (s[1] < 60) & (s[2] < 60)
        m = d["search_mask"].numpy()
        assert m.sum() > 100
        agree = (red == m).mean()
        assert agree > 0.995, f"pair {i}: red and mask agree on {agree:.4f} of pixels"


def test_without_jitter_the_object_is_centred_at_template_scale(videos):
    ds = PairDataset(videos[:1], PLAIN, length=10, seed=0)
    for i in range(10):
        d = ds[i]
        x, y, w, h = mask_to_box(d["search_mask"].numpy())
        assert abs(x + w / 2 - 127.5) <= 1.0 and abs(y + h / 2 - 127.5) <= 1.0
        # The disk is 29 px wide; s_z = context_side(29, 29) maps to 127 crop px in both crops.
        assert abs(w - 29 * 127 / context_side(29, 29)) <= 2.0
        t = d["template"].numpy()
        red = (t[0] > 200) & (t[1] < 60) & (t[2] < 60)
        tx, ty, tw, th = mask_to_box(red)
        assert abs(tx + tw / 2 - 63.5) <= 1.0 and abs(tw - w) <= 2.0


def test_search_jitter_moves_the_object_within_the_shift(videos):
    cfg = PairConfig(search_shift=64, search_scale=0.18, flip_p=0, negative_rate=0)
    ds = PairDataset(videos[:1], cfg, length=40, seed=0)
    centres = []
    for i in range(40):
        x, y, w, h = mask_to_box(ds[i]["search_mask"].numpy())
        centres.append((x + w / 2, y + h / 2))
    c = np.array(centres) - 127.5
    assert np.abs(c).max() <= 64 * 1.18 + 2  # shift (in crop px) is applied before the zoom about the centre
    assert c.std(axis=0).min() > 20  # roughly uniform on +-64: std 37


def test_negatives_rate_and_empty_masks(videos):
    neg = PairDataset(videos, PairConfig(negative_rate=1.0), length=30, seed=0)
    for i in range(30):
        d = neg[i]
        assert d["positive"] is False and not d["search_mask"].any()
    plans = [neg.sample(i) for i in range(30)]
    assert any(p["search_video"] != p["video"] for p in plans)  # another video's object
    assert any(p["search_video"] == p["video"] for p in plans)  # red's absent frame 5
    for p in plans:
        if p["search_video"] == p["video"]:
            assert p["search"] == 5
    pos = PairDataset(videos, PairConfig(negative_rate=0.0), length=30, seed=0)
    assert all(pos[i]["positive"] and pos[i]["search_mask"].any() for i in range(30))
    mixed = PairDataset(videos, PairConfig(negative_rate=0.2), length=400, seed=0)
    rate = np.mean([not mixed.sample(i)["positive"] for i in range(400)])
    assert 0.13 < rate < 0.27


def test_negative_without_a_source_falls_back_to_positive(tmp_path):
    solo = [make_video(tmp_path, "solo", absent=())]
    ds = PairDataset(solo, PairConfig(negative_rate=1.0), length=10, seed=0)
    assert all(ds.sample(i)["positive"] for i in range(10))


def test_frame_choice_rules(videos):
    ds = PairDataset(videos, PairConfig(max_gap=2, first_frame_p=0.0, negative_rate=0.0), length=300, seed=0)
    gaps = []
    for i in range(300):
        p = ds.sample(i)
        v = videos[p["video"]]
        assert v.frames[p["template"]].mask_rle is not None and v.frames[p["search"]].mask_rle is not None
        gaps.append(abs(p["search"] - p["template"]))
    assert max(gaps) == 2 and min(gaps) == 0
    first = PairDataset(videos, PairConfig(first_frame_p=1.0), length=50, seed=0)
    assert all(first.sample(i)["template"] == 0 for i in range(50))
    anyg = PairDataset(videos, PairConfig(first_frame_p=0.0, negative_rate=0.0), length=300, seed=0)
    assert max(abs(anyg.sample(i)["search"] - anyg.sample(i)["template"]) for i in range(300)) >= 6


def test_bad_input_errors(tmp_path):
    empty = make_video(tmp_path, "empty", n=3, absent=(0, 1, 2))
    with pytest.raises(ValueError, match="non-empty mask.*empty"):
        PairDataset([empty], PairConfig())
    with pytest.raises(ValueError, match="length"):
        PairDataset([make_video(tmp_path, "ok")], PairConfig(), length=0)
    ds = PairDataset([make_video(tmp_path, "ok2")], PairConfig(), length=3)
    with pytest.raises(IndexError):
        ds[3]


def test_colour_jitter_matches_the_written_out_formula():
    img = np.random.default_rng(0).integers(0, 256, (20, 30, 3)).astype(np.uint8)
    out = colour_jitter(img, np.random.default_rng(1), 0.3)
    b, c, s = 1 + np.random.default_rng(1).uniform(-0.3, 0.3, 3)
    x = img.astype(np.float64) * b  # brightness
    g = x @ LUMA
    x = (x - g.mean()) * c + g.mean()  # contrast
    g = (x @ LUMA)[..., None]
    x = np.clip(g + (x - g) * s, 0, 255)  # saturation
    np.testing.assert_allclose(out, x, atol=1e-3)
    np.testing.assert_array_equal(colour_jitter(img, np.random.default_rng(1), 0.0), img.astype(np.float32))
    blurred = gaussian_blur(img.astype(np.float32), np.random.default_rng(2))
    assert blurred.shape == img.shape and blurred.std() < img.std()


def test_copy_paste_keeps_the_object_and_replaces_its_surroundings(videos):
    """paste_p 1: every positive search crop is its object over another video's frame; nothing else changes."""
    from dataclasses import replace

    from siampolar_lib.data.pairs import PASTE_FEATHER

    cfg = replace(PairConfig(), blur_p=0.0)
    plain = PairDataset(videos, cfg, length=16, seed=3)
    pasted = PairDataset(videos, replace(cfg, paste_p=1.0), length=16, seed=3)
    ring = int(np.ceil(4 * PASTE_FEATHER))  # the feather's reach outside the mask, crop pixels
    changed = 0
    for i in range(16):
        a, b = plain[i], pasted[i]
        assert torch.equal(a["template"], b["template"]) and torch.equal(a["search_mask"], b["search_mask"])
        assert a["positive"] == b["positive"]
        m = a["search_mask"].numpy()
        if not a["positive"] or not m.any():
            assert torch.equal(a["search"], b["search"]), "negatives are never pasted"
            continue
        inside = m[None].repeat(3, 0)
        assert torch.equal(a["search"][inside], b["search"][inside]), "the object's own pixels are kept"
        far = cv2.dilate(m.astype(np.uint8), np.ones((2 * ring + 1,) * 2, np.uint8)) == 0
        diff = (a["search"] - b["search"]).abs().numpy()[:, far]
        assert diff.mean() > 10, "outside the object the crop is another frame"
        changed += 1
    assert changed >= 8
    plan = lambda ds, i: {k: v for k, v in ds.sample(i).items() if k != "rng"}
    assert all(plan(plain, i) == plan(pasted, i) for i in range(16))  # the option draws from its own generator


def test_same_frame_pairs_take_the_search_crop_from_the_template_frame(videos):
    """same_frame_p 1: every positive's search frame is its template frame; negatives and other draws unchanged."""
    from dataclasses import replace

    plain = PairDataset(videos, PairConfig(), length=32, seed=5)
    same = PairDataset(videos, replace(PairConfig(), same_frame_p=1.0), length=32, seed=5)
    moved = 0
    for i in range(32):
        a, b = plain.sample(i), same.sample(i)
        assert (a["video"], a["template"], a["positive"]) == (b["video"], b["template"], b["positive"])
        if b["positive"]:
            assert b["search"] == b["template"]
            moved += a["search"] != a["template"]
        else:
            assert (a["search_video"], a["search"]) == (b["search_video"], b["search"])
    assert moved >= 8, "the plain pairs mostly use another frame, so the option changed them"


def test_distractor_is_pasted_behind_the_object_and_keeps_the_target(videos):
    """distractor_p 1: another video's object appears beside a positive's object, never over it; masks unchanged."""
    from dataclasses import replace

    cfg = replace(PairConfig(), blur_p=0.0)
    plain = PairDataset(videos, cfg, length=16, seed=3)
    dis = PairDataset(videos, replace(cfg, distractor_p=1.0), length=16, seed=3)
    changed = 0
    for i in range(16):
        a, b = plain[i], dis[i]
        assert torch.equal(a["template"], b["template"]) and torch.equal(a["search_mask"], b["search_mask"])
        m = a["search_mask"].numpy()
        if not a["positive"] or not m.any():
            assert torch.equal(a["search"], b["search"]), "negatives get no distractor"
            continue
        inside = m[None].repeat(3, 0)
        assert torch.equal(a["search"][inside], b["search"][inside]), "the object stays in front"
        changed += int((a["search"] - b["search"]).abs().amax(0).gt(50).sum()) > 100  # a disk-sized patch
    assert changed >= 8
