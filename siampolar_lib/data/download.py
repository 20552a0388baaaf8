"""The full DAVIS-2016 (480p) for a learner who has none (`siampolar-download`, what `make data` runs).

1. `fetch(url, path)`: the official `DAVIS-data.zip` into `<path>.part` under a progress bar; a broken download
   resumes where it stopped (HTTP Range; a server that ignores Range starts afresh), then is renamed to `path`.
2. `verify_archive(path)`: every member's CRC (`zipfile.testzip`), and every sequence its `db_info.yml` lists has
   that many JPEG frames and PNG masks (an archive without db_info.yml: as many masks as frames).
3. `unpack_archive(archive, dest)`: unpacked to a temporary folder beside `dest`, then renamed into place; an
   existing `dest` is replaced only with overwrite=True and only when it is a DAVIS folder, and `dest` may not
   be, contain or lie inside the archive.
`download_davis` runs all three; `ensure_davis` only when the course finds no DAVIS folder. Offline, one line says
how to finish by hand: download the zip in a browser, then `siampolar-download --archive PATH`.
"""
from __future__ import annotations

import http.client
import os
import shutil
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Mapping

import yaml
from tqdm.auto import tqdm

from siampolar_lib.errors import UserError, one_line
from siampolar_lib.outputs import check_output_apart, check_output_folder, is_empty_folder, output_lock, owned_output
from siampolar_lib.paths import LOCAL_DAVIS, davis_available, davis_root

DAVIS_URL = "https://graphics.ethz.ch/Downloads/Data/Davis/DAVIS-data.zip"  # the official DAVIS-2016 archive
ARCHIVE_NAME = "DAVIS-data.zip"
DB_INFO_NAMES = ("db_info.yml", "db_info.yaml")
FRAMES = "JPEGImages/480p/"
MASKS = "Annotations/480p/"
CHUNK = 1 << 20  # bytes per read: 1 MiB keeps the progress bar lively and the memory flat
BY_HAND = f"download {ARCHIVE_NAME} by hand and run `siampolar-download --archive PATH`"


@dataclass(frozen=True)
class DavisArchive:
    """A verified DAVIS zip: its path, the DAVIS folder inside it, frames per sequence and the db_info it matched."""

    path: Path
    prefix: str  # the DAVIS folder's path inside the zip: "DAVIS/" in the official archive, "" at its top
    sequences: Mapping[str, int] = field(default_factory=dict)  # sequence -> frames (= masks)
    db_info: str | None = None  # the db_info.yml member checked; None when the archive has none

    @property
    def frames(self) -> int:
        """Frames in all sequences together."""
        return sum(self.sequences.values())


class _Broken(Exception):
    """The connection broke off mid-download; the `.part` file keeps what arrived."""


# ------------------------------------------------------------------------------------------ 1. fetch

def fetch(url: str, path: str | os.PathLike, *, progress: bool = True, retries: int = 3, retry_wait: float = 2.0,
          timeout: float = 30.0) -> Path:
    """Download `url` to `path` through `<path>.part`, resuming a broken download; returns `path`.

    A `path` already there is returned as it is (`verify_archive` checks it). Each try asks for the bytes after
    those in the `.part` file; retries: further tries after the connection breaks, `retry_wait` seconds apart.
    UserError (one line): the server cannot be reached (what to do offline), an HTTP error, a full disk, or the
    download still broken after the retries (running again resumes it).
    """
    path = Path(os.path.abspath(path))
    if path.is_file():
        return path
    if not url.lower().startswith(("http://", "https://")):
        raise UserError(f"--url {url}: only http:// and https:// addresses can be downloaded")
    part = path.with_name(path.name + ".part")
    check_output_folder(path.parent, "the archive's folder").mkdir(parents=True, exist_ok=True)
    with output_lock(path, "--dest"):  # the download goes beside --dest
        for attempt in range(retries + 1):
            try:
                _fetch_once(url, part, progress, timeout)
                break
            except _Broken as err:
                if attempt == retries:
                    raise UserError(f"{url}: the download broke off ({err}) after {retries + 1} tries; run again "
                                    f"to resume it from {part}, or {BY_HAND}") from None
                time.sleep(retry_wait)
        os.replace(part, path)
    return path


def _fetch_once(url: str, part: Path, progress: bool, timeout: float) -> None:
    """One request for the bytes `part` lacks, appended to it; _Broken when the connection ends early."""
    have = part.stat().st_size if part.is_file() else 0
    resp = _open(url, part, have, timeout)
    if resp is None:  # the .part file already holds every byte
        return
    with resp:
        if have and resp.status == 200:  # the server ignored Range and sends the whole file: start afresh
            have = 0
        elif resp.status == 206 and _range_start(resp.headers) != have:
            part.unlink()
            raise _Broken("the server resumed at the wrong byte; starting afresh")
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        _check_space(part.parent, (total or 0) - have, part)
        _copy(resp, part, have, total, progress)
    got = part.stat().st_size
    if total is not None and got < total:
        raise _Broken(f"connection closed at {got} of {total} bytes")


def _open(url: str, part: Path, have: int, timeout: float) -> http.client.HTTPResponse | None:
    """The server's answer to a request for the bytes from `have` on; None when `part` is already complete."""
    headers = {"User-Agent": "siampolar-download", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing after `have`: complete if the server's size says so
            size = (err.headers.get("Content-Range") or "").rpartition("/")[2]
            if size.isdigit() and int(size) == have:
                return None
            part.unlink()
            raise _Broken("the server refused to resume; starting afresh") from None
        raise UserError(f"{url}: HTTP {err.code} {err.reason}; check --url, or {BY_HAND}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        reason = one_line(getattr(err, "reason", err))
        resume = f"run again to resume the download in {part}, or " if have else ""
        raise UserError(f"cannot reach {url} ({reason}): {resume}{BY_HAND}") from None


def _range_start(headers) -> int | None:
    """The first byte of a 206 reply (`Content-Range: bytes START-END/TOTAL`), None when it does not say."""
    value = (headers.get("Content-Range") or "").removeprefix("bytes ").partition("-")[0]
    return int(value) if value.strip().isdigit() else None


def _copy(resp, part: Path, have: int, total: int | None, progress: bool) -> None:
    """Append the reply's body to `part` (truncated to `have` bytes first) under a progress bar."""
    try:
        with open(part, "ab" if have else "wb") as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                                           unit_divisor=1024, desc=part.name.removesuffix(".part"),
                                                           disable=not progress, leave=False) as bar:
            f.truncate(have)
            while True:
                try:
                    chunk = resp.read(CHUNK)
                except (http.client.HTTPException, OSError) as err:
                    raise _Broken(one_line(err)) from None
                if not chunk:
                    return
                f.write(chunk)
                bar.update(len(chunk))
    except OSError as err:  # writing: a full disk, a folder made read-only meanwhile
        raise UserError(f"{part}: cannot write the download ({one_line(err)}); fix that and run again to resume "
                        "it") from None


def _check_space(folder: Path, needed: int, what: Path) -> None:
    """Refuse, before writing, when `folder`'s file system has fewer than `needed` bytes free."""
    free = shutil.disk_usage(folder).free
    if needed > free:
        need, have = _sizes(needed, free)
        raise UserError(f"{what}: needs {need} but {folder} has {have} free; free some space and run again")


def _sizes(needed: int, free: int) -> tuple[str, str]:
    """Two byte counts (needed > free) in the largest unit that still tells them apart: `1.5 MiB`, `900 bytes`."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if needed >= scale and (shown := (f"{needed / scale:.1f} {unit}", f"{free / scale:.1f} {unit}"))[0] != shown[1]:
            return shown
    return f"{needed:,} bytes", f"{free:,} bytes"


# ------------------------------------------------------------------------------------------ 2. verify

def verify_archive(path: str | os.PathLike) -> DavisArchive:
    """Check a DAVIS zip before unpacking anything: CRCs, member names, and frame and mask counts per sequence.

    The DAVIS folder is the one holding `JPEGImages/480p/`; its db_info.yml (db_info.yaml) may sit anywhere in
    the archive (the one nearest its top is used). UserError (one line) naming the archive and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: --archive is not a file")
    redo = f"delete it and run again to download it afresh, or {BY_HAND}"
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            names = zf.namelist()
            db_name = _find_db_info(names)
            db_text = zf.read(db_name) if db_name and bad is None else None
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as err:
        raise UserError(f"{path}: not a readable zip archive ({one_line(err)}); {redo}") from None
    if bad is not None:
        raise UserError(f"{path}: the member {bad} is corrupt (its CRC does not match); {redo}")
    unsafe = [n for n in names if n.startswith(("/", "\\")) or ".." in PurePosixPath(n.replace("\\", "/")).parts
              or ":" in n.split("/")[0]]
    if unsafe:
        raise UserError(f"{path}: the member {unsafe[0]} would unpack outside the destination; not a DAVIS archive")
    prefix = _davis_prefix(path, names)
    found = _count(names, prefix)
    expected = _read_db_info(path, db_name, db_text) if db_name else {s: jpg for s, (jpg, _) in found.items()}
    wrong = [f"{s}: {n} listed, {found.get(s, (0, 0))[0]} JPEGs, {found.get(s, (0, 0))[1]} masks"
             for s, n in sorted(expected.items()) if n < 1 or found.get(s) != (n, n)]
    if wrong:
        against = db_name or "its frames (the archive has no db_info.yml)"
        raise UserError(f"{path}: {len(wrong)} sequences do not match {against} ({'; '.join(wrong[:3])}"
                        f"{'; ...' if len(wrong) > 3 else ''}); {redo}")
    if not expected:
        raise UserError(f"{path}: {prefix}{FRAMES} holds no sequence; not a DAVIS archive")
    return DavisArchive(path, prefix, dict(sorted(expected.items())), db_name)


def _find_db_info(names: list[str]) -> str | None:
    """The archive's db_info.yml (or .yaml): the one nearest the archive's top, None when there is none."""
    hits = [n for n in names if n.rsplit("/", 1)[-1].lower() in DB_INFO_NAMES]
    return min(hits, key=lambda n: (n.count("/"), n)) if hits else None


def _davis_prefix(path: Path, names: list[str]) -> str:
    """The DAVIS folder's path inside the zip: what precedes `JPEGImages/480p/` (the shortest, if several)."""
    prefixes = {n[:i] for n in names if (i := n.find(FRAMES)) >= 0 and (i == 0 or n[i - 1] == "/")}
    if not prefixes:
        raise UserError(f"{path}: holds no {FRAMES} folder; not a DAVIS archive")
    return min(prefixes, key=lambda p: (len(p), p))


def _count(names: list[str], prefix: str) -> dict[str, tuple[int, int]]:
    """sequence -> (JPEG frames, PNG masks) in the 480p folders under `prefix`."""
    counts: dict[str, list[int]] = {}
    for n in names:
        for k, (folder, ext) in enumerate(((FRAMES, ".jpg"), (MASKS, ".png"))):
            rest = n[len(prefix + folder):].split("/") if n.startswith(prefix + folder) else []
            if len(rest) == 2 and rest[1].lower().endswith(ext):
                counts.setdefault(rest[0], [0, 0])[k] += 1
            elif len(rest) == 2 and rest[1] == "":  # a sequence's folder entry: listed even when empty
                counts.setdefault(rest[0], [0, 0])
    return {s: (c[0], c[1]) for s, c in counts.items()}


def _read_db_info(path: Path, name: str, text: bytes) -> dict[str, int]:
    """sequence -> num_frames from a db_info.yml (`sequences: [{name, num_frames, ...}, ...]`, or that list)."""
    try:
        info = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise UserError(f"{path}: {name} is not valid YAML ({one_line(err)})") from None
    entries = info.get("sequences") if isinstance(info, dict) else info
    entries = entries if isinstance(entries, list) else []
    expected = {e["name"]: e["num_frames"] for e in entries
                if isinstance(e, dict) and isinstance(e.get("name"), str) and isinstance(e.get("num_frames"), int)}
    if not expected or len(expected) != len(entries):
        raise UserError(f"{path}: {name} does not list its sequences as `sequences: [{{name, num_frames}}, ...]`")
    return expected


# ------------------------------------------------------------------------------------------ 3. unpack

def check_destination(dest: str | os.PathLike, inputs: Mapping[str, str | os.PathLike | None],
                      overwrite: bool = False) -> Path:
    """Refuse a destination that holds something (without overwrite), or that is not a DAVIS folder (with it).

    inputs: {flag: path} the destination may not be, contain or lie inside (the archive). Returns Path(dest).
    """
    dest = check_output_folder(dest, "--dest")
    check_output_apart(dest, inputs, "--dest")
    if is_empty_folder(dest):
        return dest
    what = "a DAVIS folder" if davis_available(dest) else "files"
    if not overwrite:
        raise UserError(f"{dest}: --dest already holds {what}; pass --overwrite to replace it, or choose another "
                        "--dest")
    if not davis_available(dest):
        raise UserError(f"{dest}: --overwrite replaces only a DAVIS folder (JPEGImages/480p and Annotations/480p), "
                        "and this one holds other files; remove it by hand or choose another --dest")
    return dest


def unpack_archive(archive: DavisArchive, dest: str | os.PathLike, *, overwrite: bool = False,
                   progress: bool = True) -> Path:
    """Unpack a verified archive's DAVIS folder to a temporary folder beside `dest`, then rename it to `dest`.

    On any error the temporary folder is removed and `dest` keeps what it had (or stays missing). Returns dest.
    """
    dest = Path(os.path.abspath(dest))
    check_destination(dest, {"--archive": archive.path}, overwrite)
    with zipfile.ZipFile(archive.path) as zf:
        members = [m for m in zf.infolist() if m.filename.startswith(archive.prefix) and not m.is_dir()]
        _check_space(_existing(dest.parent), sum(m.file_size for m in members), dest)
        with owned_output(dest, flag="--dest") as staging:
            check_destination(dest, {"--archive": archive.path}, overwrite)  # again, now that we hold its lock
            try:
                with tqdm(total=sum(m.file_size for m in members), unit="B", unit_scale=True, unit_divisor=1024,
                          desc="unpacking", disable=not progress, leave=False) as bar:
                    for m in members:
                        target = staging / m.filename[len(archive.prefix):]
                        target.parent.mkdir(parents=True, exist_ok=True)
                        with zf.open(m) as src, open(target, "wb") as out:
                            shutil.copyfileobj(src, out, CHUNK)
                        bar.update(m.file_size)
            except OSError as err:
                raise UserError(f"{dest}: unpacking {archive.path.name} failed ({one_line(err)}); nothing was "
                                "changed") from None
    return dest


def _existing(path: Path) -> Path:
    """The nearest existing folder at or above `path` (for asking how much space is free there)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


# ------------------------------------------------------------------------------------------ all three

@dataclass(frozen=True)
class DavisDownload:
    """What `download_davis` made: the DAVIS folder and the verified archive it came from (kept for a re-run)."""

    dest: Path
    archive: DavisArchive

    def describe(self) -> str:
        """One line for the command line: what was verified, where it went, and the archive left behind."""
        a = self.archive
        against = a.db_info or "their masks (the archive has no db_info.yml)"
        return (f"DAVIS: {len(a.sequences)} sequences, {a.frames} frames checked against {against}, unpacked to "
                f"{self.dest}; the archive stays at {a.path} ({a.path.stat().st_size / 2**20:.0f} MiB, delete it "
                "if you need the space)")


def download_davis(dest: str | os.PathLike | None = None, *, url: str = DAVIS_URL,
                   archive: str | os.PathLike | None = None, overwrite: bool = False, progress: bool = True,
                   retries: int = 3, retry_wait: float = 2.0, timeout: float = 30.0) -> DavisDownload:
    """Download (or take `archive`), verify and unpack DAVIS-2016 into `dest` (default data/DAVIS in the repo).

    The download goes to `DAVIS-data.zip` beside `dest` and is kept, so a broken one resumes and a re-run with
    overwrite=True downloads nothing. The destination is checked before a byte is downloaded.
    """
    dest = Path(os.path.abspath(dest if dest is not None else LOCAL_DAVIS))
    given = archive is not None
    zip_path = Path(os.path.abspath(archive)) if given else dest.parent / ARCHIVE_NAME
    if given and not zip_path.is_file():
        raise UserError(f"{archive}: --archive is not a file")
    check_destination(dest, {"--archive": zip_path}, overwrite)
    if not given:
        fetch(url, zip_path, progress=progress, retries=retries, retry_wait=retry_wait, timeout=timeout)
    verified = verify_archive(zip_path)
    return DavisDownload(unpack_archive(verified, dest, overwrite=overwrite, progress=progress), verified)


def ensure_davis(dest: str | os.PathLike | None = None, *, progress: bool = True) -> Path:
    """The DAVIS folder the course reads (`paths.davis_root()`); when there is none, download it into `dest` first.

    For notebooks: `root = ensure_davis()` costs nothing where a DAVIS folder exists (the course machine's copy,
    $SIAMPOLAR_DAVIS_ROOT, or an earlier download) and is `download_davis(dest)` everywhere else.
    """
    if dest is None and davis_available():
        return davis_root()
    if dest is not None and davis_available(dest):
        return Path(dest)
    return download_davis(dest, progress=progress).dest


# ------------------------------------------------------------------------------------------ command line
