"""File output that never leaves a half-written file, and the mask PNG format.

`atomic_write(path)` yields a temporary path in the same folder (same file system, so the final
`os.replace` is atomic); the temporary file or folder is removed if anything fails. Every writer in the
library goes through it, so a crash or a full disk leaves the old file (or nothing), never a truncated one.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from PIL import Image

from siampolar_lib.errors import DISK_ERRNOS, DiskError


@contextmanager
def atomic_write(path: str | os.PathLike, folder: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`, on failure delete it.

    The temporary name keeps path's suffix (encoders choose the format by it). folder=True yields a
    temporary folder instead; it replaces `path` only if `path` is missing or an empty folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if folder:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; results are plain data files
    try:
        yield tmp
        if folder and path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        os.replace(tmp, path)
    except OSError as err:
        if err.errno in DISK_ERRNOS and not isinstance(err, DiskError):  # name the output, not a temp or nothing
            raise DiskError(err.errno, f"{err.strerror}: not written (any earlier copy is kept)", str(path)) from err
        raise
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write bytes to path atomically; returns the path."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text (UTF-8) to path atomically; returns the path."""
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


MAX_OBJECTS = 32
"""The largest object id a palette mask may hold: DAVIS-2017 sequences have a handful of objects; higher palette
indices mean an image saved as a palette (a soft edge, a photo), not a label map."""


def read_label_png(path: str | os.PathLike, rgb: bool = True) -> np.ndarray:
    """Object ids of a mask PNG: (H, W) uint8, 0 = background; the one mask reader of the library.

    The rule: a palette PNG (DAVIS 2017) gives its indices, each an object id up to MAX_OBJECTS; any other
    single-channel PNG must be binary, 0 and one other value (0/255 for DAVIS 2016, also 0/1, 16-bit), read as
    0/1. RGB(A) colour-coded masks give 1 where any colour channel is set (rgb=False refuses them, as ground
    truth must be palette or grey). Errors name the file: FileNotFoundError when missing, ValueError when
    unreadable or neither binary nor a small palette (a soft-edged mask would be hundreds of objects).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: mask file is missing")
    try:
        with Image.open(path) as im:
            mode = im.mode
            arr = np.asarray(im.convert("L") if mode == "1" else im)
    except (OSError, SyntaxError, ValueError) as err:  # PIL: unidentified, truncated or broken files
        raise ValueError(f"{path}: not a readable mask image ({' '.join(str(err).split())})") from None
    if not rgb and mode not in ("P", "L", "1"):
        raise ValueError(f"{path}: mask mode {mode!r}: expected a palette (P) or grey (L) PNG")
    if arr.ndim == 3:
        return arr[..., :3].any(axis=-1).astype(np.uint8)
    levels = np.flatnonzero(np.bincount(arr.ravel())) if arr.dtype == np.uint8 else np.unique(arr)
    levels = levels[levels != 0]
    if mode == "P":
        if levels.size and levels[-1] > MAX_OBJECTS:
            raise ValueError(f"{path}: palette index {levels[-1]} is not an object id (at most {MAX_OBJECTS}): "
                             "a palette mask holds a few object ids, 1, 2, ...")
        return arr
    if levels.size > 1:
        shown = ", ".join(str(v) for v in levels[:5]) + (", ..." if levels.size > 5 else "")
        raise ValueError(f"{path}: {levels.size} grey levels besides 0 ({shown}): a mask must be binary "
                         "(0 and one other value) or a palette PNG of object ids; threshold a soft-edged mask first")
    return (arr != 0).astype(np.uint8)


def read_mask_png(path: str | os.PathLike) -> np.ndarray:
    """(H, W) bool mask from a PNG (any format `read_label_png` reads): foreground = any object."""
    return read_label_png(path) > 0


def write_mask_png(path: str | os.PathLike, mask: np.ndarray) -> Path:
    """Write an (H, W) mask as an 8-bit 0/255 PNG, atomically; returns the path."""
    path = Path(path)
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"write_mask_png wants an (H, W) mask, got shape {mask.shape} for {path}")
    ok, buf = cv2.imencode(".png", np.where(mask.astype(bool), 255, 0).astype(np.uint8))
    if not ok:
        raise OSError(f"could not encode PNG for {path}")
    return write_bytes(path, buf.tobytes())


def davis_palette() -> np.ndarray:
    """The DAVIS / PASCAL VOC colour palette: (256, 3) uint8 RGB, index 0 black, 1 red, 2 green, 3 yellow, ..."""
    pal = np.zeros((256, 3), np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):  # bit-interleaved, as the VOC devkit's labelcolormap
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


PALETTE = davis_palette()


def write_label_png(path: str | os.PathLike, labels: np.ndarray) -> Path:
    """Write an (H, W) uint8 label map as a DAVIS palette PNG (mode P), atomically; returns the path."""
    path = Path(path)
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"{path}: a label map must be (H, W) uint8, got {labels.dtype} {labels.shape}")
    im = Image.fromarray(labels, mode="P")
    im.putpalette(PALETTE.reshape(-1).tolist())
    with atomic_write(path) as tmp:
        im.save(tmp, format="PNG")
    return path


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

def package_version() -> str:
    """The library's version (`siampolar_lib.__version__`)."""
    from siampolar_lib import __version__

    return __version__
