"""The SiamPolar tracker: template once, then per frame search crop -> score maps -> best polygon -> mask.

`Tracker` has the pysot API (`init(frame, box)`, `track(frame)`); `tracking.loop` runs one over a video.

Two modes (TrackerConfig.mode; the settings and their YAML form: `tracking.config`):
- "search" (default, pysot/SiamCAR style, docs/design.md): a search crop (model.config.search_size) centred on the
  previous state with context, score = sigmoid(cls) x sigmoid(ctr), a scale/aspect change penalty and a
  cosine window (the maths: `tracking.scoring`), the best location's rays decoded to a polygon, smooth state
  update, and a low-score path (lost: keep the state, widen the search, empty mask once the score stays very low).
- "full_frame" (what the reference code did): the whole frame resized to the search size (aspect not kept),
  the same template, best raw score, no temporal state. Kept for a side-by-side comparison.

A video has one frame size: a frame of another size raises ValueError (call `init` again to start a new
video). Timing: `elapsed_s` / `frames_done` count every `init` and `track` call (image reading excluded;
the device is synchronised before the clock stops).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from siampolar_lib.geometry.boxes import box_mask, clip_box, polygon_box, validate_box
from siampolar_lib.geometry.crops import context_side, crop_square
from siampolar_lib.geometry.polar import NUM_RAYS, mask_to_rays, polygon_to_mask, rays_to_polygon
from siampolar_lib.geometry.refine import recentred, refine_side
from siampolar_lib.geometry.voting import vote_mask
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.engine import Engine, as_engine
from siampolar_lib.tracking.scoring import (
    best_location,
    cosine_window,
    subcell_location,
)


@dataclass
class TrackResult:
    """One tracked frame: mask (H, W) bool, polygon (num_rays, 2) frame pixels, box (4,) xywh, score, lost flag."""

    mask: np.ndarray
    polygon: np.ndarray
    box: np.ndarray
    score: float
    lost: bool


class Tracker:
    """Box-initialised SiamPolar tracker with the pysot API: `init(frame, box_xywh)`, then `track(frame)`."""

    def __init__(self, model: torch.nn.Module | Engine, cfg: TrackerConfig = TrackerConfig(), device=None):
        """model: an Engine (`engine.make_engine`), used as is, or a network, run in PyTorch on device."""
        self.cfg = cfg
        self.engine = as_engine(model, device)
        self.device = self.engine.device
        self.model_config = self.engine.config  # the network's: template_size, search_size, context, num_rays
        self.template_state = None  # the target's template features (engine.template)
        self.last_levels: list[dict] | None = None  # the network's per-level output on the last search crop
        self.last_first_polygon: np.ndarray | None = None  # (R, 2) frame px: the last polygon before refinement
        # The first stage's output on the last frame, what the refinement stage is handed (recorded whether or not
        # it refines: data.first_stage_cache): origin (2,) (x, y) and rays (R,), frame px.
        self.last_first_origin: np.ndarray | None = None
        self.last_first_rays: np.ndarray | None = None
        self._last_pscore: np.ndarray | None = None  # the winning level's final scores on the last frame
        self.frame_shape: tuple[int, int] | None = None
        self._windows: dict = {}  # cosine window per level grid (the grids do not change between frames)
        self.elapsed_s = 0.0  # seconds spent in init + track since the last reset_timer
        self.frames_done = 0  # frames counted in elapsed_s (init counts one)

    # --- state ----------------------------------------------------------------------------------
    def reset_timer(self) -> None:
        """Zero the timing counters (elapsed_s, frames_done)."""
        self.elapsed_s, self.frames_done = 0.0, 0

    @property
    def fps(self) -> float:
        """Frames per second over the timed init + track calls (image reading excluded)."""
        return self.frames_done / self.elapsed_s if self.elapsed_s > 0 else float("nan")

    def state_box(self) -> np.ndarray:
        """The current state as box_xywh (4,) float, frame pixels."""
        (cx, cy), (w, h) = self.centre, self.size
        return np.array([cx - w / 2.0, cy - h / 2.0, w, h])

    def _check_frame(self, frame: np.ndarray, initialising: bool) -> None:
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            desc = f"{frame.dtype} array of shape {frame.shape}" if isinstance(frame, np.ndarray) else type(frame)
            raise ValueError(f"frame must be an (H, W, 3) uint8 RGB array, got {desc}")
        if not initialising:
            if self.frame_shape is None:
                raise RuntimeError("Tracker.track called before Tracker.init(frame, box_xywh)")
            if frame.shape[:2] != self.frame_shape:
                raise ValueError(f"frame size changed from {self.frame_shape} to {frame.shape[:2]} (H, W) within "
                                 "a video; call init(frame, box) to start a new video")

    # --- API ------------------------------------------------------------------------------------
    @property
    def last_score_map(self) -> np.ndarray | None:
        """The finest level's score map on the last search crop, (h, w) float32 in [0, 1] (None before track)."""
        return None if self.last_levels is None else self.last_levels[0]["score"].astype(np.float32)

    def _window(self, points: np.ndarray) -> np.ndarray:
        """cosine_window(points), computed once per grid (keyed by its shape and corner points)."""
        key = (points.shape, *points[0, 0], *points[-1, -1])
        if key not in self._windows:
            self._windows[key] = cosine_window(points)
        return self._windows[key]

    def init(self, frame: np.ndarray, box_xywh) -> TrackResult:
        """Start a video: frame (H, W, 3) uint8 RGB, box_xywh (x, y, w, h) frame pixels of the target.

        Returns frame 0's result (`box_result`, outside the timer). Raises ValueError for a zero-size box or one
        outside the image.
        """
        t0 = time.perf_counter()
        self._check_frame(frame, initialising=True)
        x, y, w, h = validate_box(box_xywh, frame.shape[:2], name="init box")
        self.frame_shape = tuple(frame.shape[:2])
        self.centre = np.array([x + w / 2.0, y + h / 2.0])
        self.size = np.array([w, h])
        self.avg_chans = frame.reshape(-1, 3).mean(axis=0)
        s_z = context_side(w, h, self.model_config.context)
        z, _ = crop_square(frame, self.centre, s_z, self.model_config.template_size, pad_value=self.avg_chans)
        self.template_state = self.engine.template(z)
        self.growth = 1.0  # search side factor, > 1 while the target is lost
        self.low_run = 0  # consecutive frames with score < empty_score
        self.engine.sync()
        self.elapsed_s += time.perf_counter() - t0
        self.frames_done += 1
        return box_result(frame.shape, (x, y, w, h), self.model_config.num_rays)

    def track(self, frame: np.ndarray) -> TrackResult:
        """Track the target into the next frame (H, W, 3) uint8 RGB; returns a TrackResult."""
        t0 = time.perf_counter()
        self._check_frame(frame, initialising=False)
        if self.cfg.mode == "full_frame":
            res = self._track_full_frame(frame)
        else:
            res = self._track_search(frame)
        self.engine.sync()
        self.elapsed_s += time.perf_counter() - t0
        self.frames_done += 1
        return res

    # --- modes ----------------------------------------------------------------------------------
    def _track_search(self, frame: np.ndarray) -> TrackResult:
        """One frame of "search" mode: frame (H, W, 3) uint8 RGB -> TrackResult in frame pixels.

        Crops a search square around the previous centre (context side x search/template x growth), scores
        every location of every level by sigmoid(cls) x sigmoid(ctr) x size-change penalty, blended with a
        cosine window, decodes the best location's rays to a polygon and box, and smooths the state towards
        that box (or keeps it and widens the search when the raw score says the target is lost).
        """
        H, W = self.frame_shape
        x, tf = self._search_crop(frame)
        levels = self.last_levels = self.engine.search(x, self.template_state)
        self._last_pscore = None
        li, i, j, penalty, (dx, dy, bw, bh) = self._best_location(levels, tf.scale)
        lv = levels[li]
        score = float(lv["score"][i, j])
        point, crop_rays = lv["points"][i, j], lv["rays"][:, i, j]
        if self.cfg.subcell and self._last_pscore is not None:
            point, crop_rays, (dx, dy, bw, bh) = self._subcell(lv, i, j)
        origin = tf.to_frame(point)  # the polygon's centre, frame pixels
        rays = self.cfg.ray_scale * crop_rays / tf.scale  # (R,) frame pixels
        self.last_first_polygon = rays_to_polygon(origin, rays)  # (R, 2) before any refinement
        self.last_first_origin, self.last_first_rays = np.array(origin, np.float64), np.array(rays, np.float64)
        if self.cfg.refine and self.engine.refines:
            rays = self._refine(frame, origin, rays)
            for _ in range(self.cfg.refine_passes - 1):
                origin, rays = recentred(origin, rays)
                rays = self._refine(frame, origin, rays)
        poly = rays_to_polygon(origin, rays)  # (R, 2)
        lost = score < self.cfg.lost_score
        self.low_run = self.low_run + 1 if score < self.cfg.empty_score else 0
        if lost:
            # Keep the last state and look wider next time (pysot's long-term idea, without re-detection).
            self.growth = min(self.growth * self.cfg.lost_growth, self.cfg.max_growth)
        else:
            self.growth = 1.0
            centre = tf.to_frame(point + np.array([dx, dy]))
            self._update_state(centre, np.array([bw, bh]) / tf.scale, float(penalty) * score)
        if self.low_run >= self.cfg.empty_after:
            mask = np.zeros((H, W), bool)
        elif self.cfg.vote_radius > 0:
            mask = self._vote(lv, i, j, tf, (H, W))
        else:
            mask = polygon_to_mask(poly, (H, W))
        return TrackResult(mask=mask, polygon=poly, box=self.state_box(), score=score, lost=lost)

    def _refine(self, frame: np.ndarray, centre: np.ndarray, rays: np.ndarray) -> np.ndarray:
        """The refinement stage on an object-scale crop around centre (2,): rays (R,) frame px -> refined, frame px.

        The crop (`geometry.refine.refine_side`) is padded with the video's mean colour, as the search crop is.
        """
        side = self.model_config.refine_size
        crop, rtf = crop_square(frame, centre, refine_side(rays), side, pad_value=self.avg_chans)
        return self.engine.refine(crop, rays * rtf.scale) / rtf.scale

    def _search_crop(self, frame: np.ndarray):
        """The search crop (S, S, 3) around the state and its CropTransform (S = model search size)."""
        g = self.model_config
        s_x = context_side(self.size[0], self.size[1], g.context) * g.search_size / g.template_size * self.growth
        return crop_square(frame, self.centre, s_x, g.search_size, pad_value=self.avg_chans)

    def _best_location(self, levels: list[dict], scale: float):
        """Best (level, i, j) by penalised, windowed score (`scoring.best_location`); returns it with its penalty and
        (dx, dy, w, h) crop px, and keeps the winning level's final scores for `subcell`."""
        cfg = self.cfg
        windows = [self._window(lv["points"]) for lv in levels]
        c = best_location(levels, windows, self.size, scale, self.model_config.context, cfg.penalty_k,
                          cfg.window_influence)
        self._last_pscore = c.final
        return c.level, c.i, c.j, c.penalty, c.box

    def _subcell(self, lv: dict, i: int, j: int):
        """`scoring.subcell_location` on the last frame's winning final scores: (point (2,), rays (R,), box) crop px."""
        return subcell_location(self._last_pscore, lv, i, j)

    def _update_state(self, centre: np.ndarray, new_size: np.ndarray, weight: float) -> None:
        """Move the state to centre (frame px) and the size towards new_size by weight x size_lr, clipped."""
        H, W = self.frame_shape
        rate = weight * self.cfg.size_lr
        size = (1.0 - rate) * self.size + rate * new_size
        self.centre = np.clip(centre, [0.0, 0.0], [W - 1.0, H - 1.0])
        self.size = np.clip(size, self.cfg.min_size, [max(W, self.cfg.min_size), max(H, self.cfg.min_size)])
        # Without the grid a 1e-6 difference in the network's outputs (another engine, another thread count) moves
        # the next crop a little, which changes the outputs a little more, frame after frame, until two runs track
        # differently (checkpoints/README.md, "Why the engines' masks differed"); rounded, both runs keep one state.
        if self.cfg.state_grid > 0:
            g = self.cfg.state_grid
            self.centre, self.size = np.round(self.centre / g) * g, np.round(self.size / g) * g

    def _vote(self, lv: dict, i: int, j: int, tf, shape: tuple[int, int]) -> np.ndarray:
        """Mask from the score-weighted vote of the polygons within vote_radius cells of location (i, j)."""
        r = self.cfg.vote_radius
        hh, ww = lv["score"].shape
        ii, jj = np.meshgrid(np.arange(max(i - r, 0), min(i + r + 1, hh)),
                             np.arange(max(j - r, 0), min(j + r + 1, ww)), indexing="ij")
        ii, jj = ii.ravel(), jj.ravel()
        polys = rays_to_polygon(lv["points"][ii, jj], self.cfg.ray_scale * lv["rays"][:, ii, jj].T)  # (K, R, 2)
        polys = tf.to_frame(polys)
        return vote_mask(polys, lv["score"][ii, jj], shape, self.cfg.vote_threshold)

    def _track_full_frame(self, frame: np.ndarray) -> TrackResult:
        cfg = self.cfg
        H, W = self.frame_shape
        S = self.model_config.search_size
        x = full_frame_input(frame, S)
        levels = self.last_levels = self.engine.search(x, self.template_state)
        best = max(((lv["score"].max(), li) for li, lv in enumerate(levels)))
        lv = levels[best[1]]
        i, j = np.unravel_index(int(np.argmax(lv["score"])), lv["score"].shape)
        score = float(lv["score"][i, j])
        poly_crop = rays_to_polygon(lv["points"][i, j], lv["rays"][:, i, j])
        # cv2.resize maps pixel centres: frame = (crop + 0.5) * (W / S) - 0.5, per axis.
        k = np.array([W / S, H / S])
        poly = (poly_crop + 0.5) * k - 0.5
        lost = score < cfg.lost_score
        self.low_run = self.low_run + 1 if score < cfg.empty_score else 0
        mask = np.zeros((H, W), bool) if self.low_run >= cfg.empty_after else polygon_to_mask(poly, (H, W))
        return TrackResult(mask=mask, polygon=poly, box=polygon_box(poly), score=score, lost=lost)


def full_frame_input(frame: np.ndarray, search_size: int) -> np.ndarray:
    """What "full_frame" mode shows the network: the whole (H, W, 3) frame squeezed to (S, S, 3), aspect lost."""
    return cv2.resize(frame, (search_size, search_size), interpolation=cv2.INTER_LINEAR)


def box_result(frame_shape: tuple[int, int], box_xywh, num_rays: int = NUM_RAYS) -> TrackResult:
    """Frame 0's result: the given box as mask (H, W) bool and as a num_rays polygon, score 1, not lost."""
    H, W = frame_shape[:2]
    x, y, w, h = clip_box(box_xywh, (H, W))
    mask = box_mask((x, y, w, h), (H, W))
    centre = np.array([x + w / 2.0 - 0.5, y + h / 2.0 - 0.5])
    polygon = rays_to_polygon(centre, mask_to_rays(mask, centre, num_rays)) if mask.any() \
        else np.repeat(centre[None], num_rays, 0)
    return TrackResult(mask=mask, polygon=polygon, box=np.array([x, y, w, h]), score=1.0, lost=False)

