"""Boxes in the one convention of the course: box_xywh = (x, y, w, h), top-left corner, pixels.

Pixel centres sit at integer coordinates (OpenCV/COCO style): pixel (row i, col j) covers
[j - 0.5, j + 0.5] x [i - 0.5, i + 0.5].
"""
from __future__ import annotations

import numpy as np


def mask_to_box(mask: np.ndarray) -> np.ndarray | None:
    """Tight box of a mask as (x, y, w, h) float, like cv2.boundingRect; None for an empty mask.

    mask: (H, W) bool or 0/1/255.
    """
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    return np.array([x0, y0, x1 - x0 + 1, y1 - y0 + 1], dtype=np.float64)


def box_mask(box_xywh, shape: tuple[int, int]) -> np.ndarray:
    """Fill a box (x, y, w, h) into an (H, W) bool mask: the pixels whose centres lie inside it."""
    H, W = shape[:2]
    x, y, w, h = (float(v) for v in box_xywh)
    x0, y0 = max(int(np.ceil(x - 0.5)), 0), max(int(np.ceil(y - 0.5)), 0)
    x1, y1 = min(int(np.ceil(x + w - 0.5)), W), min(int(np.ceil(y + h - 0.5)), H)
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def polygon_box(polygon: np.ndarray) -> np.ndarray:
    """Axis-aligned box (x, y, w, h) float of a polygon's vertices (R, 2), pixels."""
    p = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    x0, y0 = p.min(axis=0)
    x1, y1 = p.max(axis=0)
    return np.array([x0, y0, x1 - x0, y1 - y0])


def box_centre(box_xywh) -> np.ndarray:
    """Centre (cx, cy) of a box, pixels (SiamMask convention: x + w/2, y + h/2)."""
    x, y, w, h = (float(v) for v in box_xywh)
    return np.array([x + w / 2.0, y + h / 2.0])


MIN_BOX_SIDE = 2.0  # pixels: a smaller box holds no whole pixel to track (its mask would be empty)
MAX_BOX_SIDE = 100_000.0  # pixels: far beyond any frame; a larger side overflows the crop arithmetic


def _plain(values) -> str:
    """Numbers as plain text, '(-10, 5.5, 20, 20)' (never np.float64(...))."""
    return "(" + ", ".join(f"{float(v):g}" for v in values) + ")"


def check_box_size(box_xywh, name: str = "box") -> None:
    """Raise ValueError unless both sides of a (4,) box are at least MIN_BOX_SIDE pixels."""
    w, h = float(box_xywh[2]), float(box_xywh[3])
    if w <= 0 or h <= 0:
        raise ValueError(f"{name} {_plain(box_xywh)} has zero or negative size (w={w:g}, h={h:g})")
    if w < MIN_BOX_SIDE or h < MIN_BOX_SIDE:
        raise ValueError(f"{name} {_plain(box_xywh)} is {w:g}x{h:g} px: a box needs at least {MIN_BOX_SIDE:g} px "
                         "a side (a smaller one holds no whole pixel, so every mask would be empty)")
    if w > MAX_BOX_SIDE or h > MAX_BOX_SIDE:
        raise ValueError(f"{name} {_plain(box_xywh)} is {w:g}x{h:g} px: a box may be at most {MAX_BOX_SIDE:g} px "
                         "a side "
                         "(its crops would not fit in memory or in floating point)")


def validate_box(box_xywh, image_shape: tuple[int, int], name: str = "box") -> np.ndarray:
    """Check a box against an image of shape (H, W); return it as float (4,) or raise ValueError.

    A non-finite value, a side under MIN_BOX_SIDE pixels, no overlap with the image, or a visible part
    (inside the image) under MIN_BOX_SIDE a side is an error. A box partly outside (e.g. negative x) is fine.
    """
    b = np.asarray(box_xywh, dtype=np.float64).reshape(-1)
    if b.size != 4 or not np.all(np.isfinite(b)):
        raise ValueError(f"{name} must be 4 finite numbers (x, y, w, h), got {box_xywh!r}")
    check_box_size(b, name)
    x, y, w, h = (float(v) for v in b)
    H, W = image_shape[:2]
    if x >= W or y >= H or x + w <= 0 or y + h <= 0:
        raise ValueError(f"{name} {_plain(b)} lies outside the {W}x{H} image")
    _, _, vw, vh = clip_box(b, (H, W))
    if vw < MIN_BOX_SIDE or vh < MIN_BOX_SIDE:
        raise ValueError(f"{name} {_plain(b)}: only {vw:g}x{vh:g} px of it lie inside the {W}x{H} image; "
                         f"at least {MIN_BOX_SIDE:g} px a side must")
    return b


def clip_box(box_xywh, image_shape: tuple[int, int]) -> np.ndarray:
    """Clip a box to the image (H, W); the result may have zero size if it lay outside."""
    H, W = image_shape[:2]
    x, y, w, h = (float(v) for v in box_xywh)
    x0, y0 = min(max(x, 0.0), W), min(max(y, 0.0), H)
    x1, y1 = min(max(x + w, 0.0), W), min(max(y + h, 0.0), H)
    return np.array([x0, y0, x1 - x0, y1 - y0])


def box_iou(a, b) -> float:
    """IoU of two (x, y, w, h) boxes; 0 when either is empty."""
    ax, ay, aw, ah = (float(v) for v in a)
    bx, by, bw, bh = (float(v) for v in b)
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0
