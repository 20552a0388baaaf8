"""The first stage's real output on DAVIS train frames, kept for training the refinement stage on it (issue 30).

    cache = record_first_stage(checkpoint, data)   every sequence of the roots tracked; a row per usable later frame
    write_first_stage_cache(path, cache)           `data.first_stage_cache`'s .npz, read by `RefineDataset`

The tracker runs as cross-validation scores it: PyTorch engine on the CPU, the shipped TrackerConfig, the whole loop
from each sequence's first box, the stage refining when the network has one. After every later frame whose true mask
is not empty, the origin and rays the refinement stage is handed (`Tracker.last_first_origin`, `last_first_rays`)
become a row, unless `data.first_stage_cache.unusable` says why not (counted in meta["counts"]).
The refinement stage never feeds the tracker's state (the state follows the first stage's box and centre, the stage
only redraws the mask), so the rows are the same with or without a stage on the network: a cache made from a first
stage serves every stage trained on it; meta["first_stage_sha256"] (`training.checkpoint.first_stage_sha256`) names it.
"""
from __future__ import annotations

import dataclasses
import os
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from siampolar_lib.data.davis import check_first_mask, read_frame
from siampolar_lib.data.first_stage_cache import FirstStageCache, unusable
from siampolar_lib.errors import UserError
from siampolar_lib.evaluation.crossval import sequence_roots
from siampolar_lib.evaluation.selection import check_train_sequences
from siampolar_lib.evaluation.sequence import load_eval_sequence
from siampolar_lib.io import sha256
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.engine import as_engine
from siampolar_lib.tracking.loop import track_sequence
from siampolar_lib.tracking.tracker import Tracker
from siampolar_lib.training.checkpoint import first_stage_sha256, load_model

Row = tuple[int, np.ndarray, np.ndarray]  # (frame index, centre (2,), rays (R,)) frame px


def record_sequence(tracker: Tracker, frame_paths: Sequence[Path], gt: np.ndarray, name: str = "",
                    progress: bool = False) -> tuple[list[Row], Counter]:
    """Track one sequence from frame 0's box and keep the first stage's output on every later usable frame.

    gt: (T, H, W) bool true masks. Returns the rows and the count of frames 1..T-1 by outcome: "kept" or the
    reason `unusable` gives ("empty", "degenerate", "outside").
    """
    if tracker.cfg.mode != "search":
        raise ValueError(f"mode {tracker.cfg.mode!r}: only the search mode hands a polygon to the refinement stage")
    rows, counts = [], Counter()
    results = track_sequence(tracker, (read_frame(p) for p in frame_paths), check_first_mask(gt, name or "sequence"))
    next(results)  # frame 0: the box the tracker starts from
    for t, _ in enumerate(tqdm(results, total=len(frame_paths) - 1, desc=name, disable=not progress, leave=False,
                               unit="frame"), start=1):
        centre, rays = tracker.last_first_origin, tracker.last_first_rays
        reason = unusable(gt[t], centre, rays)
        counts[reason or "kept"] += 1
        if reason is None:
            rows.append((t, centre, rays))
    return rows, counts


def record_first_stage(checkpoint: str | os.PathLike, data: Sequence[str | os.PathLike],
                       sequences: Sequence[str] | None = None, max_frames: int | None = None,
                       tracker: TrackerConfig = TrackerConfig(), progress: bool = False) -> FirstStageCache:
    """The first stage of `checkpoint` tracked over DAVIS train sequences: its cache (rows in sequence order).

    data: DAVIS roots (a sequence in two roots is read from the first); sequences: names to track (None: every
    sequence folder of the roots); max_frames: the first N frames of each. DAVIS-2016 val sequences are refused
    before any work (a stage trained on their first rays would have seen them).
    """
    roots = sequence_roots([str(d) for d in data])
    names = list(roots) if sequences is None else list(sequences)
    check_train_sequences(names)
    missing = [n for n in names if n not in roots]
    if missing:
        raise UserError(f"--sequences: no root of {[str(d) for d in data]} holds the sequence {missing[0]!r}")
    model = load_model(checkpoint, device="cpu")
    engine = as_engine(model)
    seqs, frames, centres, rays, per_sequence = [], [], [], [], {}
    for name in tqdm(names, desc="first stage", disable=not progress, unit="sequence"):
        paths, gt = load_eval_sequence(roots[name], name, max_frames)
        found, counts = record_sequence(Tracker(engine, tracker), paths, gt, name, progress)
        per_sequence[name] = dict(counts)
        for t, c, r in found:
            seqs.append(name)
            frames.append(t)
            centres.append(c)
            rays.append(r)
    num_rays = model.config.num_rays
    meta = {"checkpoint": str(checkpoint), "checkpoint_sha256": sha256(checkpoint),
            "first_stage_sha256": first_stage_sha256(model), "engine": engine.name,
            "tracker": dataclasses.asdict(tracker), "roots": {n: str(roots[n]) for n in names},
            "max_frames": max_frames, "counts": dict(sum((Counter(c) for c in per_sequence.values()), Counter())),
            "per_sequence": per_sequence}
    return FirstStageCache(np.array(seqs, dtype=str), np.array(frames, np.int64),
                           np.array(centres, np.float64).reshape(-1, 2),
                           np.array(rays, np.float64).reshape(-1, num_rays), meta)
