"""Video out: write frames as a GIF or MP4 (whole, or streamed one frame at a time) and images as PNG.

Frames are (H, W, 3) uint8 RGB (OpenCV's BGR is converted on write). Every writer writes a temporary file
beside the target and renames it only once the file is checked: an MP4 is opened again and its frames
counted, because OpenCV's writer only warns when the disk fills, leaving a file with no index (0 frames).
So a full disk or a failed encoder never replaces an earlier result, and an input is never overwritten.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from siampolar_lib.errors import VideoError
from siampolar_lib.io import atomic_write
from siampolar_lib.video import call_logging_stderr

VIDEO_SUFFIXES = (".gif", ".mp4")


def mp4_frame_count(path: Path) -> tuple[int, str]:
    """Frames an MP4's index holds (0 when it does not open), and what FFmpeg printed while opening it."""
    def count() -> int:
        cap = cv2.VideoCapture(str(path))
        try:
            return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        finally:
            cap.release()

    return call_logging_stderr(count)


def check_mp4_written(tmp: Path, target: Path, frames: int) -> None:
    """VideoError naming `target` unless the MP4 written at `tmp` reads back with all `frames` frames."""
    got, log = mp4_frame_count(tmp)
    if got != frames:
        said = f"; FFmpeg: {log[:160]}" if log else ""
        raise VideoError(f"{target}: the MP4 reads back with {got} of its {frames} frames (a full disk, or an "
                         f"encoder that failed); nothing was replaced{said}")


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
        check_mp4_written(tmp, path, len(frames))
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
    ok, png = cv2.imencode(".png", data)
    if not ok:
        raise VideoError(f"{path}: OpenCV could not encode the PNG")
    with atomic_write(path) as tmp:  # Python writes the bytes, so a full disk is an error, not a quiet False
        tmp.write_bytes(png.tobytes())
    return path


class VideoSink:
    """Write a .gif or .mp4 one frame at a time (memory does not grow with the length), atomically.

    `write(frame)` appends an (H, W, 3) uint8 RGB frame; `close()` checks the file (an MP4 must read back with
    every frame) and renames the temporary file onto `path`;
    `discard()` (or leaving a `with` block by an exception) removes it, so no half video is ever left.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 12.0):
        self.path = Path(path)
        self.kind = self.path.suffix.lower()
        if self.kind not in VIDEO_SUFFIXES:
            raise ValueError(f"{self.path}: unknown video type {self.kind!r}; use .gif or .mp4")
        self.fps, self.frames, self.shape = float(fps), 0, None
        self._atomic = atomic_write(self.path)  # entered here, left by close() or discard()
        self.tmp = self._atomic.__enter__()
        self._file = open(self.tmp, "wb") if self.kind == ".gif" else None
        self._writer = None

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame (all frames the same size)."""
        frame = _check_frames([frame])[0]
        if self.shape is None:
            self.shape = frame.shape
        elif frame.shape != self.shape:
            raise ValueError(f"frame {self.frames} is {frame.shape}, frame 0 is {self.shape}")
        if self.kind == ".gif":
            self._write_gif_frame(frame)
        else:
            if self._writer is None:
                h, w = frame.shape[:2]
                self._writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
                if not self._writer.isOpened():
                    raise VideoError(f"{self.path}: OpenCV cannot open an mp4v writer here")
            self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def _write_gif_frame(self, frame: np.ndarray) -> None:
        """One GIF frame with its own colour table (Pillow's per-frame encoder; the header once)."""
        from PIL import GifImagePlugin, Image

        im = Image.fromarray(frame).quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        duration = int(round(1000.0 / self.fps))
        if self.frames == 0:
            header, _ = GifImagePlugin.getheader(im, info={"loop": 0, "duration": duration})
            for chunk in header:
                self._file.write(chunk)
        for chunk in GifImagePlugin.getdata(im, duration=duration, include_color_table=True):
            self._file.write(chunk)

    def close(self) -> Path:
        """Finish the file and rename it onto `path`; VideoError when no frame was written."""
        try:
            if self.frames == 0:
                raise VideoError(f"{self.path}: no frames were written")
            if self._file is not None:
                self._file.write(b";")  # GIF trailer
                self._file.close()
            if self._writer is not None:
                self._writer.release()
                self._writer = None
                check_mp4_written(self.tmp, self.path, self.frames)
            if self.tmp.stat().st_size == 0:
                raise VideoError(f"{self.path}: the encoder wrote an empty file")
        except BaseException as err:
            self.discard(err)
            raise
        self._atomic.__exit__(None, None, None)  # renames the temp file onto path
        return self.path

    def discard(self, err: BaseException | None = None) -> None:
        """Drop the temporary file (nothing is written to `path`)."""
        if self._file is not None and not self._file.closed:
            self._file.close()
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        err = err or RuntimeError("discarded")
        try:
            self._atomic.__exit__(type(err), err, None)  # deletes the temp file, leaves path alone
        except BaseException as raised:
            if raised is not err:
                raise

    def __enter__(self) -> "VideoSink":
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            self.close()
        else:
            self.discard(value)
