"""Benchmark mask -> rays: per-mask time and a 625-centre batch for each method, side by side.

    python -m benchmarks.bench_polar --davis-root ../shared/data/DAVIS [--masks 30]

Also prints each method's mean round-trip IoU (mass centre, 36 rays) on the same masks.
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np

from benchmarks.timing import best_seconds
from siampolar_lib.geometry.polar import mask_to_rays, mass_centre, polar_fit_iou
from siampolar_lib.io import read_mask_png
from siampolar_lib.paths import davis_root

METHODS = ("cast", "exit", "contour")


def _time(fn, repeat: int) -> float:
    """Best-of-`repeat` wall time of fn(), milliseconds."""
    return 1000.0 * best_seconds(fn, repeat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--davis-root", default=None)
    ap.add_argument("--masks", type=int, default=30, help="number of masks, spread over the sequences")
    ap.add_argument("--rays", type=int, default=36)
    a = ap.parse_args()
    ann = davis_root(a.davis_root) / "Annotations" / "480p"
    files = sorted(ann.glob("*/*.png"))
    if not files:
        raise SystemExit(f"{ann}: no annotation PNGs")
    files = files[:: max(1, len(files) // a.masks)][: a.masks]
    masks = [read_mask_png(f) for f in files]
    masks = [m for m in masks if m.any()]
    print(f"{len(masks)} masks of {masks[0].shape[1]}x{masks[0].shape[0]}, {a.rays} rays, best of 3 runs")
    print(f"{'method':>8} {'ms/mask':>9} {'ms/625 full':>12} {'ms/625 crop':>12} {'IoU':>7}")
    base = None
    for meth in METHODS:
        one, full, crop, iou = [], [], [], []
        for m in masks:
            c = mass_centre(m)
            one.append(_time(lambda: mask_to_rays(m, c, a.rays, method=meth), 3))
            ys, xs = np.nonzero(m)
            # 625 centres: a 25x25 lattice over the mask's box (all positives of a 25x25 map, worst case).
            grid = np.stack(np.meshgrid(np.linspace(xs.min(), xs.max(), 25),
                                        np.linspace(ys.min(), ys.max(), 25)), -1).reshape(-1, 2)
            full.append(_time(lambda: mask_to_rays(m, grid, a.rays, method=meth), 1))
            # The training case: a 255x255 search crop around the object.
            cx, cy = c.astype(int)
            y0, x0 = max(cy - 127, 0), max(cx - 127, 0)
            sub = cv2.resize(m[y0:y0 + 255, x0:x0 + 255].astype(np.uint8), (255, 255),
                             interpolation=cv2.INTER_NEAREST) > 0
            g = np.stack(np.meshgrid(np.arange(25) * 8 + 31, np.arange(25) * 8 + 31), -1).reshape(-1, 2)
            crop.append(_time(lambda: mask_to_rays(sub, g.astype(float), a.rays, method=meth), 1))
            iou.append(polar_fit_iou(m, a.rays, "mass", method=meth))
        row = np.array([np.mean(one), np.mean(full), np.mean(crop)])
        base = row if base is None else base
        print(f"{meth:>8} {row[0]:9.2f} {row[1]:12.1f} {row[2]:12.1f} {np.mean(iou):7.3f}"
              f"   (x{row[0] / base[0]:.2f}, x{row[1] / base[1]:.2f}, x{row[2] / base[2]:.2f} of cast)")


if __name__ == "__main__":
    main()
