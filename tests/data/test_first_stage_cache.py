"""The first-stage cache: its file round-trips, a missing or damaged one is one line naming it, and the refinement
samples take its centre and rays with probability real_first_p (every other item as without a cache)."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from siampolar_lib.data.first_stage_cache import (
    FirstStageCache,
    read_first_stage_cache,
    unusable,
    write_first_stage_cache,
)
from siampolar_lib.data.refine_samples import RefineDataset, RefineSampleConfig, inner_point
from siampolar_lib.data.sources import videos_from_davis
from siampolar_lib.errors import UserError
from siampolar_lib.geometry.polar import mask_to_rays
from siampolar_lib.geometry.refine import refine_side

PLAIN = RefineSampleConfig(flip_p=0.0, colour_jitter=0.0, blur_p=0.0)  # the crop's geometry only: easy to check


def small_cache(n: int = 5, rays: int = 36) -> FirstStageCache:
    rng = np.random.default_rng(0)
    return FirstStageCache([f"seq{i % 2}" for i in range(n)], np.arange(n) + 1, rng.uniform(0, 50, (n, 2)),
                           rng.uniform(1, 30, (n, rays)), {"checkpoint": "x.pt", "counts": {"kept": n}})


def cache_of(videos, which: slice) -> FirstStageCache:
    """A row for every later frame of videos[which] showing the object: a centre inside it, and distinctive rays (not
    the truth's)."""
    seqs, frames, centres, rays = [], [], [], []
    for video in videos[which]:
        for rec in video.frames[1:]:
            if rec.mask_rle is None:
                continue
            seqs.append(video.name)
            frames.append(rec.frame_index)
            centres.append(inner_point(video.decode_mask(rec)))
            rays.append(3.0 + 0.25 * np.arange(36) + rec.frame_index)
    return FirstStageCache(seqs, frames, centres, rays, {"checkpoint": "made by hand"})


def test_a_cache_round_trips(tmp_path):
    cache = small_cache()
    path = write_first_stage_cache(tmp_path / "c.npz", cache)
    back = read_first_stage_cache(path)
    for name in ("sequences", "frames", "centres", "rays"):
        assert np.array_equal(getattr(back, name), getattr(cache, name)), name
    assert back.meta == {"version": 1, **cache.meta} and back.path == str(path) and back.num_rays == 36
    assert back.row_of()[("seq1", 2)] == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["c.npz"]


def write_raw(path, **arrays) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_a_missing_or_damaged_cache_is_one_line_naming_the_file(tmp_path):
    good = write_first_stage_cache(tmp_path / "good.npz", small_cache())
    arrays = {k: v for k, v in np.load(good).items()}
    (tmp_path / "bytes.npz").write_bytes(b"not a zip at all")
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[:300])
    write_raw(tmp_path / "norays.npz", **{k: v for k, v in arrays.items() if k != "rays"})
    write_raw(tmp_path / "version.npz", **(arrays | {"meta": np.array(json.dumps({"version": 99}))}))
    write_raw(tmp_path / "shapes.npz", **(arrays | {"centres": np.zeros((2, 2))}))
    write_raw(tmp_path / "nan.npz", **(arrays | {"rays": np.full(arrays["rays"].shape, np.nan)}))
    cases = {"missing.npz": "no such first-stage cache", "bytes.npz": "not a readable", "cut.npz": "not a readable",
             "norays.npz": "['rays'] missing", "version.npz": "version 99", "shapes.npz": "disagree",
             "nan.npz": "finite"}
    for name, words in cases.items():
        with pytest.raises(UserError) as err:
            read_first_stage_cache(tmp_path / name)
        msg = str(err.value)
        assert str(tmp_path / name) in msg and words in msg and "\n" not in msg, msg
    assert zipfile.is_zipfile(good)


def test_unusable_names_why_a_first_stage_output_cannot_be_a_sample():
    mask = np.zeros((40, 60), bool)
    mask[10:30, 20:40] = True
    rays = np.full(36, 8.0)
    assert unusable(mask, np.array([30.0, 20.0]), rays) is None
    assert unusable(mask, np.array([5.0, 5.0]), rays) == "outside"
    assert unusable(mask, np.array([-50.0, 200.0]), rays) == "outside"
    assert unusable(mask, np.array([30.0, 20.0]), np.where(np.arange(36) == 3, 0.0, 8.0)) == "degenerate"
    assert unusable(mask, np.array([np.nan, 20.0]), rays) == "degenerate"
    assert unusable(np.zeros_like(mask), np.array([30.0, 20.0]), rays) == "empty"
    # why "outside" is refused: from an outside centre the cast rays miss the mask behind it (0) and cross it ahead
    outside = mask_to_rays(mask, np.array([5.0, 20.0]))
    assert outside[18] == 0.0 and outside[0] > 30.0


# ------------------------------------------------------------------------------- the samples

def items(ds: RefineDataset) -> list[dict]:
    return [ds[i] for i in range(len(ds))]


def same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in ("crop", "first", "rays")) and (a["video"], a["frame"]) == \
        (b["video"], b["frame"])


def test_with_p_zero_items_are_those_without_a_cache(tiny_davis):
    videos = videos_from_davis(tiny_davis)
    plain = items(RefineDataset(videos, length=12, seed=4, size=64))
    cached = items(RefineDataset(videos, length=12, seed=4, size=64, first_stage=cache_of(videos, slice(None))))
    assert all(same(a, b) for a, b in zip(plain, cached))


def test_with_p_one_a_cached_frame_takes_the_cached_centre_and_rays(tiny_davis):
    videos = videos_from_davis(tiny_davis)
    cache = cache_of(videos, slice(0, 1))  # the first video's later frames only
    rows = cache.row_of()
    real = RefineDataset(videos, RefineSampleConfig(flip_p=0.0, colour_jitter=0.0, blur_p=0.0, real_first_p=1.0),
                         length=24, seed=1, size=64, first_stage=cache)
    synthetic = items(RefineDataset(videos, PLAIN, length=24, seed=1, size=64))
    used = 0
    for item, other in zip(items(real), synthetic):
        video = videos[item["video"]]
        row = rows.get((video.name, item["frame"]))
        if row is None:  # not cached (frame 0, or the other video): the item a dataset without a cache gives
            assert same(item, other)
            continue
        used += 1
        centre, first = cache.centres[row], cache.rays[row]
        scale = 64 / refine_side(first)  # crop px per frame px
        mask = video.decode_mask(video.frames[item["frame"]])
        assert np.allclose(item["first"].numpy(), first * scale, rtol=1e-6)
        assert np.allclose(item["rays"].numpy(), mask_to_rays(mask, centre).astype(np.float64) * scale, rtol=1e-6)
    assert 0 < used < 24, used


def test_the_cache_is_matched_by_sequence_name_so_excluded_videos_are_never_drawn(tiny_davis):
    videos = videos_from_davis(tiny_davis)
    cache = cache_of(videos, slice(0, 1))
    kept = videos[1:]  # the first video held out (a fold): its rows must not reach the samples
    with_cache = RefineDataset(kept, RefineSampleConfig(real_first_p=1.0), length=8, seed=2, size=64,
                               first_stage=cache)
    assert with_cache.real == {}
    assert all(same(a, b) for a, b in zip(items(with_cache), items(RefineDataset(kept, length=8, seed=2, size=64))))


def test_a_cache_is_needed_for_p_and_must_hold_the_stage_s_ray_count(tiny_davis, tmp_path):
    videos = videos_from_davis(tiny_davis)
    with pytest.raises(ValueError, match="needs a first-stage cache"):
        RefineDataset(videos, RefineSampleConfig(real_first_p=0.5))
    path = write_first_stage_cache(tmp_path / "r24.npz", small_cache(rays=24))
    with pytest.raises(ValueError, match="r24.npz: 24 rays a row, the stage takes 36"):
        RefineDataset(videos, RefineSampleConfig(real_first_p=0.5), first_stage=path)
    with pytest.raises(ValueError, match="refine.real_first_p"):
        RefineSampleConfig(real_first_p=1.5)
