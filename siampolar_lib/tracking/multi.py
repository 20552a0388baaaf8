"""Several targets in one video: one Tracker (own template, own state) per target, one shared engine and decode.

    mt = MultiTracker(make_engine(model, "onnxruntime"))
    first = mt.init(frame0, [box_a, box_b])     # one TrackResult per object (the boxes themselves)
    results = mt.track(frame)                   # one TrackResult per object, in box order
    per_frame = list(track_sequence(mt, frames, [box_a, box_b]))   # the same loop as one object (tracking.loop)
    labels = label_map(results, frame.shape)    # (H, W) uint8: 0 background, k = object k (1..N)

Output follows DAVIS 2017: a palette PNG per frame whose pixel values are object ids (`io.write_label_png`);
where two masks overlap, the pixel goes to the object with the higher tracking score (ties: the later object).
"""
from __future__ import annotations

import numpy as np
import torch

from siampolar_lib.geometry.boxes import validate_box
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.engine import Engine, as_engine
from siampolar_lib.tracking.tracker import Tracker, TrackResult


def label_map(results: list[TrackResult], shape: tuple[int, int]) -> np.ndarray:
    """Object masks -> one (H, W) uint8 label map: 0 background, k for object k (results[k-1]).

    Overlaps go to the higher score (objects painted in ascending score; a later object wins a tie).
    """
    H, W = shape[:2]
    if len(results) > 255:
        raise ValueError(f"at most 255 objects fit a uint8 label map, got {len(results)}")
    labels = np.zeros((H, W), np.uint8)
    order = sorted(range(len(results)), key=lambda k: (results[k].score, k))
    for k in order:
        labels[results[k].mask] = k + 1
    return labels


class MultiTracker:
    """Track N targets from N first-frame boxes; every object has its own template and state.

    The network is exported/loaded once (one Engine shared by the per-object Trackers); each frame is decoded
    once by the caller and cropped once per object (one network pass per object and frame).
    """

    def __init__(self, model: torch.nn.Module | Engine, cfg: TrackerConfig = TrackerConfig(), device=None):
        """model: an Engine (`engine.make_engine`), shared by every object, or a network, run in PyTorch on device."""
        self.engine = as_engine(model, device)
        self.cfg = cfg
        self.trackers: list[Tracker] = []

    def init(self, frame: np.ndarray, boxes) -> list[TrackResult]:
        """Start every object: frame (H, W, 3) uint8 RGB, boxes (N, 4) xywh -> frame 0's TrackResults (the boxes)."""
        boxes = [np.asarray(b, dtype=np.float64) for b in boxes]
        if not boxes:
            raise ValueError("MultiTracker.init needs at least one box")
        checked = [validate_box(b, frame.shape[:2], name=f"box {k + 1}") for k, b in enumerate(boxes)]
        self.trackers = [Tracker(self.engine, self.cfg) for _ in checked]
        return [t.init(frame, b) for t, b in zip(self.trackers, checked)]

    def track(self, frame: np.ndarray) -> list[TrackResult]:
        """Track every object into the next frame; one TrackResult per object, in box order."""
        if not self.trackers:
            raise RuntimeError("MultiTracker.track called before MultiTracker.init(frame, boxes)")
        return [t.track(frame) for t in self.trackers]

    @property
    def fps(self) -> float:
        """Frames per second of the whole multi-object step (time of all objects' init + track summed)."""
        elapsed = sum(t.elapsed_s for t in self.trackers)
        return self.trackers[0].frames_done / elapsed if self.trackers and elapsed > 0 else float("nan")
