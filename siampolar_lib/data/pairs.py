"""Training pairs: a template crop from one frame and a search crop from another frame of the same video.

As in pysot/SiamCAR (crop sizes and context from the trained model's `ModelConfig`, or any
`geometry.crops.CropGeometry`: 127 / 255 / 0.5 by default):
  * the template (127x127) is cut around the object's box in frame t, with 0.5 context
    (`geometry.crops.context_side`), jittered by a few pixels and a few percent of scale;
  * the search crop (255x255) is cut around the object in frame t + d (side `search_side`), jittered by up
    to 64 px and 18% of scale, so the object is not always at the centre;
  * the search frame's mask follows the same crop (nearest neighbour), giving the training target;
  * a fraction of pairs are negatives: a frame where the object is absent, or a frame of another video
    (cropped around *that* video's object: a distractor); their search mask is empty;
  * both crops are flipped together, colour-jittered independently, and the search crop sometimes blurred.
  * options (off by default, each measured in checkpoints/README.md): a positive's search crop from its template
    frame (same_frame_p), its object pasted onto another video's frame (paste_p), another video's object pasted
    beside it, behind it (distractor_p).
Every random choice comes from a generator seeded by (seed, index): the same index gives the same pair in
any worker, after a resume, on any machine. Use only training videos: never the frames you evaluate on.
"""
from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from siampolar_lib.data.augment import colour_jitter, gaussian_blur
from siampolar_lib.data.coco import FrameRecord, Video
from siampolar_lib.data.davis import read_frame
from siampolar_lib.errors import check_fields
from siampolar_lib.geometry.boxes import box_centre
from siampolar_lib.geometry.crops import CropGeometry, CropTransform, context_side, crop_square, search_side


@dataclass(frozen=True)
class PairConfig:
    """How pairs are sampled and augmented (pysot defaults where pysot has one); crop sizes are the model's."""

    max_gap: int | None = None  # max |t_search - t_template| in frames; None = any two frames of the video
    first_frame_p: float = 0.25  # chance the template is the video's first visible frame (as when tracking)
    template_shift: float = 4.0  # template centre jitter, +- crop pixels (pysot TEMPLATE.SHIFT)
    template_scale: float = 0.05  # template scale jitter, +- fraction (pysot TEMPLATE.SCALE)
    search_shift: float = 64.0  # search centre jitter, +- crop pixels (pysot SEARCH.SHIFT)
    search_scale: float = 0.18  # search scale jitter, +- fraction (pysot SEARCH.SCALE)
    flip_p: float = 0.5  # chance both crops (and the mask) are mirrored left-right together
    colour_jitter: float = 0.2  # brightness/contrast/saturation factors in [1 - j, 1 + j], each crop
    blur_p: float = 0.18  # chance the search crop is Gaussian-blurred (SiamMask's search blur)
    negative_rate: float = 0.2  # fraction of negative pairs (object absent or another video's object)
    paste_p: float = 0.0  # chance a positive search crop's object is pasted onto another video's frame
    same_frame_p: float = 0.0  # chance a positive's search frame is its template frame (the shape is known)
    distractor_p: float = 0.0  # chance another video's object is pasted behind a positive's object

    def __post_init__(self):
        """Refuse a setting no pair can be drawn with, naming its flag (before any folder is made or frame read)."""
        check_fields(self, "pairs", PAIR_RULES)


_PROBABILITY = (lambda v: 0 <= v <= 1, "a probability in [0, 1]")
_PIXELS = (lambda v: v >= 0, "a number of crop pixels >= 0")
_SCALE = (lambda v: 0 <= v < 1, "a fraction in [0, 1) (the crop's scale 1 +- it must stay positive)")
PAIR_RULES = {"max_gap": (lambda v: isinstance(v, int) and v >= 0, "none (any gap) or a number of frames >= 0"),
              "first_frame_p": _PROBABILITY, "template_shift": _PIXELS, "template_scale": _SCALE,
              "search_shift": _PIXELS, "search_scale": _SCALE, "flip_p": _PROBABILITY,
              "colour_jitter": (lambda v: 0 <= v <= 1, "in [0, 1] (the colour factors 1 +- it must stay >= 0)"),
              "blur_p": _PROBABILITY, "negative_rate": _PROBABILITY, "paste_p": _PROBABILITY,
              "same_frame_p": _PROBABILITY, "distractor_p": _PROBABILITY}
PASTE_FEATHER = 1.0  # sigma (crop pixels) of the pasted object's soft edge: no hard seam to learn
DISTRACTOR_OFFSET = (0.25, 0.45)  # a distractor's centre lies this far from the object's, fractions of the crop


def _visible(f: FrameRecord) -> bool:
    """True when the frame has a non-empty mask with a box."""
    return f.mask_rle is not None and f.box_xywh is not None and f.box_xywh[2] > 0 and f.box_xywh[3] > 0


class PairDataset(Dataset):
    """Template/search pairs from videos; item i is a pure function of (i, seed).

    videos: list of `data.coco.Video` (from `data.sources.load_training_videos` or `videos_from_davis`).
    length: the number of items an epoch has (pairs are sampled, so any length works).
    geometry: template_size, search_size and context of the crops: the trained model's ModelConfig, or a
    `geometry.crops.CropGeometry`.
    Item: dict(template (3, T, T) float32 RGB 0..255, search (3, S, S) float32 RGB 0..255,
    search_mask (S, S) bool, positive bool, video (int index), template_frame, search_frame (int)).
    With DataLoader workers use `worker_loader_kwargs` (clean worker processes, one OpenCV thread each).
    """

    def __init__(self, videos: Sequence[Video], cfg: PairConfig = PairConfig(), *, length: int = 1000,
                 seed: int = 0, geometry: CropGeometry = CropGeometry()):
        if length <= 0:
            raise ValueError(f"length must be positive, got {length}")
        self.videos = list(videos)
        self.cfg = cfg
        self.geometry = geometry
        self.length = int(length)
        self.seed = int(seed)
        # Per video: indices (into .frames) of frames showing the object, and of frames without it.
        self.visible = [[k for k, f in enumerate(v.frames) if _visible(f)] for v in self.videos]
        self.absent = [[k for k, f in enumerate(v.frames) if not _visible(f)] for v in self.videos]
        self.usable = [i for i, vis in enumerate(self.visible) if vis]
        if not self.usable:
            names = ", ".join(v.name for v in self.videos[:5]) or "(no videos)"
            raise ValueError(f"no video has a frame with a non-empty mask to use as a template: {names}")

    def __len__(self) -> int:
        return self.length

    # ------------------------------------------------------------ sampling

    def _near(self, frames: list[int], t: int, video: Video) -> list[int]:
        """The entries of `frames` within max_gap frames of frame index t (all of them when max_gap is None)."""
        if self.cfg.max_gap is None:
            return frames
        ti = video.frames[t].frame_index
        return [k for k in frames if abs(video.frames[k].frame_index - ti) <= self.cfg.max_gap]

    def sample(self, index: int) -> dict:
        """The plan of pair `index`: video, frames and whether it is negative (no pixels read)."""
        if not 0 <= index < self.length:
            raise IndexError(f"pair index {index} out of range 0..{self.length - 1}")
        rng = np.random.default_rng([self.seed, index])
        cfg = self.cfg
        v = self.usable[int(rng.integers(len(self.usable)))]
        vis = self.visible[v]
        t = vis[0] if rng.random() < cfg.first_frame_p else vis[int(rng.integers(len(vis)))]
        plan = dict(rng=rng, video=v, template=t, search_video=v, search=None, positive=True, centre_on=None)
        if rng.random() < cfg.negative_rate:
            absent = self._near(self.absent[v], t, self.videos[v])
            others = [u for u in self.usable if u != v]
            use_absent = bool(absent) and (not others or rng.random() < 0.5)
            if use_absent:  # the object is gone: crop where it was in the template frame
                plan.update(search=absent[int(rng.integers(len(absent)))], positive=False, centre_on=t)
            elif others:  # a distractor: another video's object
                u = others[int(rng.integers(len(others)))]
                plan.update(search_video=u, search=self.visible[u][int(rng.integers(len(self.visible[u])))],
                            positive=False)
        if plan["search"] is None:  # positive (also when no negative source exists)
            near = self._near(vis, t, self.videos[v])
            plan["search"] = near[int(rng.integers(len(near)))]
            # Its own generator, so every other choice is the same whatever same_frame_p is.
            if np.random.default_rng([self.seed, index, 2]).random() < cfg.same_frame_p:
                plan["search"] = t
        return plan

    # ------------------------------------------------------------ pixels

    def _crop(self, frame: np.ndarray, box, out_size: int, side: float, shift: float, scale: float,
              rng: np.random.Generator) -> tuple[np.ndarray, CropTransform]:
        """Square crop around box's centre, side/s with s in 1 +- scale, centre moved by +- shift crop pixels."""
        s = 1.0 + rng.uniform(-scale, scale)
        side = side / s  # s > 1 zooms in: the object looks bigger
        dx, dy = rng.uniform(-shift, shift, size=2)
        return _crop_moved(frame, box, out_size, side, dx, dy)

    def __getitem__(self, index: int) -> dict:
        """Pair `index` (see the class docstring): read both frames, crop with jitter, warp the mask, augment.

        The template is cut around its frame's box (context side); the search crop around the search frame's
        box (or, for an "object absent" negative, where the object was in the template frame); the search
        mask follows the search crop by nearest neighbour (empty for negatives). Then a shared flip, colour
        jitter per crop, with paste_p the object pasted onto another video's frame and with distractor_p another
        video's object pasted behind it (positives), and sometimes a blur of the search crop.
        """
        cfg, g = self.cfg, self.geometry
        p = self.sample(int(index))
        rng = p["rng"]
        video, svideo = self.videos[p["video"]], self.videos[p["search_video"]]
        tf_rec, sf_rec = video.frames[p["template"]], svideo.frames[p["search"]]
        tbox = tf_rec.box_xywh
        template, _ = self._crop(read_frame(tf_rec.file_path), tbox, g.template_size,
                                 context_side(tbox[2], tbox[3], g.context), cfg.template_shift,
                                 cfg.template_scale, rng)
        sbox = tbox if p["centre_on"] is not None else sf_rec.box_xywh
        side = search_side(sbox[2], sbox[3], g.context, g.template_size, g.search_size)
        search, tf = self._crop(read_frame(sf_rec.file_path), sbox, g.search_size, side, cfg.search_shift,
                                cfg.search_scale, rng)
        smask = self._search_mask(svideo, sf_rec, tf) if p["positive"] else np.zeros((g.search_size,) * 2, bool)
        if rng.random() < cfg.flip_p:
            template, search, smask = template[:, ::-1], search[:, ::-1], smask[:, ::-1]
        template = colour_jitter(template, rng, cfg.colour_jitter)
        search = colour_jitter(search, rng, cfg.colour_jitter)
        if p["positive"]:
            search = self._maybe_paste(int(index), p["video"], search, smask)
            search = self._maybe_distract(int(index), p["video"], search, smask)
        if rng.random() < cfg.blur_p:
            search = gaussian_blur(search, rng)
        return dict(
            template=torch.from_numpy(np.ascontiguousarray(template.transpose(2, 0, 1), dtype=np.float32)),
            search=torch.from_numpy(np.ascontiguousarray(search.transpose(2, 0, 1), dtype=np.float32)),
            search_mask=torch.from_numpy(np.ascontiguousarray(smask)),
            positive=bool(p["positive"]),
            video=p["video"], template_frame=tf_rec.frame_index, search_frame=sf_rec.frame_index,
        )

    def _maybe_paste(self, index: int, video: int, search: np.ndarray, smask: np.ndarray) -> np.ndarray:
        """With chance paste_p, the object of `search` (its mask `smask`, feathered) over another video's frame.

        Copy-paste: the background around the object is a square of another video's frame (side 50-100 % of the
        frame's shorter side, anywhere in it), so the context no longer tells where the object ends; only the
        object's own outline does. Drawn from its own generator ([seed, index, 1]), so every other random
        choice of the pair is the same with paste_p 0 or 1. search: (S, S, 3) float32 -> the same.
        """
        drawn = self._other_video(index, video, self.cfg.paste_p, stream=1)
        if drawn is None:
            return search
        rng, ui = drawn
        source = self.videos[ui]
        frame = read_frame(source.frames[int(rng.integers(len(source.frames)))].file_path)
        h, w = frame.shape[:2]
        side = min(h, w) * rng.uniform(0.5, 1.0)
        centre = (rng.uniform(side / 2, w - side / 2), rng.uniform(side / 2, h - side / 2))
        S = search.shape[0]
        background, _ = crop_square(frame, centre, side, S)
        alpha = cv2.GaussianBlur(smask.astype(np.float32), (0, 0), PASTE_FEATHER)[..., None]
        alpha[smask] = 1.0  # the object itself is never mixed, only the ring outside it
        return alpha * search + (1.0 - alpha) * background.astype(np.float32)

    def _maybe_distract(self, index: int, video: int, search: np.ndarray, smask: np.ndarray) -> np.ndarray:
        """With chance distractor_p, another video's object pasted into `search` beside its object, behind it.

        A distractor of the same kind as the copy-paste objects: a real object, at the scale its own search crop
        gives it (so about the object's size), centred DISTRACTOR_OFFSET of the crop away from the object's
        centre in a random direction, its mask feathered, never over the object's own pixels (the object stays
        in front, so `smask` stays the target). Drawn from its own generator ([seed, index, 3]).
        search: (S, S, 3) float32 -> the same.
        """
        drawn = self._other_video(index, video, self.cfg.distractor_p, stream=3) if smask.any() else None
        if drawn is None:
            return search
        rng, ui = drawn
        u, vis = self.videos[ui], self.visible[ui]
        rec = u.frames[vis[int(rng.integers(len(vis)))]]
        g, S = self.geometry, search.shape[0]
        ys, xs = np.nonzero(smask)
        angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(*DISTRACTOR_OFFSET) * S
        # The distractor's crop is moved so that its object lands at `where` (crop pixels).
        where = np.array([xs.mean(), ys.mean()]) + dist * np.array([np.cos(angle), np.sin(angle)])
        side = search_side(rec.box_xywh[2], rec.box_xywh[3], g.context, g.template_size, g.search_size)
        patch, tf = _crop_moved(read_frame(rec.file_path), rec.box_xywh, S, side, where[0] - S / 2, where[1] - S / 2)
        dmask = self._search_mask(u, rec, tf)
        alpha = cv2.GaussianBlur(dmask.astype(np.float32), (0, 0), PASTE_FEATHER)[..., None]
        alpha[smask] = 0.0  # behind the object: its pixels, and so its mask, are the target's
        return alpha * patch.astype(np.float32) + (1.0 - alpha) * search

    def _other_video(self, index: int, video: int, chance: float, stream: int):
        """With `chance`, (its own generator [seed, index, stream], another usable video's index); else None.

        The option's own generator: every other random choice of the pair is the same whatever its chance is.
        """
        if chance <= 0:
            return None
        others = [u for u in self.usable if u != video]
        rng = np.random.default_rng([self.seed, index, stream])
        if not others or rng.random() >= chance:
            return None
        return rng, others[int(rng.integers(len(others)))]

    def _search_mask(self, video: Video, rec: FrameRecord, tf: CropTransform) -> np.ndarray:
        """The frame's object mask warped onto the search crop (S, S) bool (nearest neighbour, 0 outside)."""
        S = self.geometry.search_size
        mask = video.decode_mask(rec).astype(np.uint8)
        return cv2.warpAffine(mask, tf.matrix(), (S, S), flags=cv2.INTER_NEAREST,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0


def _crop_moved(frame: np.ndarray, box, out_size: int, side: float, dx: float, dy: float):
    """Square crop (side frame px -> out_size) around box's centre, moved so the box's centre lands (dx, dy) crop
    pixels from the crop's middle; padded with the frame's mean colour. -> (crop, CropTransform)."""
    cx, cy = box_centre(box)
    pad = cv2.mean(frame)[:3]  # the frame's mean colour (pysot avg_chans), 50x faster than numpy's mean
    # Moving the crop window by -d/scale frame pixels moves the object by +d crop pixels.
    px_per_frame = out_size / side
    return crop_square(frame, (cx - dx / px_per_frame, cy - dy / px_per_frame), side, out_size, pad_value=pad)


def worker_init(worker_id: int) -> None:
    """DataLoader worker_init_fn: one OpenCV thread per worker, so N workers use N cores, not N x cores."""
    cv2.setNumThreads(1)


def worker_loader_kwargs(workers: int) -> dict:
    """DataLoader keyword arguments for `workers` pair-making processes ({} for 0).

    Workers start from a clean process ("forkserver", else "spawn"), never a plain fork: once the main
    process has set torch's thread count and run OpenCV on a large image (the trainer does both),
    `cv2.setNumThreads` in a forked child never returns (OpenCV 5, measured; tests/data/test_pairs.py).
    """
    if workers <= 0:
        return {}
    methods = mp.get_all_start_methods()
    return dict(num_workers=workers, worker_init_fn=worker_init,
                multiprocessing_context="forkserver" if "forkserver" in methods else "spawn")
