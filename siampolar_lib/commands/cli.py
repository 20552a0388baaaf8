"""The command line's error contract, shared by every tool (`siampolar_lib.commands`, `data_scripts/`).

A tool's `main(argv)` is wrapped with `@cli_main`: a `UserError` or one of the library's clear errors
(`errors.USER_ERRORS`: a missing file, a bad value, an unreadable checkpoint, frame or DAVIS folder)
becomes ONE line on stderr, `error: <file>: <problem>`, and exit status 2, with no traceback. Anything else is a
bug and still raises.
Arguments and output paths are checked before any work is done or any frame is read (`siampolar_lib.outputs`).
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import signal
import sys
import threading
from typing import Callable, Iterator, Sequence

from siampolar_lib.errors import DISK_ERRNOS, USER_ERRORS, UserError, long_name_problem, one_line

try:  # POSIX advisory locks; elsewhere runs are not protected against concurrent writers
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


def cli_main(fn: Callable[..., int]) -> Callable[..., int]:
    """Decorate a CLI's `main(argv)`: user errors -> `error: <message>` on stderr and return 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> int:
        try:
            with _sigterm_exits():
                return fn(*args, **kwargs)
        except USER_ERRORS as err:
            print(f"error: {one_line(err)}", file=sys.stderr)
            return 2
        except OSError as err:  # a full or read-only disk met outside an atomic write (a folder, a lock file)
            if err.errno == errno.ENAMETOOLONG:  # any --out, --video or --checkpoint, or a name made beside one
                print(f"error: {long_name_problem(err)}", file=sys.stderr)
                return 2
            if err.errno not in DISK_ERRNOS:
                raise
            print(f"error: {one_line(err)}", file=sys.stderr)
            return 2

    return wrapper


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """While a tool runs, SIGTERM (`kill PID`) leaves it as Ctrl-C does, through every `finally`: its locks, temps,
    staging folder and the empty folders it made are removed (the default action ends the process on the spot).
    Only in the main thread, and only where nobody installed a handler of their own."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are a UserError (so `cli_main` prints one line, exit 2) instead of usage + message."""

    def error(self, message: str):  # noqa: D102 - argparse API
        raise UserError(f"{self.prog}: {' '.join(message.split())} (see --help)")


def join_negative_values(argv: Sequence[str] | None, options: Sequence[str]) -> list[str]:
    """`--box -10,5,20,20` -> `--box=-10,5,20,20`, so a value starting with '-' is not taken for an option."""
    args = list(sys.argv[1:] if argv is None else argv)
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        nxt = args[i + 1] if i + 1 < len(args) else ""
        if a in options and nxt[:1] == "-" and nxt[1:2].isdigit():
            out.append(f"{a}={nxt}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out
