"""The tracking loop: a tracker run over a video from its first-frame box, one result per frame.

Every job that tracks a video (evaluation, the error split, `siampolar-track`, the demo app, the benchmarks) runs
`track_sequence`. A tracker is anything with the pysot-style protocol

    first = tracker.init(frame0, box_xywh)     # frame 0's result (the box itself)
    result = tracker.track(frame)              # every later frame

`Tracker`, the baselines and error_split's `SplitTracker` take one box (4,) and give TrackResults;
`MultiTracker` takes boxes (N, 4) and gives one list of TrackResults per frame. Frames are pulled one at a time,
so a video file streams: memory does not grow with its length, and reading a frame is never timed.
"""
from __future__ import annotations

import time
from typing import Iterable, Iterator

import numpy as np
from tqdm.auto import tqdm

from siampolar_lib.geometry.boxes import validate_box


def track_sequence(tracker, frames: Iterable[np.ndarray], box_xywh,
                   timings: list[float] | None = None) -> Iterator:
    """Yield the tracker's result for every frame: frames (H, W, 3) uint8 RGB, read lazily; box_xywh frame px.

    Frame 0's result is what `init` returns (the box); ValueError when there is no frame. When `timings` is a
    list, the seconds of each `init` and `track` call are appended to it (reading a frame is outside the clock).
    """
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError("no frames to track")
    yield _timed(tracker.init, timings, first, box_xywh)
    for frame in frames:
        yield _timed(tracker.track, timings, frame)


def _timed(step, timings: list[float] | None, *args):
    """step(*args), its wall seconds appended to timings when that is a list."""
    if timings is None:
        return step(*args)
    t0 = time.perf_counter()
    out = step(*args)
    timings.append(time.perf_counter() - t0)
    return out


def track_frames(tracker, frames: list[np.ndarray], box_xywh, progress: bool = False,
                 score_maps: list | None = None, desc: str = "tracking") -> list:
    """`track_sequence` over a list of frames, as a list: one TrackResult per frame (frame 0 = the box).

    frames: list of (H, W, 3) uint8 RGB; box_xywh (4,) frame pixels. When `score_maps` is a list, each frame's
    score map (Tracker.last_score_map, the finest level) is appended to it (None for frame 0).
    """
    if not frames:
        raise ValueError("no frames to track")
    box = validate_box(box_xywh, frames[0].shape[:2], name="first-frame box")
    results = []
    for res in tqdm(track_sequence(tracker, frames, box), total=len(frames), desc=desc, disable=not progress,
                    unit="frame"):
        if score_maps is not None:
            score_maps.append(tracker.last_score_map if results else None)
        results.append(res)
    return results
