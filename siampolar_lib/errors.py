"""The library's error types, in one module that imports nothing (so every command line can catch them cheaply).

Each message names the file or argument at fault and the problem; `cli.cli_main` prints any of them as one line,
`error: <message>`, with exit status 2.
"""
from __future__ import annotations

import os
from pathlib import Path


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


USER_ERRORS: tuple[type[BaseException], ...] = (
    UserError, CheckpointError, DavisError, VideoError, DeviceUnavailable, ExportError, ValueError, FileNotFoundError,
    FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError)
