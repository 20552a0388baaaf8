"""What the first stage really hands the refinement stage, per (sequence, frame): the polygon's centre and its rays.

`evaluation.first_stage_outputs.record_first_stage` runs the tracker over DAVIS sequences and records, for every
frame after the first whose true mask is non-empty, the origin and rays `Tracker._refine` is handed; this module is
the file those records live in, read by `data.refine_samples.RefineDataset` (issue 30: train the stage on real
first rays, not only on blurred truths). One `.npz`, read with allow_pickle=False:

    sequences (N,) str            the DAVIS sequence of each row
    frames    (N,) int64          its frame index (0-based, frame order of the sequence; frame 0 is never a row)
    centres   (N, 2) float64      the first polygon's centre (x, y), frame pixels
    rays      (N, R) float64      the first stage's rays from that centre, frame pixels
    meta      () str              JSON: version, checkpoint, checkpoint_sha256, first_stage_sha256, tracker settings,
                                  roots, counts (frames tracked, kept, skipped and why)

Every row is usable as it is: its centre lies inside the true mask and its rays are finite and positive (the
builder skips and counts the other frames).
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from siampolar_lib.errors import UserError
from siampolar_lib.io import atomic_write

CACHE_VERSION = 1
ARRAYS = ("sequences", "frames", "centres", "rays", "meta")


@dataclass(frozen=True)
class FirstStageCache:
    """The first stage's output on N frames (module docstring); `path` names the file in errors ("" if unsaved)."""

    sequences: np.ndarray  # (N,) str
    frames: np.ndarray  # (N,) int64, frame index within the sequence
    centres: np.ndarray  # (N, 2) float64, (x, y) frame pixels
    rays: np.ndarray  # (N, R) float64, frame pixels from the centre
    meta: dict = field(default_factory=dict)  # plain JSON values (module docstring)
    path: str = ""

    def __post_init__(self):
        """Arrays as their dtypes; ValueError for shapes that disagree, a repeated row or unusable values."""
        for name, dtype in (("sequences", str), ("frames", np.int64), ("centres", np.float64), ("rays", np.float64)):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=dtype))
        n = len(self.sequences)
        if self.sequences.ndim != 1 or self.frames.shape != (n,) or self.centres.shape != (n, 2) \
                or self.rays.ndim != 2 or len(self.rays) != n:
            raise ValueError(f"cache arrays disagree: sequences {self.sequences.shape}, frames {self.frames.shape}, "
                             f"centres {self.centres.shape}, rays {self.rays.shape} (expected (N,), (N,), (N, 2), "
                             "(N, R))")
        if not (np.isfinite(self.centres).all() and np.isfinite(self.rays).all() and (self.rays > 0).all()):
            raise ValueError("cache centres and rays must be finite, and rays > 0")
        if len(self.row_of()) != n:
            raise ValueError("cache holds a (sequence, frame) twice")

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def num_rays(self) -> int:
        """R, the rays per row."""
        return int(self.rays.shape[1])

    def row_of(self) -> dict[tuple[str, int], int]:
        """{(sequence, frame index): row}."""
        return {(str(s), int(f)): i for i, (s, f) in enumerate(zip(self.sequences, self.frames))}


def unusable(mask: np.ndarray, centre: np.ndarray, rays: np.ndarray) -> str | None:
    """Why a first-stage output cannot be a refinement sample on its frame's true mask, or None when it can.

    mask (H, W) bool; centre (2,) (x, y) and rays (R,), frame px. "empty": no true mask; "degenerate": centre or rays
    not finite, or a ray <= 0; "outside": the centre rounds to a pixel off the mask. From an outside centre
    `geometry.polar.mask_to_rays` gives 0 for the rays that miss the mask and the far exit for those that cross it: a
    wedge over the background between the centre and the object, not the mask, which would teach the stage to draw it.
    """
    if not mask.any():
        return "empty"
    if not (np.isfinite(centre).all() and np.isfinite(rays).all() and (rays > 0).all()):
        return "degenerate"
    x, y = int(round(float(centre[0]))), int(round(float(centre[1])))
    H, W = mask.shape
    return None if 0 <= x < W and 0 <= y < H and mask[y, x] else "outside"


def write_first_stage_cache(path: str | os.PathLike, cache: FirstStageCache) -> Path:
    """Save a cache as one .npz, atomically (a crash leaves the old file or none); returns the path."""
    meta = json.dumps({"version": CACHE_VERSION, **cache.meta}, sort_keys=True)
    with atomic_write(path) as tmp, open(tmp, "wb") as f:  # a file object: np.savez adds no second suffix
        np.savez(f, sequences=cache.sequences, frames=cache.frames, centres=cache.centres, rays=cache.rays,
                 meta=np.array(meta))
    return Path(path)


def read_first_stage_cache(path: str | os.PathLike, flag: str = "--real-first-cache") -> FirstStageCache:
    """A cache written by `write_first_stage_cache`; UserError in one line naming the file and `flag` when it is
    missing, unreadable, of another version or inconsistent."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {flag}: no such first-stage cache (build it with data_scripts/cache_first_stage.py)")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ARRAYS if k not in z.files]
            if missing:
                raise ValueError(f"arrays {missing} missing")
            arrays = {k: z[k] for k in ARRAYS}
        meta = json.loads(str(arrays.pop("meta")))
        if not isinstance(meta, dict) or meta.get("version") != CACHE_VERSION:
            raise ValueError(f"version {meta.get('version') if isinstance(meta, dict) else None!r}, "
                             f"expected {CACHE_VERSION}")
        return FirstStageCache(**arrays, meta=meta, path=str(path))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # np.load: truncated zips, random bytes
        raise UserError(f"{path}: {flag}: not a readable first-stage cache ({' '.join(str(err).split())})") from None
