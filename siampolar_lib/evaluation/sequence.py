"""One DAVIS sequence tracked from its first annotated box and scored: what evaluation and selection both run.

    paths, gt = load_eval_sequence(root, name, max_frames)      frame files and (T, H, W) bool true masks
    preds, row = track_and_score(tracker, paths, gt)             (T, H, W) predictions, the DAVIS row + fps, lost

The tracker runs in the one tracking loop (`tracking.loop.track_sequence`), frames read one at a time. The first
annotated frame's output is its true mask (SiamMask's convention; the DAVIS protocol does not score it), earlier
frames are empty. fps = tracked frames / seconds in `init` + `track` (reading a frame is not timed).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from siampolar_lib.data.davis import check_first_mask, load_sequence, read_frame, sequence_masks
from siampolar_lib.evaluation.metrics import evaluate_sequence
from siampolar_lib.tracking.loop import track_sequence


def run_sequence(tracker, frame_paths: Sequence[Path], gt_masks: np.ndarray, progress: bool = False,
                 desc: str = "") -> tuple[np.ndarray, float, int]:
    """Track one sequence from frame 0's box (the DAVIS protocol): (T, H, W) bool predictions, fps, lost frames.

    frame_paths: T frame files; gt_masks: (T, H, W) bool (frame 0's mask gives the box and is frame 0's output).
    A sequence whose first mask is empty is refused (`data.davis.check_first_mask`): starting at a later frame
    would hand the tracker that frame's truth and score it.
    """
    box = check_first_mask(gt_masks, desc or "the sequence")
    preds = np.zeros_like(gt_masks, dtype=bool)
    preds[0] = gt_masks[0]
    times: list[float] = []  # init + track seconds (reading a frame is not timed)
    results = track_sequence(tracker, (read_frame(p) for p in frame_paths), box, times)
    next(results)  # frame 0: its output is the true mask, not the box
    lost = 0
    for t, res in enumerate(tqdm(results, total=len(frame_paths) - 1, desc=desc, disable=not progress,
                                 leave=False, unit="frame"), start=1):
        preds[t] = res.mask
        lost += bool(res.lost)
    elapsed = sum(times)
    fps = len(frame_paths) / elapsed if elapsed > 0 else float("nan")
    return preds, fps, lost


def load_eval_sequence(root: str | os.PathLike, name: str, max_frames: int | None = None
                       ) -> tuple[list[Path], np.ndarray]:
    """A DAVIS sequence to evaluate on: its frame paths (the first max_frames) and (T, H, W) bool masks."""
    seq = load_sequence(root, name)
    frame_paths = list(seq.frame_paths[:max_frames])
    return frame_paths, sequence_masks(seq)[: len(frame_paths)]


def track_and_score(tracker, frame_paths: Sequence[Path], gt_masks: np.ndarray, progress: bool = False,
                    desc: str = "") -> tuple[np.ndarray, dict]:
    """`run_sequence`, then the DAVIS measures: predictions (T, H, W) and the row {J_M.., fps, lost, frames}."""
    preds, fps, lost = run_sequence(tracker, frame_paths, gt_masks, progress, desc=desc)
    row = evaluate_sequence(preds, gt_masks)
    row.update(fps=fps, lost=lost, frames=len(frame_paths))
    return preds, row
