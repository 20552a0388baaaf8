"""Video in and out: read a video file or a folder of frames as RGB frames; write GIF/MP4 and PNG masks.

Frames are (H, W, 3) uint8 RGB (OpenCV's BGR is converted on read and write); masks (H, W) bool.
Every writer writes a temporary file beside the target and renames it, so a crash never leaves half a file
and an input is never overwritten.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .io import atomic_write, read_mask_png, write_mask_png

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".gif", ".mp4")


class VideoError(ValueError):
    """A video or frame folder that cannot be read, or an output that cannot be written."""


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of a frame folder, sorted by name; VideoError when there are none."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise VideoError(f"{folder}: the folder holds no image frames ({', '.join(IMAGE_SUFFIXES)})")
    return files


def read_image(path: str | os.PathLike) -> np.ndarray:
    """One image file as an (H, W, 3) uint8 RGB frame; VideoError when it cannot be decoded."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise VideoError(f"{path}: not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_frames(source: str | os.PathLike, max_frames: int | None = None) -> list[np.ndarray]:
    """All frames (or the first max_frames) of a video file or a folder of images, as (H, W, 3) uint8 RGB.

    A missing path, an unreadable video, an empty folder or frames of different sizes raise VideoError.
    """
    source = Path(source)
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    if not source.exists():
        raise VideoError(f"{source}: no such video file or frame folder")
    if source.is_dir():
        files = list_frame_files(source)[:max_frames]
        frames = [read_image(p) for p in files]
    else:
        frames = _read_video_file(source, max_frames)
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise VideoError(f"{source}: frames differ in size {sorted(shapes)}")
    return frames


def _read_video_file(path: Path, max_frames: int | None) -> list[np.ndarray]:
    """Decode a video file with OpenCV; VideoError when it yields no frame."""
    cap = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
    try:
        while cap.isOpened() and (max_frames is None or len(frames) < max_frames):
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    if not frames:
        raise VideoError(f"{path}: not a readable video (OpenCV decoded no frame)")
    return frames


def video_fps(source: str | os.PathLike, default: float = 24.0) -> float:
    """Frame rate of a video file as OpenCV reports it; `default` for frame folders or when unknown."""
    source = Path(source)
    if source.is_dir():
        return default
    cap = cv2.VideoCapture(str(source))
    fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    cap.release()
    return float(fps) if fps and np.isfinite(fps) and fps > 0 else default


def _check_frames(frames) -> list[np.ndarray]:
    """Frames as a non-empty list of equal-size (H, W, 3) uint8 arrays, or ValueError."""
    frames = [np.asarray(f) for f in frames]
    if not frames:
        raise ValueError("no frames to write")
    for i, f in enumerate(frames):
        if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
            raise ValueError(f"frame {i} must be (H, W, 3) uint8 RGB, got {f.shape} {f.dtype}")
        if f.shape != frames[0].shape:
            raise ValueError(f"frame {i} is {f.shape}, frame 0 is {frames[0].shape}")
    return frames


def write_gif(path: str | os.PathLike, frames, fps: float = 12.0) -> Path:
    """Write frames (list of (H, W, 3) uint8 RGB) as a looping GIF, atomically; returns the path."""
    from PIL import Image

    path = Path(path)
    frames = _check_frames(frames)
    with atomic_write(path) as tmp:
        images = [Image.fromarray(f) for f in frames]
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=int(round(1000.0 / fps)), loop=0)
    return path


def write_mp4(path: str | os.PathLike, frames, fps: float = 24.0) -> Path:
    """Write frames (list of (H, W, 3) uint8 RGB) as an MPEG-4 (mp4v) video with OpenCV, atomically."""
    path = Path(path)
    frames = _check_frames(frames)
    h, w = frames[0].shape[:2]
    with atomic_write(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
        if not writer.isOpened():
            raise VideoError(f"{path}: OpenCV cannot open an mp4v writer here")
        for f in frames:
            writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        writer.release()
        if tmp.stat().st_size == 0:
            raise VideoError(f"{path}: OpenCV wrote an empty file")
    return path


def write_video(path: str | os.PathLike, frames, fps: float = 12.0) -> Path:
    """Write frames as .gif or .mp4, chosen by the path's suffix."""
    suffix = Path(path).suffix.lower()
    if suffix == ".gif":
        return write_gif(path, frames, fps)
    if suffix == ".mp4":
        return write_mp4(path, frames, fps)
    raise ValueError(f"{path}: unknown video type {suffix!r}; use .gif or .mp4")


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an (H, W) uint8 image or (H, W, 3) uint8 RGB image as PNG, atomically."""
    path = Path(path)
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"{path}: PNG images must be uint8, got {image.dtype}")
    data = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    with atomic_write(path) as tmp:
        if not cv2.imwrite(str(tmp), data):
            raise VideoError(f"{path}: OpenCV could not write the PNG")
    return path


def write_masks(folder: str | os.PathLike, masks, start: int = 0) -> list[Path]:
    """Write masks ((H, W) bool each) as 0/255 PNGs named 00000.png, 00001.png, ... in folder (DAVIS style)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, m in enumerate(masks, start=start):
        m = np.asarray(m)
        if m.ndim != 2:
            raise ValueError(f"mask {i} must be (H, W), got {m.shape}")
        paths.append(write_mask_png(folder / f"{i:05d}.png", m))
    return paths


read_mask = read_mask_png  # a mask PNG as (H, W) bool: the library's one mask reader (siampolar_lib.io)
