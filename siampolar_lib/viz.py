"""Plotting helpers shared by the notebooks (one home, never redefined in a notebook).

Frames are (H, W, 3) uint8 RGB; masks (H, W) bool; polygons (R, 2) float pixels (x, y).
"""
from __future__ import annotations

import inspect

import numpy as np


def show_source(obj) -> None:
    """Display an object's source as Markdown in a notebook (inspect.getsource)."""
    from IPython.display import Markdown, display

    display(Markdown("```python\n" + inspect.getsource(obj).rstrip() + "\n```"))


def overlay_mask(frame: np.ndarray, mask: np.ndarray, color=(255, 64, 64), alpha: float = 0.45) -> np.ndarray:
    """Blend a coloured mask over a frame: (H, W, 3) uint8 RGB, (H, W) bool -> (H, W, 3) uint8."""
    out = frame.astype(np.float32).copy()
    m = np.asarray(mask, bool)
    out[m] = (1 - alpha) * out[m] + alpha * np.asarray(color, np.float32)
    return out.clip(0, 255).astype(np.uint8)


def draw_polygon(ax, polygon, centre=None, color="yellow", rays: bool = False, lw: float = 1.5) -> None:
    """Draw a closed polygon (R, 2) on a matplotlib axis; with rays=True also the spokes from centre."""
    p = np.asarray(polygon, dtype=np.float64)
    closed = np.vstack([p, p[:1]])
    ax.plot(closed[:, 0], closed[:, 1], color=color, lw=lw)
    if centre is not None:
        ax.plot([centre[0]], [centre[1]], marker="+", color=color, ms=10, mew=2)
        if rays:
            for q in p:
                ax.plot([centre[0], q[0]], [centre[1], q[1]], color=color, lw=0.6, alpha=0.7)


def draw_box(ax, box_xywh, color="lime", lw: float = 1.5, label: str | None = None) -> None:
    """Draw an (x, y, w, h) box on a matplotlib axis."""
    from matplotlib.patches import Rectangle

    x, y, w, h = (float(v) for v in box_xywh)
    ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, ec=color, lw=lw, label=label))
