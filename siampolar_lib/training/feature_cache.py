"""Frozen-backbone training at a multiple of the pairs per second: the backbone's maps cached once per frame.

While the backbone is frozen (no gradient, BatchNorm statistics fixed) its maps of a crop depend on the crop's
pixels alone, so they can be computed once and reused by every pair that uses the frame. `build_feature_cache`
crops every visible frame of every training video `variants` times on a CONTEXT crop (the search crop plus
`margin` search-crop pixels a side; a scale, a sub-cell shift, a flip, a colour jitter and sometimes a blur
drawn per crop, as `PairDataset` draws them per pair) and keeps the backbone's maps of it (float16) and its
mask; and `template_variants` template crops of the frame with their maps. A pair (`CachedPairs`) is a template
crop of one frame and a search WINDOW of another frame's context crop, cut from the cached maps at an offset that
is a multiple of the backbone's coarsest stride, so the maps of every level line up with the window's pixels and
the neck (1x1 convolutions and nearest upsampling) gives on the cut what it would give on the whole map. Per
step only the neck, the correlation and the head run (`SiamPolar.forward` takes backbone maps).

How these pairs differ from PairDataset's (measure what it costs on the validation fold before relying on it):
- a window's maps were computed with image context around it where a real search crop is zero-padded, so the
  outermost cells of each map differ (`window_difference` measures it on real frames);
- the search shift is a multiple of the coarsest stride plus the crop's sub-cell shift, and scale, flip, colour
  and blur are drawn `variants` times per frame instead of once per pair; negatives are distractors only (a
  frame without the object has no box to cache a crop around).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from siampolar_lib.data.augment import colour_jitter, gaussian_blur
from siampolar_lib.data.coco import Video
from siampolar_lib.data.davis import read_frame
from siampolar_lib.data.pairs import PairConfig
from siampolar_lib.geometry.boxes import box_centre
from siampolar_lib.geometry.crops import context_side, crop_square, search_side
from siampolar_lib.models.config import ModelConfig


@dataclass(frozen=True)
class CacheConfig:
    """How many crops of each frame are cached, and how much context the search crops carry."""

    variants: int = 4  # context crops per visible frame, each with its own scale, shift, flip, colour and blur
    template_variants: int = 2  # template crops per visible frame (the first unflipped, the second flipped, ...)
    margin: int = 64  # extra context a side, search-crop pixels: window offsets 0..2 x margin in coarsest strides
    batch: int = 16  # crops per backbone pass while building


@dataclass
class FeatureCache:
    """Cached backbone maps. Rows of `search` and `template` belong to (video, frame index in video.frames)."""

    search: dict[int, torch.Tensor]  # stride -> (N, C_s, L/s, L/s) float16, L = search_size + 2 margin
    masks: torch.Tensor  # (N, L, L) bool: the object's mask on each context crop
    search_rows: list[tuple[int, int, bool]]  # (video, frame, flipped) per context crop
    template: dict[int, torch.Tensor]  # stride -> (M, C_s, t_s, t_s) float16 maps of the template crops
    template_rows: list[tuple[int, int, bool]]  # (video, frame, flipped) per template crop
    margin: int
    step: int  # the coarsest backbone stride: window offsets are multiples of it


def _context_crop(frame: np.ndarray, mask: np.ndarray, box, g: ModelConfig, pcfg: PairConfig, margin: int,
                  step: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One augmented context crop (L, L, 3) uint8 and its mask (L, L) bool, L = search_size + 2 margin.

    The object is shifted by up to half a window step (`step` crop pixels) each way: the window offsets, whole
    steps, add the rest of the search shift.
    """
    S = g.search_size
    L = S + 2 * margin
    s = 1.0 + rng.uniform(-pcfg.search_scale, pcfg.search_scale)
    side = search_side(box[2], box[3], g.context, g.template_size, S) / s * L / S
    cx, cy = box_centre(box)
    px = L / side  # crop pixels per frame pixel
    dx, dy = rng.uniform(-step / 2, step / 2, size=2)
    crop, tf = crop_square(frame, (cx - dx / px, cy - dy / px), side, L, pad_value=cv2.mean(frame)[:3])
    m = cv2.warpAffine(mask.astype(np.uint8), tf.matrix(), (L, L), flags=cv2.INTER_NEAREST,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
    crop = colour_jitter(crop, rng, pcfg.colour_jitter)
    if rng.random() < pcfg.blur_p:
        crop = gaussian_blur(crop, rng)
    return crop, m


def _template_crop(frame: np.ndarray, box, g: ModelConfig, pcfg: PairConfig, rng: np.random.Generator) -> np.ndarray:
    """One jittered template crop (T, T, 3) uint8 (shift and scale as PairDataset's template)."""
    T = g.template_size
    s = 1.0 + rng.uniform(-pcfg.template_scale, pcfg.template_scale)
    side = context_side(box[2], box[3], g.context) / s
    dx, dy = rng.uniform(-pcfg.template_shift, pcfg.template_shift, size=2)
    cx, cy = box_centre(box)
    crop, _ = crop_square(frame, (cx - dx * side / T, cy - dy * side / T), side, T, pad_value=cv2.mean(frame)[:3])
    return colour_jitter(crop, rng, pcfg.colour_jitter)


class _MapBuffer:
    """Collects crops and turns every `batch` of them into backbone maps at once (float16 on the CPU)."""

    def __init__(self, backbone: nn.Module, device: torch.device, batch: int):
        self.backbone, self.device, self.batch = backbone, device, batch
        self.pending: list[np.ndarray] = []
        self.maps: dict[int, list[torch.Tensor]] = {}

    def add(self, crop: np.ndarray) -> None:
        self.pending.append(np.ascontiguousarray(crop))
        if len(self.pending) >= self.batch:
            self.flush()

    @torch.inference_mode()
    def flush(self) -> None:
        if not self.pending:
            return
        x = torch.from_numpy(np.stack(self.pending).transpose(0, 3, 1, 2).astype(np.float32)).to(self.device)
        for s, f in self.backbone(x).items():
            self.maps.setdefault(s, []).append(f.to("cpu", torch.float16))
        self.pending = []

    def result(self) -> dict[int, torch.Tensor]:
        self.flush()
        return {s: torch.cat(v) for s, v in self.maps.items()}


def _visible_frames(videos: list[Video]):
    """(video index, frame index, record) of every frame with a non-empty mask and a box."""
    for vi, video in enumerate(videos):
        for fi, rec in enumerate(video.frames):
            if rec.mask_rle is not None and rec.box_xywh is not None and rec.box_xywh[2] > 0 and rec.box_xywh[3] > 0:
                yield vi, fi, rec


def build_feature_cache(model: nn.Module, videos: list[Video], pcfg: PairConfig = PairConfig(),
                        ccfg: CacheConfig = CacheConfig(), *, seed: int = 0, device=None) -> FeatureCache:
    """Crop every visible frame of `videos` and keep its backbone maps (module docstring).

    model: a SiamPolar network (its backbone runs in eval mode; it must stay frozen while the cache is used).
    Crop k of frame (v, f) draws its augmentation from a generator seeded by (seed, v, f, k).
    """
    g, backbone = model.config, model.backbone
    device = torch.device(device) if device is not None else next(model.parameters()).device
    step = max(backbone.out_channels)
    if ccfg.margin % step or ccfg.margin < 0 or ccfg.variants < 1 or ccfg.template_variants < 1:
        raise ValueError(f"margin must be a non-negative multiple of the coarsest stride {step} and both variant "
                         f"counts at least 1, got {ccfg}")
    was_training = backbone.training
    backbone.eval()
    search, template = _MapBuffer(backbone, device, ccfg.batch), _MapBuffer(backbone, device, ccfg.batch)
    masks, rows, trows = [], [], []
    for vi, fi, rec in _visible_frames(videos):
        frame, mask = read_frame(rec.file_path), videos[vi].decode_mask(rec)
        for k in range(ccfg.variants):
            rng = np.random.default_rng([seed, vi, fi, k])
            flip = bool(rng.random() < pcfg.flip_p)
            crop, m = _context_crop(frame, mask, rec.box_xywh, g, pcfg, ccfg.margin, step, rng)
            search.add(crop[:, ::-1] if flip else crop)
            masks.append(np.packbits(m[:, ::-1] if flip else m, axis=-1))
            rows.append((vi, fi, flip))
        for k in range(ccfg.template_variants):
            z = _template_crop(frame, rec.box_xywh, g, pcfg, np.random.default_rng([seed, vi, fi, 1000 + k]))
            template.add(z[:, ::-1] if k % 2 else z)
            trows.append((vi, fi, bool(k % 2)))
    if not rows:
        raise ValueError("no video has a frame with a non-empty mask: nothing to cache")
    backbone.train(was_training)
    L = g.search_size + 2 * ccfg.margin
    return FeatureCache(search.result(), torch.from_numpy(np.unpackbits(np.stack(masks), axis=-1, count=L) > 0), rows,
                        template.result(), trows, ccfg.margin, step)


class CachedPairs(torch.utils.data.Dataset):
    """Template/search pairs from a FeatureCache; item i is a pure function of (i, seed).

    Item: dict(template {stride: (C_s, t_s, t_s) float32}, search {stride: (C_s, S/s, S/s) float32},
    search_mask (S, S) bool, positive bool), where S is the model's search size. A fraction `negative_rate` of
    the pairs takes the search window from another video (its mask then counts as empty).
    """

    def __init__(self, cache: FeatureCache, config: ModelConfig, pcfg: PairConfig = PairConfig(), *,
                 length: int = 1000, seed: int = 0):
        self.cache, self.config, self.pcfg, self.length, self.seed = cache, config, pcfg, int(length), int(seed)
        self.templates: dict[tuple[int, int, bool], list[int]] = {}  # (video, frame, flipped) -> template rows
        self.template_frames: dict[tuple[int, bool], list[int]] = {}  # (video, flipped) -> frames, ascending
        for r, (v, f, fl) in enumerate(cache.template_rows):
            self.templates.setdefault((v, f, fl), []).append(r)
            frames = self.template_frames.setdefault((v, fl), [])
            if f not in frames:
                frames.append(f)
        self.search_by_video: dict[int, list[int]] = {}
        for r, (v, _, _) in enumerate(cache.search_rows):
            self.search_by_video.setdefault(v, []).append(r)
        self.videos = sorted(self.search_by_video)
        self.offsets = 2 * cache.margin // cache.step + 1  # window positions per axis

    def __len__(self) -> int:
        return self.length

    def _pick(self, rng: np.random.Generator, items: list):
        return items[int(rng.integers(len(items)))]

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(f"pair index {index} out of range 0..{self.length - 1}")
        rng = np.random.default_rng([self.seed, int(index)])
        c, S = self.cache, self.config.search_size
        vi = int(rng.integers(len(self.videos)))
        v = self.videos[vi]
        positive = not (len(self.videos) > 1 and rng.random() < self.pcfg.negative_rate)
        if positive:
            sv = v
        else:  # a distractor: another video's object
            j = int(rng.integers(len(self.videos) - 1))
            sv = self.videos[j if j < vi else j + 1]
        srow = self._pick(rng, self.search_by_video[sv])
        flip = c.search_rows[srow][2]
        if (v, flip) not in self.template_frames:  # only unflipped templates cached (template_variants 1)
            flip = not flip
        frames = self.template_frames[(v, flip)]
        tframe = frames[0] if rng.random() < self.pcfg.first_frame_p else self._pick(rng, frames)
        trow = self._pick(rng, self.templates[(v, tframe, flip)])
        ox, oy = (int(k) * c.step for k in rng.integers(self.offsets, size=2))  # window origin, context pixels
        search = {s: m[srow, :, oy // s: oy // s + -(-S // s), ox // s: ox // s + -(-S // s)].float()
                  for s, m in c.search.items()}
        mask = c.masks[srow, oy:oy + S, ox:ox + S].clone() if positive else torch.zeros((S, S), dtype=torch.bool)
        return dict(template={s: m[trow].float() for s, m in c.template.items()}, search=search,
                    search_mask=mask, positive=positive)


@torch.inference_mode()
def window_difference(model: nn.Module, frame: np.ndarray, box, margin: int = 64, ring: int = 1
                      ) -> dict[int, tuple[float, float]]:
    """How far a cut window's maps are from the maps of the same pixels cropped alone, per backbone stride:
    {stride: (mean |diff| on the outer `ring` cells, mean |diff| inside them)}, both relative to mean |f|.

    The context crop is centred on `box`; the window is its centre (offset `margin`), which is exactly the
    search crop the tracker would take around `box`.
    """
    g = model.config
    S, L = g.search_size, g.search_size + 2 * margin
    side = search_side(box[2], box[3], g.context, g.template_size, S)
    centre = box_centre(box)
    ctx, _ = crop_square(frame, centre, side * L / S, L)
    win, _ = crop_square(frame, centre, side, S)
    was_training = model.backbone.training
    model.backbone.eval()
    full, alone = (model.backbone(torch.from_numpy(a.transpose(2, 0, 1)[None].astype(np.float32))) for a in (ctx, win))
    model.backbone.train(was_training)
    out = {}
    for s, f in alone.items():
        h, w = f.shape[-2:]
        d = (full[s][..., margin // s: margin // s + h, margin // s: margin // s + w] - f).abs()[0].mean(0)  # (h, w)
        inner = torch.zeros_like(d, dtype=torch.bool)
        inner[ring:h - ring, ring:w - ring] = True
        scale = float(f.abs().mean().clamp(min=1e-12))
        out[s] = (float(d[~inner].mean()) / scale, float(d[inner].mean()) / scale if inner.any() else 0.0)
    return out
