"""Where the tracker's error comes from: what the network's rays can reach against what tracking loses.

Three modes over the same sequences, scored with the DAVIS protocol:
  truth_crop    every frame's search crop is centred on the TRUE box at its true scale (the state is reset to
                the truth before each frame); the tracker then chooses the location as it always does;
  truth_centre  as truth_crop, and the rays are read at the location nearest the true mass centre (on the level
                whose regress range holds the object's size seen from there, as the training targets assign it);
  tracker       the normal tracker.
truth_crop and truth_centre bound what the rays reach when the tracking state is perfect; truth_crop -> tracker is
what tracking loses; truth_crop -> truth_centre is what choosing the location loses.
For the tracker mode the chosen location's score (cls x ctr) is kept per frame, with the network's share of the
final score: penalty x score x (1 - window_influence) / (that + window x window_influence).

    python -m siampolar_lib.commands.error_split --checkpoint CKPT [--sequences a,b] [--json out.json]
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from siampolar_lib.evaluation.metrics import mean_over_sequences
from siampolar_lib.evaluation.selection import check_train_sequences, fold_rows
from siampolar_lib.geometry.boxes import mask_to_box
from siampolar_lib.geometry.crops import context_side
from siampolar_lib.geometry.polar import mass_centre
from siampolar_lib.splits import VALIDATION_FOLD_SEQUENCES
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.engine import as_engine
from siampolar_lib.tracking.scoring import MIN_SIDE, network_share, polygon_boxes
from siampolar_lib.tracking.tracker import Tracker, TrackResult

MODES = ("truth_crop", "truth_centre", "tracker")


class SplitTracker(Tracker):
    """A Tracker that is handed the true mask of the coming frame (`truth`) and records its choices.

    mode "tracker" behaves exactly like Tracker; "truth_crop" resets the state to the true box before each
    frame; "truth_centre" also reads the rays at the location nearest the true mass centre. `choices` gets one
    dict per tracked frame: score, penalty, window (at the chosen location) and share (the network's part).
    With gt_masks (frame k's true mask at k, frame 0 the `init` frame, as the baselines take them) `truth` is
    set before every frame; without, the caller sets it.
    """

    def __init__(self, model, cfg: TrackerConfig = TrackerConfig(), mode: str = "tracker",
                 gt_masks: Sequence[np.ndarray] | None = None, **kwargs):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        super().__init__(model, cfg, **kwargs)
        self.mode = mode
        self.gt_masks = gt_masks
        self.index = 0  # frames since init
        self.truth: np.ndarray | None = None  # (H, W) bool true mask of the frame about to be tracked
        self._truth_crop: tuple[np.ndarray, np.ndarray] | None = None  # mass centre (2,), box edges (4,), crop px
        self.choices: list[dict] = []

    def init(self, frame: np.ndarray, box_xywh) -> TrackResult:
        """Tracker.init, and the frame count restarts."""
        self.index = 0
        return super().init(frame, box_xywh)

    def track(self, frame: np.ndarray) -> TrackResult:
        """Track the next frame; in the truth modes the state first moves to `truth`'s box (an empty truth: no move)."""
        self.index += 1
        if self.gt_masks is not None:
            self.truth = self.gt_masks[self.index]
        self._truth_crop = None
        box = mask_to_box(self.truth) if self.mode != "tracker" and self.truth is not None else None
        if box is not None:
            x, y, w, h = box
            self.centre, self.size, self.growth = np.array([x + w / 2.0, y + h / 2.0]), np.array([w, h]), 1.0
            if self.mode == "truth_centre":
                g = self.model_config
                scale = g.template_size / context_side(w, h, g.context)  # crop pixels per frame pixel
                mid = (g.search_size - 1) / 2.0
                edges = np.array([x - 0.5, y - 0.5, x + w - 0.5, y + h - 0.5])  # box edges: pixels are squares
                self._truth_crop = ((mass_centre(self.truth) - self.centre) * scale + mid,
                                    (edges - np.tile(self.centre, 2)) * scale + mid)
        return super().track(frame)

    def _best_location(self, levels: list[dict], scale: float):
        """The tracker's choice, or the location nearest the true mass centre; the choice is recorded."""
        if self._truth_crop is None:
            li, i, j, penalty, box = super()._best_location(levels, scale)
        else:
            li, i, j = nearest_location(levels, *self._truth_crop, self.model_config.regress_ranges)
            dx, dy, bw, bh = polygon_boxes(levels[li]["rays"][:, i:i + 1, j:j + 1])
            penalty, box = 1.0, (dx[0, 0], dy[0, 0], max(bw[0, 0], MIN_SIDE), max(bh[0, 0], MIN_SIDE))
        score = float(levels[li]["score"][i, j])
        window = float(self._window(levels[li]["points"])[i, j])
        self.choices.append({"score": score, "penalty": float(penalty), "window": window,
                             "share": network_share(score, penalty, window, self.cfg.window_influence)})
        return li, i, j, penalty, box


def nearest_location(levels: list[dict], xy: np.ndarray, edges: np.ndarray, regress_ranges) -> tuple[int, int, int]:
    """(level, i, j) of the location nearest the crop point xy (2,), on a level whose regress range holds the
    object's size seen from that location, max(l, t, r, b) to the box edges (x0, y0, x1, y1) (4,), as the
    training targets assign levels; the nearest location of any level when no level's range fits."""
    best, fallback = None, None
    for li, lv in enumerate(levels):
        d2 = ((lv["points"] - xy) ** 2).sum(-1)
        i, j = np.unravel_index(int(np.argmin(d2)), d2.shape)
        px, py = lv["points"][i, j]
        size = max(px - edges[0], py - edges[1], edges[2] - px, edges[3] - py)
        lo, hi = regress_ranges[li] if li < len(regress_ranges) else (-1.0, np.inf)
        cand = (float(d2[i, j]), li, int(i), int(j))
        fallback = cand if fallback is None or cand < fallback else fallback
        if lo < size <= hi and (best is None or cand < best):
            best = cand
    return (best or fallback)[1:]


def split_rows(engine, cfg: TrackerConfig, mode: str, root: str | os.PathLike | None, names: Sequence[str],
               max_frames: int | None = None) -> dict[str, dict]:
    """One mode over train sequences (`selection.fold_rows`): {name: its row (J_M, F_M, ...) plus "choices"}."""
    trackers: dict[str, SplitTracker] = {}

    def make(name: str, gt: np.ndarray) -> SplitTracker:
        trackers[name] = SplitTracker(engine, cfg, mode=mode, gt_masks=gt)
        return trackers[name]

    rows = fold_rows(make, root, names, max_frames)
    return {name: row | {"choices": trackers[name].choices} for name, row in rows.items()}


def error_split(model, root: str | os.PathLike | None = None, sequences: Sequence[str] = VALIDATION_FOLD_SEQUENCES,
                *, cfg: TrackerConfig = TrackerConfig(), max_frames: int | None = None) -> dict:
    """The three modes over `sequences` (default: the validation fold of the train sample, never a val sequence).

    model: a network (run in PyTorch) or an Engine. Returns {"modes": {mode: {J_M, F_M, JF_M, ...mean over
    sequences}}, "sequences": {name: {mode: row}}, "scores": the tracker mode's chosen scores (all frames),
    "shares": the network's shares of the final score}.
    """
    check_train_sequences(sequences)
    net = as_engine(model)  # once: every sequence and mode shares it
    per_mode = {mode: split_rows(net, cfg, mode, root, sequences, max_frames) for mode in MODES}
    per_seq = {name: {m: per_mode[m][name] for m in MODES} for name in per_mode["tracker"]}
    modes = {m: mean_over_sequences(rows) for m, rows in per_mode.items()}
    choices = [c for r in per_seq.values() for c in r["tracker"]["choices"]]
    return {"modes": modes, "sequences": per_seq, "scores": [c["score"] for c in choices],
            "shares": [c["share"] for c in choices]}


def format_split(result: dict) -> str:
    """The error split as a text table (percent) plus the chosen-score and network-share quartiles."""
    lines = [f"{'mode':<14}{'J&F':>7}{'J_M':>7}{'F_M':>7}"]
    for mode, s in result["modes"].items():
        lines.append(f"{mode:<14}{100 * s['JF_M']:7.1f}{100 * s['J_M']:7.1f}{100 * s['F_M']:7.1f}")
    for key, label in (("scores", "chosen cls x ctr"), ("shares", "network share")):
        q = np.nanpercentile(result[key], [10, 25, 50, 75, 90])
        lines.append(f"{label}: p10 {q[0]:.3f}  p25 {q[1]:.3f}  median {q[2]:.3f}  p75 {q[3]:.3f}  p90 {q[4]:.3f}")
    return "\n".join(lines)
