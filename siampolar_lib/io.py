"""File output that never leaves a half-written file, and the mask PNG format.

`atomic_write(path)` yields a temporary path in the same folder (same file system, so the final
`os.replace` is atomic); the temporary file or folder is removed if anything fails. Every writer in the
library goes through it, so a crash or a full disk leaves the old file (or nothing), never a truncated one.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from PIL import Image


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


def read_mask_png(path: str | os.PathLike) -> np.ndarray:
    """(H, W) bool mask from a PNG: 0/255 grey, or palette indices (object ids); foreground = > 0.

    A missing file is FileNotFoundError, an unreadable one ValueError, each naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing mask file: {path}")
    try:
        with Image.open(path) as im:
            arr = np.asarray(im)  # mode P gives palette indices, L gives grey values
    except OSError as err:  # PIL's UnidentifiedImageError and truncated files
        raise ValueError(f"{path}: not a readable mask image ({err})") from err
    if arr.ndim == 3:  # RGB(A) colour-coded objects: any colour channel set = foreground
        arr = arr[..., :3].any(axis=-1)
    return arr > 0


def read_label_png(path: str | os.PathLike) -> np.ndarray:
    """Object ids of a mask PNG, (H, W) uint8, 0 = background (DAVIS 2017 palette PNGs give their indices).

    Grey 0/255 masks (DAVIS 2016) give 0/1, other grey values are ids, RGB(A) colour-coded masks give 1 where
    any channel is set. Missing: FileNotFoundError; unreadable: ValueError, each naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing mask file: {path}")
    try:
        with Image.open(path) as im:
            mode = im.mode
            arr = np.asarray(im)
    except OSError as err:
        raise ValueError(f"{path}: not a readable mask image ({err})") from err
    if arr.ndim == 3:
        return arr[..., :3].any(axis=-1).astype(np.uint8)
    if arr.dtype != np.uint8 or (mode != "P" and np.isin(arr, (0, 255)).all()):
        return (arr > 0).astype(np.uint8)
    return arr


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
