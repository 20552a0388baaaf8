"""Photometric augmentations for training crops (pysot style): colour jitter and blur.

Every function takes the random generator explicitly, so a pair is a pure function of (index, seed).
Geometric jitter (shift, scale, flip) lives in `data.pairs`, where the mask must follow the image.
"""
from __future__ import annotations

import cv2
import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # RGB -> grey weights (ITU-R BT.601)


def colour_jitter(img: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Random brightness, contrast and saturation, each a factor in [1 - strength, 1 + strength].

    img: (H, W, 3) RGB, uint8 or float 0..255. Returns (H, W, 3) float32 0..255.
    """
    out = img.astype(np.float32)
    if strength <= 0:
        return out
    b, c, s = 1.0 + rng.uniform(-strength, strength, size=3)
    # Brightness then contrast about the mean grey level, folded into one multiply-add:
    # ((x b) - g b) c + g b = x (b c) + g b (1 - c), with g the mean grey of the input.
    g = float(np.dot(cv2.mean(out)[:3], LUMA))
    out = out * np.float32(b * c) + np.float32(g * b * (1.0 - c))
    grey = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)[..., None]  # same BT.601 weights as LUMA
    out = grey + (out - grey) * np.float32(s)  # saturation: 0 = grey, 1 = unchanged
    return np.clip(out, 0.0, 255.0)


def gaussian_blur(img: np.ndarray, rng: np.random.Generator, max_sigma: float = 2.0) -> np.ndarray:
    """Gaussian blur with sigma uniform in [0.5, max_sigma] pixels: (H, W, 3) float32 -> same."""
    sigma = float(rng.uniform(0.5, max_sigma))
    k = 2 * int(np.ceil(2.5 * sigma)) + 1  # odd kernel covering +-2.5 sigma
    return cv2.GaussianBlur(img.astype(np.float32), (k, k), sigma)
