"""The library's error types, in one module that imports nothing (so every command line can catch them cheaply).

Each message names the file or argument at fault and the problem; `commands.cli.cli_main` prints any of them as
one line, `error: <message>`, with exit status 2.
"""
from __future__ import annotations

import errno
import math
import os
from pathlib import Path
from typing import Callable

# What a full, over-quota or read-only disk raises: the user's to fix (one line), not a bug in the tool.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})
NAME_MAX = 255  # bytes in one path component on Linux, macOS and Windows file systems (ENAMETOOLONG beyond)


def long_name_problem(err: OSError) -> str:
    """ENAMETOOLONG's one line: the first over-long component of the path, shortened, and the limit."""
    path = str(err.filename or "")
    long = next((c for c in Path(path).parts if len(os.fsencode(c)) > NAME_MAX), path)
    shown = long if len(long) <= 60 else f"{long[:28]}...{long[-28:]}"
    return (f"{shown}: a path component of {len(os.fsencode(long))} bytes (file systems allow {NAME_MAX}); "
            "use a shorter name")


class UserError(ValueError):
    """Bad input from the user: the message names the file or argument and the problem."""


class DavisError(ValueError):
    """A DAVIS folder problem; `path` is the file or folder at fault."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = Path(path)
        super().__init__(f"{self.path}: {problem}")


class VideoError(ValueError):
    """A video or frame folder that cannot be read, or an output that cannot be written."""


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used; the message names the file and the problem."""


class DeviceUnavailable(RuntimeError):
    """A device was named (--device cuda/mps) that this machine does not have."""


class ExportError(RuntimeError):
    """The network could not be exported or its export does not reproduce PyTorch; the message says why."""


class DiskError(OSError):
    """A write the disk refused (full, over quota, read-only); `filename` is the output it was writing."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    UserError, CheckpointError, DavisError, VideoError, DeviceUnavailable, ExportError, ValueError, FileNotFoundError,
    FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError, DiskError)


def check_fields(obj, section: str, rules: dict[str, tuple[Callable[[float], bool], str]]) -> None:
    """ValueError naming the first field of a config `obj` that is not a finite number its rule accepts.

    rules: {field: (accepts, what it must be)}; a field holding None is skipped (None means "not set").
    The message names the field and its training flag: `pairs.flip_p = 2.0 (--pairs.flip-p): must be ...`.
    """
    for name, (accepts, what) in rules.items():
        v = getattr(obj, name)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not accepts(v):
            raise ValueError(f"{section}.{name} = {v!r} (--{section}.{name.replace('_', '-')}): must be {what}")


def one_line(err: BaseException) -> str:
    """An exception's message on one line (newlines folded), with its type when the message is empty."""
    text = " ".join(str(err).split())
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        text = f"{err.filename}: {err.strerror}"
    return text or type(err).__name__
