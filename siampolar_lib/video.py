"""Video in: read a video file or a folder of frames as RGB frames, checking every frame as it is decoded.

Frames are (H, W, 3) uint8 RGB (OpenCV's BGR is converted on read). The writers (GIF, MP4, PNG, and the
streaming VideoSink) live in `video_writers`.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from siampolar_lib.errors import VideoError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
CORRUPT_JPEG = ("Corrupt JPEG data", "Premature end of JPEG file")  # libjpeg's warnings that pixels are damaged
# FFmpeg's warnings that a frame it hands over (or drops) is damaged: a cut-off or corrupt video decodes "fine"
DAMAGED_VIDEO = ("damaged", "overread", "Error at MB", "decode failed", "error while decoding", "Invalid data",
                 "corrupt", "concealing", "truncated", "Truncated", "Packet mismatch", "invalid")


def frame_key(name: str) -> tuple:
    """Sort key of a frame file name by the numbers in it: '2.jpg' before '10.jpg' (text parts compare as text).

    re.split with a group alternates text and digits, so the same position always holds the same type; the
    whole name breaks ties ('1.jpg', '01.jpg').
    """
    parts = re.split(r"(\d+)", name)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), name


def frame_order(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Frame files in time order: by the numbers in their names (`frame_key`), so unpadded names
    (1, 2, ..., 10, 11) are not taken as 1, 10, 11, 2; zero-padded names keep their string order."""
    return sorted((Path(p) for p in paths), key=lambda p: frame_key(p.name))


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of a frame folder in time order (`frame_order`); VideoError when there are none or a link
    is broken.

    A link whose target is gone is an error naming it: skipping it would give every later frame's mask the
    name of the frame before.
    """
    folder = Path(folder)
    files = frame_order(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
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


def call_logging_stderr(fn, *args):
    """fn(*args), and what C code printed to the process's stderr meanwhile (folded to one line).

    libjpeg and FFmpeg report damaged data only as warnings printed to file descriptor 2, and OpenCV goes on
    without telling its caller; so fd 2 points at a temporary file during the call (a per-call file: forked
    workers must not share one). The library decodes in one thread, so nothing else prints to it meanwhile.
    With no room for the log, or no stderr, the call runs unwatched (log "").
    """
    try:
        log = tempfile.TemporaryFile()
    except OSError:
        return fn(*args), ""
    with log:
        try:
            saved = os.dup(2)
        except OSError:
            return fn(*args), ""
        if sys.stderr is not None:
            sys.stderr.flush()
        os.dup2(log.fileno(), 2)
        try:
            out = fn(*args)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        log.seek(0)
        return out, " ".join(log.read().decode("utf-8", "replace").split())


def _open_capture(path: Path, *args) -> tuple[cv2.VideoCapture, str]:
    """cv2.VideoCapture(path, *args), and what FFmpeg printed while opening it (one line, its `@ 0x...` context
    address dropped). OpenCV's own warnings are off meanwhile: "backend is generally available but can't be used
    to capture by name" only restates, time-stamped, that FFmpeg could not open the file, and is not FFmpeg's."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        cap, log = call_logging_stderr(cv2.VideoCapture, str(path), *args)
    finally:
        cv2.utils.logging.setLogLevel(level)
    return cap, re.sub(r" @ 0x[0-9a-fA-F]+\]", "]", log)


def _imdecode_logged(data: bytes) -> tuple[np.ndarray | None, str]:
    """cv2.imdecode (BGR, or None), and what the C decoder printed to stderr meanwhile."""
    return call_logging_stderr(cv2.imdecode, np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


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
    if not (source.is_dir() or source.is_file()):  # a FIFO would block the decoder forever
        raise VideoError(f"{source}: not a video file or a frame folder (a pipe, device or socket cannot be read)")
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
    cap, _ = _open_capture(path)  # FFmpeg's warnings: the reader reports them
    seen = 0
    while cap.isOpened() and seen < n and call_logging_stderr(cap.grab)[0]:
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
    """Decode a video file with OpenCV, frame by frame; VideoError when it yields no frame or FFmpeg reports one
    damaged.

    FFmpeg decodes a cut-off or corrupt video without telling OpenCV's caller: it only prints warnings (`DAMAGED_VIDEO`)
    to stderr and hands over a half-grey frame, or none. So each read's stderr is watched (`call_logging_stderr`)
    and such a warning is an error naming the file and the frame; what FFmpeg printed while opening a file it cannot
    read goes into that error's one line. A GIF of which OpenCV sees fewer frames than Pillow (FFmpeg reads an
    animated GIF without graphic-control blocks as one still image) is read with Pillow instead, so every frame is
    there; other GIFs keep OpenCV's decoding.
    """
    if path.suffix.lower() == ".gif" and _opencv_misses_gif_frames(path, max_frames):
        yield from _iter_gif(path, max_frames)
        return
    # One decoding thread: FFmpeg's frame threads print a frame's damage warning whenever they decode it, possibly
    # outside the read that returns it, so the warning would escape the read's stderr window.
    cap, opened = _open_capture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    n = 0
    try:
        while cap.isOpened() and (max_frames is None or n < max_frames):
            (ok, bgr), log = call_logging_stderr(cap.read)
            if any(w in log for w in DAMAGED_VIDEO):
                raise VideoError(f"{path}: frame {n} is damaged (FFmpeg: {log[:300]}); the video is cut off or "
                                 f"corrupt: re-encode it, or read only the {n} frames before it (--max-frames {n})")
            if not ok:
                break
            n += 1
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()
    if n == 0:
        said = f"; FFmpeg: {opened[:300]}" if opened else ""
        raise VideoError(f"{path}: not a readable video (OpenCV decoded no frame{said})")


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
    cap, _ = _open_capture(source)  # FFmpeg's complaints: the frame reader reports them
    fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    cap.release()
    return float(fps) if fps and np.isfinite(fps) and fps > 0 else default
