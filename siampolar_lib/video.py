"""Video in and out: read a video file or a folder of frames as RGB frames; write GIF/MP4 and PNG frames.

Frames are (H, W, 3) uint8 RGB (OpenCV's BGR is converted on read and write); masks (H, W) bool.
Every writer writes a temporary file beside the target and renames it, so a crash never leaves half a file
and an input is never overwritten.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .errors import VideoError
from .io import atomic_write

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".gif", ".mp4")
CORRUPT_JPEG = ("Corrupt JPEG data", "Premature end of JPEG file")  # libjpeg's warnings that pixels are damaged


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of a frame folder, sorted by name; VideoError when there are none or a link is broken.

    A link whose target is gone is an error naming it: skipping it would give every later frame's mask the
    name of the frame before.
    """
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                   and (p.is_file() or (p.is_symlink() and not p.exists())))
    for p in files:
        if not p.is_file():
            raise VideoError(f"{p}: the frame is a broken link (its target {os.readlink(p)} is missing)")
    if not files:
        raise VideoError(f"{folder}: the folder holds no image frames ({', '.join(IMAGE_SUFFIXES)})")
    return files


def frame_names(source: str | os.PathLike, max_frames: int | None = None) -> list[str] | None:
    """The names a frame folder's frames give their masks (each file's stem), in frame order; None for a video.

    VideoError for a broken frame link, or when two frames share a stem (a.jpg, a.png): one mask would
    overwrite the other.
    """
    source = Path(source)
    if not source.is_dir():
        return None
    seen: dict[str, Path] = {}
    for p in list_frame_files(source)[:max_frames]:
        if p.stem in seen:
            raise VideoError(f"{source}: the frames {seen[p.stem].name} and {p.name} share the name {p.stem!r}, "
                             "so their masks would overwrite each other; rename one")
        seen[p.stem] = p
    return list(seen)


def check_jpeg_complete(path: Path, data: bytes) -> None:
    """Raise VideoError unless a JPEG starts with SOI and ends (allowing padding) with EOI."""
    if data[:2] != b"\xff\xd8":
        raise VideoError(f"{path}: not a JPEG file (no start-of-image marker)")
    if b"\xff\xd9" not in data[-64:]:
        raise VideoError(f"{path}: truncated JPEG (no end-of-image marker)")


def _imdecode_logged(data: bytes) -> tuple[np.ndarray | None, str]:
    """cv2.imdecode (BGR, or None), and what the C decoder printed to stderr meanwhile.

    libjpeg reports damaged entropy-coded data only as a warning printed to the process's stderr, and OpenCV
    decodes on without telling its caller; so file descriptor 2 points at a temporary file during the call
    (a per-call file: forked workers must not share one). The library decodes in one thread, so nothing else
    prints to it meanwhile.
    """
    buf = np.frombuffer(data, np.uint8)
    try:
        log = tempfile.TemporaryFile()
    except OSError:  # no room for the log: decode unwatched
        return cv2.imdecode(buf, cv2.IMREAD_COLOR), ""
    with log:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr to watch
            return cv2.imdecode(buf, cv2.IMREAD_COLOR), ""
        if sys.stderr is not None:
            sys.stderr.flush()
        os.dup2(log.fileno(), 2)
        try:
            bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        log.seek(0)
        return bgr, " ".join(log.read().decode("utf-8", "replace").split())


def read_image(path: str | os.PathLike) -> np.ndarray:
    """One image file as an (H, W, 3) uint8 RGB frame: the one frame reader of every tool.

    A missing, corrupt or truncated file is a VideoError naming it. libjpeg decodes a truncated JPEG
    without complaint, filling the rest grey, so JPEGs are checked for their end marker first; garbage inside
    the data (markers intact) it only warns about on stderr: that warning is an error naming the file, and any
    other libjpeg warning (pixels intact) is printed as one line naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: frame file is missing")
    data = path.read_bytes()
    if path.suffix.lower() in (".jpg", ".jpeg"):
        check_jpeg_complete(path, data)
    if data[:2] == b"\xff\xd8":  # a JPEG, whatever its name
        bgr, log = _imdecode_logged(data)
        if any(w in log for w in CORRUPT_JPEG):
            raise VideoError(f"{path}: corrupt JPEG data (libjpeg: {log})")
        if log:
            print(f"warning: {path}: {log}", file=sys.stderr)
    else:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise VideoError(f"{path}: corrupt image: OpenCV could not decode it")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def check_source(source: str | os.PathLike) -> Path:
    """A video file or frame folder that exists (and, for a folder, holds frames); VideoError otherwise."""
    source = Path(source)
    if not source.exists():
        raise VideoError(f"{source}: no such video file or frame folder")
    if source.is_dir():
        list_frame_files(source)
    return source


def iter_frames(source: str | os.PathLike, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Frames of a video file or a folder of images, one at a time, as (H, W, 3) uint8 RGB.

    Only one decoded frame is held at a time, so memory does not grow with the video's length. A missing
    path, an unreadable video, an empty folder, a corrupt frame or a frame of another size raise VideoError.
    """
    for _, frame in iter_named_frames(source, max_frames):
        yield frame


def iter_named_frames(source: str | os.PathLike, max_frames: int | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """(name, frame) pairs of `iter_frames`: a folder's frames are named by their files' stems (`frame_names`),
    a video file's by index, 00000, 00001, ...; errors as `iter_frames`."""
    source = check_source(source)
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    if source.is_dir():
        named = ((p.stem, read_image(p)) for p in list_frame_files(source)[:max_frames])
    else:
        named = ((f"{i:05d}", f) for i, f in enumerate(_iter_video_file(source, max_frames)))
    shape = None
    for i, (name, frame) in enumerate(named):
        if shape is None:
            shape = frame.shape
        elif frame.shape != shape:
            raise VideoError(f"{source}: frames differ in size (frame {i} is {frame.shape[1]}x{frame.shape[0]}, "
                             f"frame 0 is {shape[1]}x{shape[0]})")
        yield name, frame


def _opencv_misses_gif_frames(path: Path, max_frames: int | None) -> bool:
    """True when OpenCV decodes fewer of a GIF's frames (up to max_frames) than Pillow finds in it."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            n = min(int(getattr(im, "n_frames", 1)), max_frames or 1 << 62)
    except (OSError, SyntaxError, ValueError):  # Pillow cannot read it: OpenCV's reading stands
        return False
    cap, seen = cv2.VideoCapture(str(path)), 0
    while cap.isOpened() and seen < n and cap.grab():
        seen += 1
    cap.release()
    return seen < n


def _iter_gif(path: Path, max_frames: int | None) -> Iterator[np.ndarray]:
    """Every frame of a GIF as Pillow composes it (disposal, transparency), (H, W, 3) uint8 RGB."""
    from PIL import Image, ImageSequence

    try:
        with Image.open(path) as im:
            for i, frame in enumerate(ImageSequence.Iterator(im)):
                if max_frames is not None and i >= max_frames:
                    break
                yield np.array(frame.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as err:
        raise VideoError(f"{path}: corrupt GIF ({' '.join(str(err).split())})") from None


def _iter_video_file(path: Path, max_frames: int | None) -> Iterator[np.ndarray]:
    """Decode a video file with OpenCV, frame by frame; VideoError when it yields no frame.

    A GIF of which OpenCV sees fewer frames than Pillow (FFmpeg reads an animated GIF without graphic-control
    blocks as one still image) is read with Pillow instead, so every frame is there; other GIFs keep OpenCV's
    decoding.
    """
    if path.suffix.lower() == ".gif" and _opencv_misses_gif_frames(path, max_frames):
        yield from _iter_gif(path, max_frames)
        return
    cap = cv2.VideoCapture(str(path))
    n = 0
    try:
        while cap.isOpened() and (max_frames is None or n < max_frames):
            ok, bgr = cap.read()
            if not ok:
                break
            n += 1
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()
    if n == 0:
        raise VideoError(f"{path}: not a readable video (OpenCV decoded no frame)")


def read_frames(source: str | os.PathLike, max_frames: int | None = None) -> list[np.ndarray]:
    """All frames (or the first max_frames) of a video file or a folder of images, as (H, W, 3) uint8 RGB.

    Holds every frame: for long videos iterate `iter_frames` instead. Errors as `iter_frames`.
    """
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    return list(iter_frames(source, max_frames))


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


class VideoSink:
    """Write a .gif or .mp4 one frame at a time (memory does not grow with the length), atomically.

    `write(frame)` appends an (H, W, 3) uint8 RGB frame; `close()` renames the temporary file onto `path`;
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
