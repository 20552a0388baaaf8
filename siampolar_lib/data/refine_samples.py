"""Training samples for the object-scale refinement stage (`models.refine`): a crop, first rays, true rays.

Each sample imitates what the tracker hands the stage: a centre near the object's mass centre (a search-grid
location, off by a few percent of the object's size) and first rays that are the object's outline blurred
around the circle (the first stage's round blobs: notebook 07b, section 8), scaled a little too big or too small, with
per-ray noise. The true rays are cast from the same centre to the true mask (`geometry.polar.mask_to_rays`).
The crop follows `geometry.refine` (side 2 x 1.5 x the longest first ray, centred on the centre), then a shared
left-right flip of crop and rays, colour jitter, and sometimes a blur. Item i is a pure function of (seed, i).

With `real_first_p` > 0 and a first-stage cache (`data.first_stage_cache`), an item takes, with that probability,
what the first stage really handed the stage on its frame when tracking (centre and first rays), where the cache has
that frame; the truth is cast from that centre, and the crop, flip and photometry are as above. The coin has its own
random stream, so every item that stays synthetic is the item a dataset without a cache gives.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from siampolar_lib.data.augment import colour_jitter, gaussian_blur
from siampolar_lib.data.coco import Video
from siampolar_lib.data.davis import read_frame
from siampolar_lib.data.first_stage_cache import FirstStageCache, read_first_stage_cache, unusable
from siampolar_lib.errors import check_fields
from siampolar_lib.geometry.crops import crop_square
from siampolar_lib.geometry.polar import NUM_RAYS, mask_to_rays, mass_centre
from siampolar_lib.geometry.refine import flip_rays, refine_side, smooth_rays


@dataclass(frozen=True)
class RefineSampleConfig:
    """How the first rays are made worse than the truth, and the photometric augmentation."""

    centre_jitter: float = 0.08  # sd of the centre's offset, as a fraction of the object's box width / height
    blur_min: float = 0.5  # the outline's blur around the circle, in rays: uniform in [blur_min, blur_max]
    blur_max: float = 5.0
    scale_sd: float = 0.2  # sd of log(first / true size), one factor per sample
    ray_sd: float = 0.1  # sd of the per-ray log noise (itself smoothed over 1 ray)
    flip_p: float = 0.5
    colour_jitter: float = 0.2
    blur_p: float = 0.1
    real_first_p: float = 0.0  # share of items with the first stage's real centre and rays (where cached)

    def __post_init__(self):
        """Refuse settings no sample can be drawn with, naming the field."""
        check_fields(self, "refine", {
            "centre_jitter": (lambda v: 0 <= v < 1, "a fraction in [0, 1)"),
            "blur_min": (lambda v: 0 <= v <= self.blur_max, "in [0, blur_max]"), "blur_max": (lambda v: v >= 0, ">= 0"),
            "scale_sd": (lambda v: v >= 0, ">= 0"), "ray_sd": (lambda v: v >= 0, ">= 0"),
            "flip_p": (lambda v: 0 <= v <= 1, "a probability"), "colour_jitter": (lambda v: 0 <= v <= 1, "in [0, 1]"),
            "blur_p": (lambda v: 0 <= v <= 1, "a probability"),
            "real_first_p": (lambda v: 0 <= v <= 1, "a probability")})


def inner_point(mask: np.ndarray) -> np.ndarray:
    """The mask pixel farthest from its outline, (x, y): a centre that lies inside any non-empty mask."""
    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return np.array([float(x), float(y)])


def jittered_centre(mask: np.ndarray, box: Sequence[float], sd: float, rng: np.random.Generator) -> np.ndarray:
    """The mass centre moved by N(0, sd x box size), kept inside the mask (4 tries, then the mass centre or
    `inner_point`): (x, y) frame pixels."""
    m = mass_centre(mask)
    H, W = mask.shape
    for _ in range(4):
        c = m + rng.normal(0.0, sd, 2) * np.asarray(box[2:4], dtype=np.float64)
        x, y = int(round(c[0])), int(round(c[1]))
        if 0 <= x < W and 0 <= y < H and mask[y, x]:
            return c
    x, y = int(round(m[0])), int(round(m[1]))
    return m if 0 <= x < W and 0 <= y < H and mask[y, x] else inner_point(mask)


def first_rays(true_rays: np.ndarray, cfg: RefineSampleConfig, rng: np.random.Generator) -> np.ndarray:
    """A first stage's guess from the true rays (R,): blurred around the circle, scaled, noised; >= 1 px."""
    r = smooth_rays(true_rays, float(rng.uniform(cfg.blur_min, cfg.blur_max)))
    noise = smooth_rays(rng.normal(0.0, cfg.ray_sd, r.shape), 1.0)
    return np.maximum(r * np.exp(rng.normal(0.0, cfg.scale_sd) + noise), 1.0)


class RefineDataset(Dataset):
    """Refinement samples from videos (any frame showing the object); item i is a pure function of (seed, i).

    Item: dict(crop (3, S, S) float32 RGB 0..255, first (R,) float32 and rays (R,) float32, crop pixels from the
    crop's middle pixel; video (int), frame (int)). S = size (the model's refine_size).
    first_stage: a first-stage cache (or its path) for cfg.real_first_p; its rows are matched to the videos' frames
    by (video name, frame index), so only the videos given (the training ones) are ever drawn from it.
    """

    def __init__(self, videos: Sequence[Video], cfg: RefineSampleConfig = RefineSampleConfig(), *, length: int = 1000,
                 seed: int = 0, size: int = 128, num_rays: int = NUM_RAYS,
                 first_stage: FirstStageCache | str | os.PathLike | None = None):
        if length <= 0:
            raise ValueError(f"length must be positive, got {length}")
        self.videos, self.cfg, self.length, self.seed = list(videos), cfg, int(length), int(seed)
        self.size, self.num_rays = int(size), int(num_rays)
        self.frames = [(v, k) for v, video in enumerate(self.videos) for k, f in enumerate(video.frames)
                       if f.mask_rle is not None and f.box_xywh is not None and min(f.box_xywh[2:]) > 0]
        if not self.frames:
            raise ValueError("no video has a frame with a non-empty mask to refine")
        if isinstance(first_stage, (str, os.PathLike)):
            first_stage = read_first_stage_cache(first_stage)
        if cfg.real_first_p > 0 and first_stage is None:
            raise ValueError(f"real_first_p {cfg.real_first_p} needs a first-stage cache (first_stage=)")
        self.real = self._cached_frames(first_stage) if first_stage is not None else {}

    def _cached_frames(self, cache: FirstStageCache) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """{position in self.frames: (centre (2,), first rays (R,)) frame px} for the frames the cache holds."""
        if cache.num_rays != self.num_rays:
            raise ValueError(f"{cache.path or 'first-stage cache'}: {cache.num_rays} rays a row, the stage takes "
                             f"{self.num_rays}")
        rows = cache.row_of()
        found = {}
        for pos, (v, k) in enumerate(self.frames):
            row = rows.get((self.videos[v].name, self.videos[v].frames[k].frame_index))
            if row is not None:
                found[pos] = (cache.centres[row], cache.rays[row])
        return found

    def _real_first(self, pos: int, index: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """With probability real_first_p, frames[pos]'s cached (centre, first rays) if usable on `mask`; else None.

        The coin is drawn from its own stream of (seed, index): the item's main stream is untouched by it.
        """
        p = self.cfg.real_first_p
        if p <= 0 or np.random.default_rng([self.seed, index, 8]).random() >= p:
            return None
        real = self.real.get(pos)
        return real if real is not None and unusable(mask, *real) is None else None

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(f"sample index {index} out of range 0..{self.length - 1}")
        rng = np.random.default_rng([self.seed, index, 7])
        cfg = self.cfg
        pos = int(rng.integers(len(self.frames)))
        v, k = self.frames[pos]
        rec = self.videos[v].frames[k]
        mask = self.videos[v].decode_mask(rec)
        real = self._real_first(pos, index, mask)
        centre = jittered_centre(mask, rec.box_xywh, cfg.centre_jitter, rng) if real is None else real[0]
        truth = mask_to_rays(mask, centre, self.num_rays).astype(np.float64)
        first = first_rays(truth, cfg, rng) if real is None else real[1]
        crop, tf = crop_square(read_frame(rec.file_path), centre, refine_side(first), self.size)
        first, truth = first * tf.scale, truth * tf.scale
        if rng.random() < cfg.flip_p:  # the crop's middle pixel stays the centre under a mirror
            crop, first, truth = crop[:, ::-1], flip_rays(first), flip_rays(truth)
        img = colour_jitter(crop, rng, cfg.colour_jitter)
        if rng.random() < cfg.blur_p:
            img = gaussian_blur(img, rng)
        return dict(crop=torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)),
                    first=torch.from_numpy(np.ascontiguousarray(first, dtype=np.float32)),
                    rays=torch.from_numpy(np.ascontiguousarray(truth, dtype=np.float32)),
                    video=v, frame=rec.frame_index)
