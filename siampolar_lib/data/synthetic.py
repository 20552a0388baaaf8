"""A synthetic DAVIS folder: textured star-shaped objects that move, scale, rotate, get occluded and leave.

Same layout as the real set (JPEGImages/480p, Annotations/480p 0/255 PNGs, ImageSets/2016/{train,val}.txt,
Annotations/db_info.yml), so everything that reads DAVIS reads it. Deterministic: the same seed gives
the same bytes. Sequence 1 of every set (with 2 or more sequences) always leaves the frame, so its last
masks are empty; every other sequence flips a coin for it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from siampolar_lib.io import atomic_write

JPEG_QUALITY = 90
N_VERTICES = 96  # polygon resolution of an object's outline


@dataclass(frozen=True)
class _Motion:
    """One sequence's object motion, frame t in [0, 1]: centre, scale and angle as functions of t."""

    start: np.ndarray  # (2,) centre at t=0, pixels
    end: np.ndarray  # (2,) centre at t=1, pixels
    wobble: np.ndarray  # (2,) amplitude of a sinusoidal wobble added to the straight path, pixels
    scale: tuple[float, float]  # scale at t=0 and t=1 (linear), times a small pulse
    spin: float  # total rotation over the sequence, radians

    def at(self, t: float) -> tuple[np.ndarray, float, float]:
        """Centre (2,) pixels, scale, angle (radians) at t in [0, 1]."""
        centre = self.start + t * (self.end - self.start) + self.wobble * np.sin(2 * np.pi * t)
        scale = (self.scale[0] + t * (self.scale[1] - self.scale[0])) * (1 + 0.08 * np.sin(4 * np.pi * t))
        return centre, float(scale), float(self.spin * t)


def _texture(rng: np.random.Generator, h: int, w: int, palette: np.ndarray) -> np.ndarray:
    """A colour texture: (h, w, 3) uint8 RGB, smooth blobs of a 2-colour palette (2, 3) times stripes."""
    cell = int(rng.integers(12, 40))
    noise = rng.random((h // cell + 3, w // cell + 3)).astype(np.float32)
    blobs = cv2.resize(noise, (w + 2 * cell, h + 2 * cell), interpolation=cv2.INTER_CUBIC)[cell:cell + h, cell:cell + w]
    blobs = np.clip(blobs, 0, 1)[..., None]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    a, period = rng.uniform(0, np.pi), rng.uniform(6, 30)
    stripes = 0.75 + 0.25 * np.sin(2 * np.pi * (xs * np.cos(a) + ys * np.sin(a)) / period)[..., None]
    img = (palette[0] * (1 - blobs) + palette[1] * blobs) * stripes
    return np.clip(img, 0, 255).astype(np.uint8)


def _star(rng: np.random.Generator, radius: float) -> np.ndarray:
    """A non-convex closed outline around (0, 0): (N_VERTICES, 2) float, radius about `radius` pixels."""
    theta = np.linspace(0, 2 * np.pi, N_VERTICES, endpoint=False)
    r = np.ones_like(theta)
    for k in rng.choice(np.arange(2, 7), size=2, replace=False):
        r += rng.uniform(0.15, 0.35) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    r = np.clip(r, 0.3, None) * radius
    return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)


def _affine(centre: np.ndarray, scale: float, angle: float) -> np.ndarray:
    """2x3 matrix taking object coordinates (origin at the object's centre) to frame pixels."""
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, centre[0]], [s, c, centre[1]]], dtype=np.float64)


def _fill(polygon: np.ndarray, h: int, w: int) -> np.ndarray:
    """Rasterise a polygon (N, 2) float pixels: (h, w) bool (pixel centres at integer coordinates)."""
    canvas = np.zeros((h, w), np.uint8)
    pts = np.round(polygon * 16).astype(np.int32)  # 4 fractional bits keep sub-pixel vertex positions
    cv2.fillPoly(canvas, [pts], 1, lineType=cv2.LINE_8, shift=4)
    return canvas.astype(bool)


def _sequence(rng: np.random.Generator, frames: int, w: int, h: int, leaves: bool, occluder: bool = True):
    """Yield (frame (h, w, 3) uint8 RGB, mask (h, w) bool) for one sequence (occluder=False: none drawn)."""
    unit = min(w, h)
    radius = rng.uniform(0.12, 0.2) * unit
    outline = _star(rng, radius)
    tex_side = int(2 * radius * 1.6) + 2
    obj_palette = rng.uniform(0, 255, (2, 3)).astype(np.float32)
    obj_tex = _texture(rng, tex_side, tex_side, obj_palette)
    pad = unit // 4
    bg_palette = rng.uniform(40, 200, (2, 3)).astype(np.float32)
    background = _texture(rng, h + 2 * pad, w + 2 * pad, bg_palette)
    pan = rng.uniform(-pad, pad, 2)  # camera pan over the sequence, pixels

    start = np.array([rng.uniform(0.3, 0.7) * w, rng.uniform(0.35, 0.65) * h])
    s0, s1 = rng.uniform(0.8, 1.1), rng.uniform(0.6, 1.5)
    if leaves:  # cross the right or left edge with about a quarter of the frames still to go
        side = rng.choice([-1.0, 1.0])
        exit_x = w + 2.2 * radius * max(s0, s1) if side > 0 else -2.2 * radius * max(s0, s1)
        end = np.array([start[0] + (exit_x - start[0]) / 0.75, start[1] + rng.uniform(-0.1, 0.1) * h])
    else:
        end = np.array([rng.uniform(0.25, 0.75) * w, rng.uniform(0.3, 0.7) * h])
    motion = _Motion(start, end, rng.uniform(-0.05, 0.05, 2) * unit, (s0, s1), rng.uniform(-np.pi, np.pi))

    occ_side = rng.uniform(0.25, 0.4) * unit
    occ_tex = _texture(rng, int(occ_side) + 2, int(occ_side) + 2, rng.uniform(0, 255, (2, 3)).astype(np.float32))
    occ_y = float(np.clip(start[1] + rng.uniform(-0.5, 0.5) * radius, 0, h))
    occ_dir = rng.choice([-1.0, 1.0])  # sweeps across the frame during the middle of the sequence
    occ_x0, occ_x1 = (-occ_side, w + occ_side) if occ_dir > 0 else (w + occ_side, -occ_side)

    tex_centre = np.array([tex_side / 2, tex_side / 2])
    for i in range(frames):
        t = i / max(frames - 1, 1)
        centre, scale, angle = motion.at(t)
        A = _affine(centre, scale, angle)
        polygon = outline @ A[:, :2].T + A[:, 2]
        mask = _fill(polygon, h, w)
        # texture pixel p maps to the frame at A (p - tex_centre): fold the shift into the matrix
        A_tex = A.copy()
        A_tex[:, 2] -= A[:, :2] @ tex_centre
        tex = cv2.warpAffine(obj_tex, A_tex, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        ox, oy = pad + pan * t
        frame = background[int(oy):int(oy) + h, int(ox):int(ox) + w].copy()
        frame[mask] = tex[mask]
        # occluder: a textured square sweeping across between t = 0.3 and t = 0.8 (frame 0 stays clear)
        u = (t - 0.3) / 0.5
        if occluder and 0.0 <= u <= 1.0:
            cx = occ_x0 + u * (occ_x1 - occ_x0)
            x0, y0 = int(round(cx - occ_side / 2)), int(round(occ_y - occ_side / 2))
            occ = np.zeros((h, w), bool)
            fx0, fy0 = max(x0, 0), max(y0, 0)
            fx1, fy1 = min(x0 + occ_tex.shape[1], w), min(y0 + occ_tex.shape[0], h)
            if fx1 > fx0 and fy1 > fy0:
                occ[fy0:fy1, fx0:fx1] = True
                frame[fy0:fy1, fx0:fx1] = occ_tex[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
                mask &= ~occ
        yield frame, mask


def make_synthetic_davis(out: str | os.PathLike, sequences: int = 8, frames: int = 24, seed: int = 0,
                         size: tuple[int, int] = (854, 480), occluders: bool = True) -> Path:
    """Write a synthetic DAVIS folder at `out` (must not exist or be empty); return its path.

    size: (width, height) of every frame, pixels. The last quarter of the sequences (at least one) form
    the val split, the rest train. occluders=False draws no occluders (all else identical, for checks).
    Written to a temporary folder beside `out`, then renamed.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out}: exists and is not an empty folder; refusing to overwrite it")
    if sequences < 1 or frames < 2:
        raise ValueError(f"need at least 1 sequence and 2 frames, got sequences={sequences}, frames={frames}")
    w, h = (int(v) for v in size)
    if w < 32 or h < 32:
        raise ValueError(f"size {size} is too small: width and height must be at least 32 pixels")
    with atomic_write(out, folder=True) as tmp:
        names = [f"synth{i:02d}" for i in range(sequences)]
        entries = []
        for i, name in enumerate(names):
            rng = np.random.default_rng([seed, i])
            leaves = (i == 1) or (i != 0 and bool(rng.random() < 0.3))
            jpg_dir, png_dir = tmp / "JPEGImages" / "480p" / name, tmp / "Annotations" / "480p" / name
            jpg_dir.mkdir(parents=True)
            png_dir.mkdir(parents=True)
            empty = 0
            for t, (frame, mask) in enumerate(_sequence(rng, frames, w, h, leaves, occluders)):
                ok1, jpg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                                        [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                ok2, png = cv2.imencode(".png", mask.astype(np.uint8) * 255)
                if not (ok1 and ok2):
                    raise RuntimeError(f"OpenCV could not encode frame {t} of {name}")
                (jpg_dir / f"{t:05d}.jpg").write_bytes(jpg.tobytes())
                (png_dir / f"{t:05d}.png").write_bytes(png.tobytes())
                empty += int(not mask.any())
            attributes = sorted(["DEF", "ROT", "SV"] + (["OCC"] if occluders else []) + (["OV"] if empty else []))
            entries.append({"attributes": attributes, "name": name, "num_frames": frames,
                            "set": "training", "eval_t": True, "empty_masks": empty})
        n_val = max(1, sequences // 4) if sequences > 1 else 0
        split = {"train": names[:sequences - n_val], "val": names[sequences - n_val:] or names}
        for e in entries:
            e["set"] = "test" if e["name"] in split["val"] and e["name"] not in split["train"] else "training"
        sets = tmp / "ImageSets" / "2016"
        sets.mkdir(parents=True)
        for key, seqs in split.items():
            (sets / f"{key}.txt").write_text("".join(f"{s}\n" for s in seqs))
        info = {"attributes": ["DEF", "OCC", "OV", "ROT", "SV"], "sets": ["training", "test"],
                "sequences": entries, "generator": {"seed": seed, "size": [w, h]}}
        (tmp / "Annotations" / "db_info.yml").write_text(yaml.safe_dump(info, sort_keys=True))
    return out
