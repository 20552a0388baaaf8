"""DAVIS measures: region similarity J, boundary F, and their Mean/Recall/Decay statistics.

Follows the official DAVIS code (fperazzi/davis, davis2017-evaluation) exactly:
- J = |A & B| / |A | B|, and 1 when both masks are empty.
- F = boundary F-measure: 1-pixel boundaries from `seg2bmap`, matched within a disk of radius
  ceil(bound_th * diagonal) = 8 px at 854x480; both-empty -> 1, one side empty -> 0.
- Statistics per sequence on frames [1:-1] (the first frame is the given mask, the last is not scored
  either), then the plain mean over sequences. (The DAVIS-2016 toolkit keeps [nan, v.., nan] and strips
  the ends before recall and decay; davis2017-evaluation slices first: both equal db_statistics(v).) Decay bins use
  int64 indices (the official code casts
  them to uint8, which wraps past 255 frames; the SiamPolar reference pooled 1376 frames and so got
  bins [0:89] and [7:96] -- see `pooled_statistics`).
- Sequences with fewer than 3 frames have no frame the protocol scores: they are refused (UserError), never
  scored on the given first mask (which would read J = F = 100; the official tools return NaN there).
- Masks are bool, integer (nonzero = foreground) or float holding only 0 and 1; a soft or NaN float mask is
  refused rather than cast (NaN casts to True).

Scoring folders of PNGs (and its command line) is `evaluation.folders`. This module needs numpy and OpenCV only.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable, Iterable, Mapping, Sequence

import cv2
import numpy as np

from siampolar_lib.errors import UserError
from siampolar_lib.geometry.polar import mask_iou

BOUND_TH = 0.008  # boundary tolerance as a fraction of the image diagonal (DAVIS default)
STAT_KEYS = ("J_M", "J_O", "J_D", "F_M", "F_O", "F_D", "JF_M")  # DAVIS's statistics (fractions 0..1)

# A per-frame measure: preds, gts (T, H, W) bool, bound_th -> (T,) float64 in [0, 1]. Each registered measure X gets
# the statistics X_M, X_O, X_D (`db_statistics`) in every sequence row, summary, table and results.json.
Measure = Callable[[np.ndarray, np.ndarray, float], np.ndarray]
MEASURES: dict[str, Measure] = {}


def register_measure(name: str) -> Callable[[Measure], Measure]:
    """Decorator adding a per-frame measure under `name` (the one place a new metric is written)."""
    if not name.isidentifier() or "_" in name:
        raise ValueError(f"a measure's name must be a word without '_', got {name!r}")

    def add(fn: Measure) -> Measure:
        MEASURES[name] = fn
        return fn

    return add


def stat_keys() -> tuple[str, ...]:
    """Every sequence statistic the registered measures give: X_M, X_O, X_D per measure X, then JF_M."""
    return tuple(f"{m}_{s}" for m in MEASURES for s in "MOD") + ("JF_M",)


# ---------------------------------------------------------------------------------------------
# Per-frame measures
# ---------------------------------------------------------------------------------------------
def jaccard(pred: np.ndarray, gt: np.ndarray) -> float:
    """Region similarity |pred & gt| / |pred | gt| of two (H, W) masks; 1.0 when both are empty."""
    return mask_iou(*_check_pair(pred, gt))


def batched_jaccard(preds: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """J for each frame of (T, H, W) masks -> (T,) float64."""
    preds, gts = _check_pair(preds, gts)
    inter = np.count_nonzero(preds & gts, axis=(-2, -1))
    union = np.count_nonzero(preds | gts, axis=(-2, -1))
    out = np.ones(inter.shape, dtype=np.float64)
    nz = union > 0
    out[nz] = inter[nz] / union[nz]
    return out


def seg2bmap(mask: np.ndarray) -> np.ndarray:
    """1-pixel boundary map of an (H, W) mask, offset half a pixel towards the origin (official DAVIS).

    A pixel is boundary when it differs from its east, south or south-east neighbour; the last row only
    compares east, the last column only south, and the bottom-right pixel is never boundary.
    """
    seg = np.asarray(mask).astype(bool)
    if seg.ndim != 2:
        raise ValueError(f"seg2bmap wants an (H, W) mask, got shape {seg.shape}")
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def boundary_radius(shape: Sequence[int], bound_th: float = BOUND_TH) -> int:
    """Match tolerance in pixels: bound_th itself when >= 1, else ceil(bound_th * ||(H, W)||) (8 at 854x480)."""
    if bound_th >= 1:
        return int(bound_th)
    return int(np.ceil(bound_th * np.linalg.norm(shape[:2])))


@lru_cache(maxsize=16)
def disk(radius: int) -> np.ndarray:
    """(2r+1, 2r+1) uint8 disk x^2 + y^2 <= r^2: the same footprint as skimage.morphology.disk(r)."""
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return (x * x + y * y <= radius * radius).astype(np.uint8)


def f_measure(pred: np.ndarray, gt: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """Boundary F-measure of two (H, W) masks with the official DAVIS tolerance and empty cases.

    Only the bounding box of both masks (plus one pixel) is processed: every boundary pixel lies in it,
    and only boundary pixels are counted, so the result is identical to the full frame, and faster.
    """
    pred, gt = _check_pair(pred, gt)
    if pred.ndim != 2:
        raise ValueError(f"f_measure wants (H, W) masks, got {pred.shape}; use batched_f_measure")
    radius = boundary_radius(pred.shape, bound_th)
    rows = np.flatnonzero(pred.any(axis=1) | gt.any(axis=1))
    if rows.size == 0:
        return 1.0  # both empty: no boundary on either side
    cols = np.flatnonzero(pred.any(axis=0) | gt.any(axis=0))
    pad = 1  # boundary pixels sit at most 1 px above/left of a mask; one zero row/column below/right
    h, w = pred.shape
    y0, y1 = max(rows[0] - pad, 0), min(rows[-1] + pad + 1, h)
    x0, x1 = max(cols[0] - pad, 0), min(cols[-1] + pad + 1, w)
    # Below/right of the mask the crop ends on a zero row/column (or the image edge), where seg2bmap's
    # last-row/column rule gives the full-frame value. Dilation sources (boundary pixels) are all inside.
    pred_b = seg2bmap(pred[y0:y1, x0:x1])
    gt_b = seg2bmap(gt[y0:y1, x0:x1])
    n_pred = np.count_nonzero(pred_b)
    n_gt = np.count_nonzero(gt_b)
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0  # official: P=1,R=0 or P=0,R=1 -> F = 2PR/(P+R) = 0
    kernel = disk(radius)
    pred_dil = cv2.dilate(pred_b.view(np.uint8), kernel)
    gt_dil = cv2.dilate(gt_b.view(np.uint8), kernel)
    precision = np.count_nonzero(pred_b & (gt_dil > 0)) / n_pred
    recall = np.count_nonzero(gt_b & (pred_dil > 0)) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def batched_f_measure(preds: np.ndarray, gts: np.ndarray, bound_th: float = BOUND_TH) -> np.ndarray:
    """F for each frame of (T, H, W) masks -> (T,) float64."""
    preds, gts = _check_pair(preds, gts)
    if preds.ndim != 3:
        raise ValueError(f"batched_f_measure wants (T, H, W) masks, got {preds.shape}")
    return np.array([f_measure(p, g, bound_th) for p, g in zip(preds, gts)], dtype=np.float64)


@register_measure("J")
def _region(preds: np.ndarray, gts: np.ndarray, bound_th: float) -> np.ndarray:
    """J per frame (`batched_jaccard`; the boundary tolerance does not apply)."""
    return batched_jaccard(preds, gts)


@register_measure("F")
def _boundary(preds: np.ndarray, gts: np.ndarray, bound_th: float) -> np.ndarray:
    """F per frame (`batched_f_measure`)."""
    return batched_f_measure(preds, gts, bound_th)


def frame_measures(preds: np.ndarray, gts: np.ndarray, bound_th: float = BOUND_TH) -> dict[str, np.ndarray]:
    """Every registered measure of (T, H, W) masks: {name: (T,) float64}."""
    preds, gts = _check_pair(preds, gts)
    return {name: np.asarray(fn(preds, gts, bound_th), dtype=np.float64) for name, fn in MEASURES.items()}


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as bool (nonzero = foreground), with a clear error on a shape mismatch or a soft mask."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} != ground-truth shape {gt.shape}")
    return _as_mask(pred, "prediction"), _as_mask(gt, "ground-truth")


def _as_mask(a: np.ndarray, what: str) -> np.ndarray:
    """A mask as bool: bool and integer arrays (label masks: nonzero = foreground) as they are; a float array only
    when every value is 0 or 1. A soft (0.3) or NaN value is refused: bool() would call it foreground."""
    if a.dtype.kind in "fc":
        bad = (a != 0) & (a != 1)  # NaN compares unequal to both
        if bad.any():
            v = a[bad].flat[0]
            raise UserError(f"the {what} mask is {a.dtype} with {np.count_nonzero(bad)} values that are not 0 or 1 "
                            f"(e.g. {v}): threshold a soft mask first (mask > 0.5); NaN is never a mask value")
    elif a.dtype.kind not in "biu":
        raise UserError(f"the {what} mask has dtype {a.dtype}: give a bool, integer or 0/1 float mask")
    return a.astype(bool, copy=False)


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------
def decay_bin_ids(n: int, wrap_uint8: bool = False) -> np.ndarray:
    """The 5 edges of the 4 decay bins over n values: round(linspace(1, n, 5) + 1e-10) - 1, int64.

    Bin i is values[ids[i] : ids[i+1] + 1]. `wrap_uint8=True` reproduces the official cast to uint8,
    which wraps when n > 256 (kept only to show what the reference's pooled protocol computed).
    """
    ids = (np.round(np.linspace(1, n, 5) + 1e-10) - 1).astype(np.int64)
    return ids.astype(np.uint8).astype(np.int64) if wrap_uint8 else ids


def db_statistics(values: Iterable[float], wrap_uint8: bool = False) -> tuple[float, float, float]:
    """(mean, recall, decay) of per-frame scores, as the official `db_statistics` (NaNs ignored).

    recall = fraction of values > 0.5; decay = mean(bin 1) - mean(bin 4) of 4 bins over time.
    """
    v = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"db_statistics wants a non-empty 1-D array, got shape {v.shape}")
    valid = ~np.isnan(v)
    if not valid.any():
        raise ValueError("db_statistics got only NaN values")
    mean = float(np.mean(v[valid]))
    recall = float(np.mean(v[valid] > 0.5))
    ids = decay_bin_ids(v.size, wrap_uint8)
    first, last = v[ids[0]:ids[1] + 1], v[ids[3]:ids[4] + 1]
    decay = float(_nanmean(first) - _nanmean(last))
    return mean, recall, decay


def _nanmean(x: np.ndarray) -> float:
    """Mean of the non-NaN values; NaN for an empty or all-NaN bin (as np.nanmean, without the warning)."""
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else float("nan")


def scored_slice(n_frames: int) -> slice:
    """Frames the DAVIS semi-supervised protocol scores: [1:-1] (not the given first mask, not the last).

    UserError for fewer than 3 frames: there is nothing to score (scoring the given mask would read 100).
    """
    if n_frames < 3:
        raise UserError(f"a sequence of {n_frames} frame{'s' * (n_frames != 1)} has nothing to score: the DAVIS "
                        "protocol scores frames [1:-1] (frame 0 is the given mask, the last is not scored), so at "
                        "least 3 frames are needed")
    return slice(1, n_frames - 1)


def evaluate_sequence(pred_masks: np.ndarray, gt_masks: np.ndarray, bound_th: float = BOUND_TH) -> dict:
    """Score one sequence of (T, H, W) masks: X_M/X_O/X_D per measure (J, F) and JF_M on the scored frames.

    Each measure's per-frame list over ALL T frames is kept under its name (`J`, `F`; index = frame number);
    the statistics use only `scored_slice(T)`, i.e. frames [1:-1] (UserError for T < 3: nothing to score).
    """
    preds, gts = _check_pair(pred_masks, gt_masks)
    if preds.ndim != 3 or preds.shape[0] == 0:
        raise ValueError(f"evaluate_sequence wants (T, H, W) masks with T >= 1, got {preds.shape}")
    return sequence_statistics(frame_measures(preds, gts, bound_th))


def sequence_statistics(per_frame: Mapping[str, np.ndarray]) -> dict:
    """One sequence's row from per-frame measures {name: (T,)} over all frames: X_M/X_O/X_D on frames [1:-1],
    JF_M, and each measure's per-frame list."""
    row: dict = {}
    for name, values in per_frame.items():
        values = np.asarray(values, dtype=np.float64)
        row.update(zip((f"{name}_M", f"{name}_O", f"{name}_D"), db_statistics(values[scored_slice(len(values))])))
    row["JF_M"] = (row["J_M"] + row["F_M"]) / 2
    return row | {name: np.asarray(values).tolist() for name, values in per_frame.items()}


def mean_over_sequences(rows: dict[str, dict]) -> dict:
    """Official summary: each statistic averaged over sequences (each sequence weighs the same)."""
    if not rows:
        raise ValueError("no sequences to average")
    keys = [k for k in next(iter(rows.values())) if k[-2:] in ("_M", "_O", "_D") and k != "JF_M"]
    out = {k: float(np.mean([r[k] for r in rows.values()])) for k in keys}
    out["JF_M"] = (out["J_M"] + out["F_M"]) / 2
    return out


def pooled_statistics(per_frame: Sequence[Sequence[float]], keep_first_last: bool = True,
                      wrap_uint8: bool = True) -> tuple[float, float, float]:
    """The SiamPolar reference's (non-DAVIS) protocol: all frames of all sequences pooled, M/O/D once.

    Defaults reproduce REF `davis_eval.py`: first and last frames kept, decay bins cast to uint8 (for
    1376 frames they wrap to [0:89] and [7:96]). Pass the per-frame lists of `evaluate_sequence`.
    Use it only to show the difference from `mean_over_sequences`, never to report results.
    """
    parts = [np.asarray(v, dtype=np.float64) for v in per_frame]
    if not keep_first_last:
        parts = [v[scored_slice(len(v))] for v in parts]
    return db_statistics(np.concatenate(parts), wrap_uint8=wrap_uint8)


def check_min_frames(max_frames: int | None, option: str = "--max-frames") -> None:
    """Refuse a frame limit under 3: the DAVIS protocol scores frames [1:-1], so fewer leave nothing to score."""
    if max_frames is not None and max_frames < 3:
        raise UserError(f"{option} {max_frames}: at least 3 frames are needed (the DAVIS protocol does not score "
                        "the first frame, which is the given mask, or the last), so there would be nothing to score")
