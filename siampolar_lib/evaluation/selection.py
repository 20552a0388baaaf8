"""Model selection and tracker tuning on DAVIS-2016 *train* sequences, never on the val set.

The val set (`splits.REAL_VAL_SEQUENCES`) is scored once per shipped candidate (`siampolar-evaluate`); every choice
made before that (which checkpoint, which TrackerConfig, which stage) is made on train sequences, by default the
validation fold of the full-rate train sample (`splits.VALIDATION_FOLD_SEQUENCES`):

    check_train_sequences(names)                  the one guard: a UserError naming any val sequence
    rows = fold_rows(make_tracker, root, names)   each sequence tracked and scored: DAVIS row, fps, lost, box IoU
    fold_summary(rows)                            J&F, J_M, F_M (mean over sequences), box IoU, fps, lost, J_M each
    fold_scores(model, root, names, cfg)          the two for one network and TrackerConfig
    tune_grid(checkpoint, root, names, ...)       data_scripts/tune_tracker.py's two-stage grid search

`make_tracker(name, gt)` builds a fresh tracker per sequence; gt holds the true masks from the first annotated
frame on (frame 0 = the `init` frame), for trackers that read the truth (the baselines, error_split's modes).
"""
from __future__ import annotations

import itertools
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from siampolar_lib.errors import UserError
from siampolar_lib.evaluation.metrics import mean_over_sequences, scored_slice
from siampolar_lib.evaluation.sequence import load_eval_sequence, track_and_score
from siampolar_lib.geometry.boxes import box_iou, mask_to_box
from siampolar_lib.paths import davis_train_sample_root
from siampolar_lib.splits import REAL_VAL_SEQUENCES, VALIDATION_FOLD_SEQUENCES
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.engine import as_engine
from siampolar_lib.tracking.tracker import Tracker
from siampolar_lib.training.checkpoint import load_model

# pysot's published settings with thresholds: always tuning's first row, so its table says whether tuning beats them.
PYSOT = TrackerConfig(penalty_k=0.04, window_influence=0.44, size_lr=0.4, lost_score=0.2, empty_score=0.1)
TUNED_KEYS = ("penalty_k", "window_influence", "size_lr", "lost_score", "empty_score")
TUNING_ROW = ("J_M", "F_M", "JF_M", "J_O", "F_O", "J_D", "F_D", "lost")  # what a tuning job sends back


def check_train_sequences(names: Sequence[str], flag: str = "--sequences") -> None:
    """The one guard of selection and tuning: UserError naming every DAVIS-2016 val sequence in names."""
    leaked = sorted(set(names) & set(REAL_VAL_SEQUENCES))
    if leaked:
        raise UserError(f"{flag}: {', '.join(leaked)} are DAVIS-2016 val sequences (scored once per shipped "
                        "candidate); select, tune and measure on train sequences only")


def mean_box_iou(preds: np.ndarray, gt: np.ndarray) -> float:
    """Mean IoU of the predicted mask's box with the true box over the DAVIS-scored frames (empty: 0 or 1)."""
    ious = []
    for p, g in zip(preds[scored_slice(len(gt))], gt[scored_slice(len(gt))]):
        bp, bg = mask_to_box(p), mask_to_box(g)
        ious.append(1.0 if bp is None and bg is None else 0.0 if bp is None or bg is None else box_iou(bp, bg))
    return float(np.mean(ious)) if ious else float("nan")


def fold_rows(make_tracker: Callable, root: str | os.PathLike | None = None,
              names: Sequence[str] = VALIDATION_FOLD_SEQUENCES, max_frames: int | None = None) -> dict[str, dict]:
    """Track and score train sequences: {name: DAVIS row (J_M.., J, F per frame) + fps, lost, frames, box_iou}.

    make_tracker(name, gt) -> a fresh tracker (module docstring); root defaults to the full-rate DAVIS-2016 train
    sample; max_frames keeps the first N frames of each sequence. A val sequence is refused before any work.
    """
    check_train_sequences(names)
    root = Path(root) if root is not None else davis_train_sample_root()
    rows = {}
    for name in names:
        paths, gt = load_eval_sequence(root, name, max_frames)
        preds, row = track_and_score(make_tracker(name, gt), paths, gt, desc=name)
        rows[name] = row | {"box_iou": mean_box_iou(preds, gt)}
    return rows


def fold_summary(rows: dict[str, dict]) -> dict:
    """J&F, J_M, F_M (DAVIS protocol, mean over sequences), mean box IoU and fps, lost frames, and J_M per sequence."""
    s = mean_over_sequences(rows)
    return {"JF_M": s["JF_M"], "J_M": s["J_M"], "F_M": s["F_M"],
            "box_iou": float(np.mean([r["box_iou"] for r in rows.values()])),
            "fps": float(np.mean([r["fps"] for r in rows.values()])),
            "lost": int(sum(r["lost"] for r in rows.values())),
            "per_sequence_J_M": {k: v["J_M"] for k, v in rows.items()}}


def fold_scores(model, root: str | os.PathLike | None = None, names: Sequence[str] = VALIDATION_FOLD_SEQUENCES,
                cfg: TrackerConfig = TrackerConfig(), max_frames: int | None = None) -> dict:
    """`fold_summary` of the tracker with `cfg` (model: a network, run in PyTorch, or an Engine) over train sequences.

    For model selection and tuning: root defaults to the full-rate DAVIS-2016 train sample and names to its
    validation fold; a DAVIS-2016 val sequence is refused (the val set is scored once per shipped candidate).
    """
    engine = as_engine(model)  # once: every sequence's Tracker shares it
    return fold_summary(fold_rows(lambda name, gt: Tracker(engine, cfg), root, names, max_frames))


# --------------------------------------------------------------------------------------------- tuning
_MODEL = None  # one network per worker process, loaded once


def _worker_model(checkpoint: str):
    """The worker's network (1 thread: on a shared 2-core machine more threads only wait on each other)."""
    global _MODEL
    if _MODEL is None:
        torch.set_num_threads(1)
        _MODEL = load_model(checkpoint, device="cpu")
    return _MODEL


def score_one(job: tuple) -> tuple[int, str, dict]:
    """Track and score one (setting, sequence) job: (setting index, sequence, row with TUNING_ROW's keys)."""
    index, cfg_dict, checkpoint, root, name, max_frames = job
    model, cfg = _worker_model(checkpoint), TrackerConfig(**cfg_dict)
    row = fold_rows(lambda n, gt: Tracker(model, cfg), root, [name], max_frames)[name]
    return index, name, {k: row[k] for k in TUNING_ROW}


def score_settings(cfgs: list[TrackerConfig], checkpoint: str, root: Path, names: list[str],
                   max_frames: int | None, workers: int) -> list[dict]:
    """Per setting: {"cfg": tuned values, "summary": mean over sequences, "lost": total lost frames}."""
    jobs = [(i, asdict(c), checkpoint, str(root), n, max_frames) for i, c in enumerate(cfgs) for n in names]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            done = list(pool.map(score_one, jobs))
    else:
        done = [score_one(j) for j in jobs]
    rows: list[dict] = [{} for _ in cfgs]
    for i, name, row in done:
        rows[i][name] = row
    return [{"cfg": tuned_values(c), "summary": mean_over_sequences(r),
             "lost": int(sum(v["lost"] for v in r.values()))} for c, r in zip(cfgs, rows)]


def tuned_values(cfg: TrackerConfig) -> dict:
    """The values tuning varies (TUNED_KEYS) of a TrackerConfig."""
    return {k: getattr(cfg, k) for k in TUNED_KEYS}


def best_setting(results: list[dict]) -> dict:
    """The result with the highest J&F mean (a tie keeps the earlier row, so pysot's wins ties)."""
    return max(results, key=lambda r: r["summary"]["JF_M"])


def tune_grid(checkpoint: str, root: str | os.PathLike | None, names: list[str],
              thresholds: Sequence[tuple[float, float]], penalty_k: Sequence[float], window_influence: Sequence[float],
              size_lr: Sequence[float], max_frames: int | None = None, workers: int = 1) -> list[dict]:
    """Two-stage grid search of the tracker over train sequences; every scored setting, pysot's first.

    Stage 1: each (lost_score, empty_score) pair with pysot's k, lambda and LR (they decide how often the state is
    updated at all: a lost frame keeps the old state, so k, lambda and LR act only on frames above lost_score).
    Stage 2: penalty_k x window_influence x size_lr with stage 1's best thresholds. A val sequence is refused.
    """
    check_train_sequences(names)
    root = Path(root) if root is not None else davis_train_sample_root()
    pairs = list(thresholds)
    if (PYSOT.lost_score, PYSOT.empty_score) not in pairs:
        pairs.insert(0, (PYSOT.lost_score, PYSOT.empty_score))
    stage1 = [replace(PYSOT, lost_score=lo, empty_score=em) for lo, em in pairs]  # validated here
    results = score_settings(stage1, checkpoint, root, names, max_frames, workers)
    best = best_setting(results)["cfg"]
    stage2 = [replace(PYSOT, penalty_k=k, window_influence=w, size_lr=lr, lost_score=best["lost_score"],
                      empty_score=best["empty_score"])
              for k, w, lr in itertools.product(penalty_k, window_influence, size_lr)]
    stage2 = [c for c in stage2 if tuned_values(c) != best]  # already scored
    return results + score_settings(stage2, checkpoint, root, names, max_frames, workers)


def format_tuning(results: list[dict]) -> str:
    """One line per setting: the tuned values, J&F, J_M, F_M (percent) and lost frames."""
    head = f"{'k':>5} {'lambda':>6} {'LR':>4} {'lost':>5} {'empty':>5} | {'J&F':>5} {'J_M':>5} {'F_M':>5} {'lost#':>5}"
    lines = [head, "-" * len(head)]
    for r in results:
        c, s = r["cfg"], r["summary"]
        lines.append(f"{c['penalty_k']:>5.2f} {c['window_influence']:>6.2f} {c['size_lr']:>4.2f} "
                     f"{c['lost_score']:>5.2f} {c['empty_score']:>5.2f} | {100 * s['JF_M']:>5.1f} "
                     f"{100 * s['J_M']:>5.1f} {100 * s['F_M']:>5.1f} {r['lost']:>5d}")
    return "\n".join(lines)
