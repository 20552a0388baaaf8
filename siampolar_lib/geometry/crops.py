"""Square crops with context, as SiamFC/pysot take them; the default crop geometry lives here.

A crop is an axis-aligned similarity transform: crop_xy = (frame_xy - centre) * scale + (out - 1) / 2,
so the frame point `centre` lands on the crop's middle pixel (127 of 255, 63 of 127). Pixels outside
the frame are filled with the frame's per-channel mean colour (pysot's `avg_chans`).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# The default crop geometry (pysot's EXEMPLAR_SIZE, INSTANCE_SIZE, CONTEXT_AMOUNT). models.config.ModelConfig
# takes its defaults from here; a trained network's own sizes are `model.config.*`.
TEMPLATE_SIZE: int = 127  # exemplar crop side, pixels
SEARCH_SIZE: int = 255  # instance crop side, pixels
CONTEXT: float = 0.5  # context amount: p = CONTEXT * (w + h)


@dataclass(frozen=True)
class CropGeometry:
    """The three numbers a pair of crops follows; any object with these fields (a ModelConfig) serves as one."""

    template_size: int = TEMPLATE_SIZE  # template crop side, pixels
    search_size: int = SEARCH_SIZE  # search crop side, pixels
    context: float = CONTEXT  # context amount around a target box


def context_side(w, h, context: float = CONTEXT):
    """Side s_z of the template region for a w x h target: sqrt((w + p)(h + p)), p = context (w + h).

    Scalars give a float; arrays broadcast and give an array.
    """
    p = context * (w + h)
    side = np.sqrt((w + p) * (h + p))
    return float(side) if np.ndim(side) == 0 else side


def search_side(w: float, h: float, context: float = CONTEXT,
                template_size: int = TEMPLATE_SIZE, search_size: int = SEARCH_SIZE) -> float:
    """Side s_x of the search region: s_z * search_size / template_size."""
    return context_side(w, h, context) * search_size / template_size


@dataclass(frozen=True)
class CropTransform:
    """Maps points between a frame and a square crop of it: crop = (frame - centre) * scale + (out-1)/2."""

    centre: tuple[float, float]  # (cx, cy) in frame pixels
    scale: float  # crop pixels per frame pixel
    out_size: int  # crop side, pixels

    def to_crop(self, xy: np.ndarray) -> np.ndarray:
        """Frame points (..., 2) -> crop points (..., 2)."""
        c = np.asarray(self.centre, dtype=np.float64)
        return (np.asarray(xy, dtype=np.float64) - c) * self.scale + (self.out_size - 1) / 2.0

    def to_frame(self, xy: np.ndarray) -> np.ndarray:
        """Crop points (..., 2) -> frame points (..., 2)."""
        c = np.asarray(self.centre, dtype=np.float64)
        return (np.asarray(xy, dtype=np.float64) - (self.out_size - 1) / 2.0) / self.scale + c

    def matrix(self) -> np.ndarray:
        """The 2x3 affine matrix frame -> crop, for cv2.warpAffine."""
        s = self.scale
        t = (self.out_size - 1) / 2.0
        cx, cy = self.centre
        return np.array([[s, 0.0, t - s * cx], [0.0, s, t - s * cy]], dtype=np.float64)


def crop_square(frame: np.ndarray, centre_xy, side: float, out_size: int,
                pad_value=None, interpolation: int = cv2.INTER_LINEAR) -> tuple[np.ndarray, CropTransform]:
    """Crop a side x side square around centre_xy and resize it to out_size x out_size.

    frame: (H, W, 3) uint8 (or (H, W) for masks: use interpolation=cv2.INTER_NEAREST, pad_value=0).
    Returns the crop (out_size, out_size[, 3]) of the frame's dtype and its CropTransform.
    """
    if side <= 0 or not np.isfinite(side):
        raise ValueError(f"crop side must be positive and finite, got {side}")
    tf = CropTransform((float(centre_xy[0]), float(centre_xy[1])), out_size / float(side), int(out_size))
    if pad_value is None:
        # cv2.mean is ~20x faster than numpy's mean on an 854x480 frame (it matters at tracking speed).
        pad_value = cv2.mean(frame)[: frame.shape[2]] if frame.ndim == 3 else 0
    border = tuple(float(v) for v in np.atleast_1d(pad_value))
    crop = cv2.warpAffine(frame, tf.matrix(), (out_size, out_size), flags=interpolation,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)
    return crop, tf
