"""Tracking a list of frames with a Tracker: `track_frames`, frame 0's `box_result`, `ScoreMapRecorder`, overlays.

Used by the demo, the widgets and the `python -m siampolar_lib.track` command line.
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from .geometry.boxes import box_mask, clip_box, validate_box
from .geometry.polar import NUM_RAYS, mask_to_rays, rays_to_polygon
from .tracker import TrackResult, location_score
from .viz import render_track


class ScoreMapRecorder(torch.nn.Module):
    """Wraps a SiamPolar network and keeps the last score map, sigmoid(cls) x sigmoid(ctr) of the finest level.

    Pass it to Tracker in place of the network: `template`, `track` and `forward` are passed through;
    `last_score_map` is (h, w) float32 in [0, 1] over the search crop (None before the first `track`).
    """

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.last_score_map: np.ndarray | None = None

    @property
    def config(self):
        """The wrapped network's ModelConfig (the tracker reads crop sizes and context from it)."""
        return self.model.config

    def template(self, z: torch.Tensor):
        """Cache the template features (the wrapped model's `template`)."""
        return self.model.template(z)

    def track(self, x: torch.Tensor, zf: list[torch.Tensor] | None = None) -> dict:
        """The wrapped model's `track(x, zf)`; records the finest level's score map of the first crop."""
        out = self.model.track(x) if zf is None else self.model.track(x, zf)
        self.last_score_map = location_score(out["cls"][0][0, 0], out["ctr"][0][0, 0]).detach().cpu().numpy()
        return out

    def forward(self, template: torch.Tensor, search: torch.Tensor) -> dict:
        """The wrapped model's forward."""
        return self.model(template, search)


def box_result(frame_shape: tuple[int, int], box_xywh, num_rays: int = NUM_RAYS) -> TrackResult:
    """Frame 0's result: the given box as mask (H, W) bool and as a num_rays polygon, score 1, not lost."""
    H, W = frame_shape[:2]
    x, y, w, h = clip_box(box_xywh, (H, W))
    mask = box_mask((x, y, w, h), (H, W))
    centre = np.array([x + w / 2.0 - 0.5, y + h / 2.0 - 0.5])
    polygon = rays_to_polygon(centre, mask_to_rays(mask, centre, num_rays)) if mask.any() \
        else np.repeat(centre[None], num_rays, 0)
    return TrackResult(mask=mask, polygon=polygon, box=np.array([x, y, w, h]), score=1.0, lost=False)


def track_frames(tracker, frames: list[np.ndarray], box_xywh, progress: bool = False,
                 score_maps: list | None = None, desc: str = "tracking") -> list:
    """Run a Tracker over frames from a first-frame box: one TrackResult per frame (frame 0 = the box).

    frames: list of (H, W, 3) uint8 RGB; box_xywh (4,) frame pixels. When `score_maps` is a list, each frame's
    score map (Tracker.last_score_map, the finest level) is appended to it (None for frame 0).
    """
    if not frames:
        raise ValueError("no frames to track")
    box = validate_box(box_xywh, frames[0].shape[:2], name="first-frame box")
    tracker.init(frames[0], box)
    results = [box_result(frames[0].shape, box, tracker.geometry.num_rays)]
    if score_maps is not None:
        score_maps.append(None)
    for frame in tqdm(frames[1:], desc=desc, disable=not progress, unit="frame"):
        results.append(tracker.track(frame))
        if score_maps is not None:
            score_maps.append(tracker.last_score_map)
    return results


def render_results(frames, results, rays: bool = True) -> list[np.ndarray]:
    """Overlay every TrackResult on its frame (viz.render_track): list of (H, W, 3) uint8 RGB."""
    return [render_track(f, r.mask, r.polygon, r.score, rays=rays, label=f"{i}")
            for i, (f, r) in enumerate(zip(frames, results))]
