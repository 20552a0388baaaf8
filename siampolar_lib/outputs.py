"""Outputs a run owns: checked before any work, locked while written, staged beside and swapped in when done.

No output may be, contain or lie inside an input (`check_output_apart`, the one rule every tool applies). A run
holds `output_lock` on what it writes; `owned_output` stages a folder beside the output and swaps it in on
success. Every temp the library leaves beside an output is named by `temp_prefix`, which records its owner (host and
pid), so a later run removes only the temps of dead processes of its own host (`owner_alive`, `clean_stale_temps`).
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from siampolar_lib.errors import DISK_ERRNOS, DiskError, UserError

try:  # POSIX advisory locks; elsewhere runs are not protected against concurrent writers
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


def check_output_file(path: str | os.PathLike, option: str = "--out") -> Path:
    """An output file path that can be written: not a folder, its folder a folder (created later if missing)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: {option} is a folder; give a file name")
    parent = _existing_ancestor(path.parent)
    if not parent.is_dir():
        raise UserError(f"{parent}: {option} {path} lies under a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise UserError(f"{parent}: no permission to write {option} {path} there")
    return path

def check_output_folder(path: str | os.PathLike, option: str = "--out") -> Path:
    """An output folder path: not an existing file, nothing above it a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: {option} is a file, not a folder")
    parent = _existing_ancestor(path)
    if not parent.is_dir():
        raise UserError(f"{parent}: {option} {path} lies under a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise UserError(f"{parent}: no permission to write {option} {path} there")
    return path

Inputs = Mapping[str, str | os.PathLike | None] | Sequence[tuple[str, str | os.PathLike | None]]
"""What a run reads, by the flag that named it: {flag: path}, or (flag, path) pairs where one flag names several."""


def check_output_apart(out: str | os.PathLike, inputs: Inputs, option: str = "--out") -> Path:
    """Refuse an output that is, contains or lies inside an input: the one rule every tool applies to its outputs.

    A run writes into its output and `--overwrite` replaces it whole, so either would change or delete the input.
    inputs: {flag: path} or (flag, path) pairs (None skipped). Paths are compared resolved (links, `..`): both where
    a path is and, for a link, what it points to. UserError naming the option, the flag and both paths; returns
    Path(out).
    """
    for flag, src in (inputs.items() if isinstance(inputs, Mapping) else inputs):
        if src is None:
            continue
        for o in _locations(out):
            for s in _locations(src):
                rel = _relation(o, s)
                if rel:
                    raise UserError(f"{option} {out} {rel} the input {flag} {src}; the run would overwrite the input "
                                    "(an output may not be, contain or lie inside an input)")
    return Path(out)

def check_new_output_file(path: str | os.PathLike, inputs: Inputs, overwrite: bool = False,
                          option: str = "--out") -> Path:
    """A result file a run writes, checked before the work: a file path (`check_output_file`) apart from every input
    (`check_output_apart`), and not an earlier run's file unless overwrite. UserError naming `option`."""
    path = check_output_file(path, option)
    check_output_apart(path, inputs, option)
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise UserError(f"{path}: {option} already exists (an earlier run?); pass --overwrite to replace it, "
                        f"or choose another {option}")
    return path

@contextlib.contextmanager
def owned_output_file(path: str | os.PathLike, inputs: Inputs, overwrite: bool = False,
                      option: str = "--out") -> Iterator[Path]:
    """Own one result file for a run: checked (`check_new_output_file`), locked (`output_lock`), and checked again
    under the lock, so a second run started meanwhile is refused rather than replacing the first's result. The run
    writes `path` itself (atomically: `io.write_text`) before leaving the block."""
    check_new_output_file(path, inputs, overwrite, option)
    with made_folders_removed_on_error(Path(path).parent), output_lock(path, option):
        yield check_new_output_file(path, inputs, overwrite, option)

def _relation(out: Path, src: Path) -> str:
    """How two resolved paths overlap, in words ('is', 'lies inside', 'contains'), or '' when they are apart."""
    if out == src:
        return "is"
    if src in out.parents:
        return "lies inside"
    return "contains" if out in src.parents else ""

def _locations(path: str | os.PathLike) -> set[Path]:
    """A path resolved two ways: where it is (its folder resolved, `..` and links above it followed), and, for a
    link, what it points to."""
    path = Path(path)
    if path.name in ("", ".", ".."):
        return {Path(os.path.realpath(path))}
    return {Path(os.path.realpath(path.parent)) / path.name, Path(os.path.realpath(path))}

def _existing_ancestor(path: Path) -> Path:
    """The nearest existing path at or above `path` (the current folder for a relative path)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path

@contextlib.contextmanager
def made_folders_removed_on_error(path: str | os.PathLike) -> Iterator[Path]:
    """Yield `path` (a folder a run may create, with its parents); if the run fails, remove the folders at and above
    it that did not exist before and are left empty, so a failed run leaves no empty output folder behind."""
    path = Path(os.path.abspath(path))
    top = _existing_ancestor(path)
    try:
        yield path
    except BaseException:
        for folder in (path, *path.parents):
            if folder == top:
                break  # what existed before the run stays
            try:
                folder.rmdir()
            except FileNotFoundError:
                continue  # never made (the run failed first); the folders above it may have been
            except OSError:  # not empty (another run's files?): it and all above it stay
                break
        raise


def is_empty_folder(path: Path) -> bool:
    """True for a missing path or an empty folder (a lock file or temps we own do not count)."""
    if not path.exists():
        return True
    return path.is_dir() and not any(p for p in path.iterdir() if not p.name.startswith(".siampolar-"))

def lock_path(out: Path) -> Path:
    """The lock file guarding an output (beside it, so it is not part of the output)."""
    out = Path(os.path.abspath(out))
    return out.parent / f".{out.name}.siampolar-lock"

@contextlib.contextmanager
def output_lock(out: str | os.PathLike, flag: str = "--out") -> Iterator[None]:
    """Hold an exclusive lock on an output while a run writes it; a second run into it is refused at once.

    The lock (flock on a file beside the output) is released by the kernel when the process dies, so a
    killed run never leaves a stale lock. `flag` is the option the message asks to change (download: --dest).
    """
    path = lock_path(Path(out))
    path.parent.mkdir(parents=True, exist_ok=True)
    busy = UserError(f"{out}: another run is writing into it right now (lock {path.name} is held); "
                     f"wait for it or choose another {flag}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    acquired = False
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                raise busy from None
            # The holder before us may have unlinked the file after we opened it: then ours is not the lock.
            if not path.exists() or os.stat(path).st_ino != os.fstat(fd).st_ino:
                raise busy
        acquired = True
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            if acquired and os.stat(path).st_ino == os.fstat(fd).st_ino:
                path.unlink()  # still held: nobody else can be holding this inode
        os.close(fd)

HOST = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:64] or "host"  # no "-": it separates the name's parts
# Temp names: `.NAME.KIND-<host>-pid<N>-<random>`. The owner is a process of a host: a pid says nothing about another
# machine sharing the folder (NFS, where a lock may not reach either), so only this host's temps are ever judged.
_OWNER = re.compile(r"-(?P<host>[A-Za-z0-9._]+)-pid(?P<pid>\d+)-[a-z0-9_]*$")


def temp_prefix(out: str | os.PathLike, kind: str, pid: int | None = None) -> str:
    """The name prefix of a temp `kind` (partial, old) beside `out` owned by process `pid` (default: this one) of
    this host: `.NAME.KIND-<host>-pid<N>-`; the one temp-name scheme of the library."""
    return f".{Path(out).name}.{kind}-{HOST}-pid{os.getpid() if pid is None else pid}-"


def owner_alive(name: str) -> bool:
    """Whether a temp's owner (recorded by `temp_prefix`) may still run: False for a name that records no owner or
    a dead process of this host; True for a live one, and for any process of another host (it cannot be asked)."""
    m = _OWNER.search(name)
    if m is None:
        return False
    return m["host"] != HOST or _process_alive(int(m["pid"]))


def _process_alive(pid: int) -> bool:
    """Whether process `pid` runs on this machine (True where that cannot be told, so nothing live is removed)."""
    if os.name != "posix":  # on Windows os.kill(pid, 0) would terminate the process
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except (ProcessLookupError, OverflowError):  # OverflowError: no process can have that pid
        return False
    except OSError:  # EPERM: it runs, as another user
        return True
    return True


def fresh_folder_beside(out: Path) -> Path:
    """A new empty temporary folder beside `out` (same file system, so it can be renamed onto `out`)."""
    out = Path(os.path.abspath(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=temp_prefix(out, "partial"), dir=out.parent))

def swap_in(tmp: Path, out: Path) -> None:
    """Replace `out` (a folder, possibly missing) with the finished folder `tmp`; the old one is deleted after."""
    out = Path(os.path.abspath(out))
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=temp_prefix(out, "old"), dir=out.parent))
        os.replace(out, old / out.name)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

def clean_stale_temps(folder: str | os.PathLike, patterns: Sequence[str]) -> list[Path]:
    """Delete the temp files (glob patterns) a killed run left in folder; returns what was removed.

    A temp whose owner may still run (`owner_alive`: a live process of this host, or another host's) is kept.
    Temps without an owner in their name (atomic_write's) are removed whenever they match: call it only while
    holding the locks of the outputs the patterns belong to, or where every temp records its owner (the ONNX
    cache), so a live writer's temp is never touched. A link is removed, never followed.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for pattern in patterns:
        for p in folder.glob(pattern):
            if owner_alive(p.name):
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed

def named_for_output(err: OSError, staging: Path, out: Path) -> OSError | None:
    """`err` met writing a file inside the staging folder, naming the file of `out` it stands for (a user never
    sees the temp name, which is gone by then); None when `err` names no file there."""
    if err.filename is None:
        return None
    try:
        rel = Path(os.path.abspath(err.filename)).relative_to(staging)
    except ValueError:
        return None
    kind = DiskError if isinstance(err, DiskError) or err.errno in DISK_ERRNOS else OSError  # OSError: by errno
    return kind(err.errno, err.strerror, str(out / rel))


@contextlib.contextmanager
def owned_output(out: str | os.PathLike, stale: Sequence[str] = (), also: Sequence[str | os.PathLike] = (),
                 flag: str = "--out") -> Iterator[Path]:
    """Own an output folder for one run: yields a fresh staging folder beside `out`, swapped in on success.

    Holds `output_lock` on `out` and on every other output the run writes (`also`, e.g. track's video beside
    its mask folder), so two runs sharing any output cannot both run. Removes the temps a killed run left
    beside `out` (`.<name>.partial-*`, `.<name>.old-*` and the extra glob patterns `stale`; never those of a
    live owner, `clean_stale_temps`), and on any error deletes the staging folder, so `out` keeps what it had
    (or stays missing) and never mixes two runs. `flag` names the option in the lock's message.
    """
    out = Path(os.path.abspath(out))
    with contextlib.ExitStack() as locks:
        locks.enter_context(made_folders_removed_on_error(out.parent))  # left last: after the locks are removed
        for path in dict.fromkeys(Path(os.path.abspath(p)) for p in (out, *also)):  # out first: its lock is named
            locks.enter_context(output_lock(path, flag))
        clean_stale_temps(out.parent, [f".{out.name}.partial-*", f".{out.name}.old-*", *stale])
        staging = fresh_folder_beside(out)
        try:
            yield staging
            swap_in(staging, out)
        except OSError as err:
            if (named := named_for_output(err, staging, out)) is None:
                raise
            raise named from err
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
