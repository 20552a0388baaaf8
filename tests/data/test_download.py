"""siampolar-download: fetch, resume, verify and unpack DAVIS-2016, served from a loopback HTTP server (issue 22).

The archive is a DAVIS-shaped zip the tests build (2 sequences of 3 tiny frames, masks, a db_info.yml); the server
runs in a thread on 127.0.0.1 and can honour Range, drop the connection halfway, or ignore Range. No network.
"""
from __future__ import annotations

import contextlib
import io
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_helpers import refused
from PIL import Image

from siampolar_lib.commands.download import main
from siampolar_lib.data import download
from siampolar_lib.data.download import download_davis, ensure_davis, verify_archive
from siampolar_lib.errors import UserError
from siampolar_lib.paths import davis_available

SEQUENCES = ("bear", "dog")
DB_INFO = "DAVIS/Annotations/db_info.yml"


def _image(fmt: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    if fmt == "JPEG":
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(buf, "JPEG")
    else:
        Image.fromarray((rng.random((8, 8)) > 0.5).astype(np.uint8) * 255).save(buf, "PNG")
    return buf.getvalue()


def davis_zip(*, db_info: str | None = DB_INFO, prefix: str = "DAVIS/", listed: dict | None = None,
              masks: int = 3, extra: dict | None = None) -> bytes:
    """A DAVIS-2016-shaped zip (stored, so a flipped byte is a CRC error): 2 sequences of 3 frames."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i, seq in enumerate(SEQUENCES):
            for t in range(3):
                zf.writestr(f"{prefix}JPEGImages/480p/{seq}/{t:05d}.jpg", _image("JPEG", 10 * i + t))
                if t < masks:
                    zf.writestr(f"{prefix}Annotations/480p/{seq}/{t:05d}.png", _image("PNG", 10 * i + t))
        zf.writestr(f"{prefix}ImageSets/480p/val.txt", "".join(f"{s}\n" for s in SEQUENCES))
        if db_info is not None:
            counts = listed or {s: 3 for s in SEQUENCES}
            info = {"attributes": [], "sets": ["training", "test"],
                    "sequences": [{"name": s, "num_frames": n, "set": "test", "year": 2016} for s, n in counts.items()]}
            zf.writestr(db_info, yaml.safe_dump(info))
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def body() -> bytes:
    return davis_zip()


class _Handler(BaseHTTPRequestHandler):
    """Serves `server.body` at any path; `server.mode`: 'range', 'drop' (first reply cut at half) or 'ignore-range'."""

    def do_GET(self):  # noqa: N802 - http.server API
        srv, body = self.server, self.server.body
        rng = self.headers.get("Range")
        srv.ranges.append(rng)
        start = 0
        if self.path.endswith("missing.zip"):
            self.send_error(404, "Not Found")
            return
        if rng and srv.mode != "ignore-range":
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        data = body[start:]
        if srv.mode == "drop" and len(srv.ranges) == 1:  # the first reply breaks off halfway
            data = data[: len(body) // 2]
            self.close_connection = True
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(body: bytes, mode: str = "range"):
    """A loopback HTTP server in a thread; yields (url of the archive, the server: `.ranges` = Range headers seen)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.body, server.mode, server.ranges = body, mode, []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/DAVIS-data.zip", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def leftovers(folder: Path) -> list[str]:
    """Names beside the destination other than the archive and the DAVIS folder (temps, locks, .part files)."""
    return sorted(p.name for p in folder.iterdir() if p.name not in ("DAVIS", "DAVIS-data.zip"))


# ------------------------------------------------------------------------------------------ download

def test_full_download_unpacks_a_davis_folder(tmp_path, body):
    dest = tmp_path / "data" / "DAVIS"
    with serve(body) as (url, server):
        done = download_davis(dest, url=url, progress=False)
    assert done.dest == dest and davis_available(dest)
    assert sorted(p.name for p in (dest / "JPEGImages" / "480p").iterdir()) == list(SEQUENCES)
    assert len(list((dest / "Annotations" / "480p" / "dog").glob("*.png"))) == 3
    assert (dest / "Annotations" / "db_info.yml").is_file()
    assert dict(done.archive.sequences) == {"bear": 3, "dog": 3} and done.archive.db_info == DB_INFO
    assert (tmp_path / "data" / "DAVIS-data.zip").read_bytes() == body and server.ranges == [None]
    assert leftovers(tmp_path / "data") == []


def test_broken_download_resumes_within_one_run(tmp_path, body):
    dest = tmp_path / "DAVIS"
    with serve(body, "drop") as (url, server):
        download_davis(dest, url=url, progress=True, retries=1, retry_wait=0)  # the bar resumes too
    assert server.ranges == [None, f"bytes={len(body) // 2}-"]
    assert (tmp_path / "DAVIS-data.zip").read_bytes() == body and davis_available(dest)


def test_broken_download_resumes_on_the_next_run(tmp_path, body, capsys):
    dest = tmp_path / "DAVIS"
    with serve(body, "drop") as (url, server):
        rc = main(["--url", url, "--dest", str(dest), "--retries", "0", "--no-progress"])
        refused(capsys, rc, "broke off", "run again to resume", "--archive PATH")
        part = tmp_path / "DAVIS-data.zip.part"
        assert part.read_bytes() == body[: len(body) // 2] and not dest.exists()
        assert main(["--url", url, "--dest", str(dest), "--no-progress"]) == 0
    assert server.ranges == [None, f"bytes={len(body) // 2}-"]
    assert (tmp_path / "DAVIS-data.zip").read_bytes() == body and davis_available(dest)
    assert "2 sequences, 6 frames" in capsys.readouterr().out and leftovers(tmp_path) == []


def test_a_server_that_ignores_range_restarts_from_zero(tmp_path, body):
    (tmp_path / "DAVIS-data.zip.part").write_bytes(b"not the start of the archive" * 10)
    with serve(body, "ignore-range") as (url, server):
        download_davis(tmp_path / "DAVIS", url=url, progress=False)
    assert server.ranges == ["bytes=280-"]  # asked to resume, got the whole file, wrote it from byte 0
    assert (tmp_path / "DAVIS-data.zip").read_bytes() == body


def test_a_complete_part_file_is_finished_without_downloading_again(tmp_path, body):
    (tmp_path / "DAVIS-data.zip.part").write_bytes(body)
    with serve(body) as (url, server):
        download_davis(tmp_path / "DAVIS", url=url, progress=False)
    assert server.ranges == [f"bytes={len(body)}-"]  # 416 with the full size: nothing was missing
    assert (tmp_path / "DAVIS-data.zip").read_bytes() == body


def test_unreachable_server_says_what_to_do_offline(tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/DAVIS-data.zip"
    rc = main(["--url", url, "--dest", str(tmp_path / "DAVIS"), "--no-progress"])
    refused(capsys, rc, f"cannot reach {url}", "download DAVIS-data.zip by hand",
            "siampolar-download --archive PATH")
    assert list(tmp_path.iterdir()) == []


def test_http_error_is_one_line(tmp_path, body, capsys):
    with serve(body) as (url, _):
        rc = main(["--url", url.replace("DAVIS-data.zip", "missing.zip"), "--dest", str(tmp_path / "DAVIS")])
    refused(capsys, rc, "HTTP 404", "--archive PATH")
    assert not (tmp_path / "DAVIS").exists()


def test_only_http_urls(tmp_path, capsys):
    refused(capsys, main(["--url", "file:///etc/passwd", "--dest", str(tmp_path / "DAVIS")]), "--url", "http")


# ------------------------------------------------------------------------------------------ verify

def test_corrupt_archive_is_one_line_and_leaves_no_destination(tmp_path, body, capsys):
    bad = bytearray(body)
    member = _image("JPEG", 0)
    at = bytes(bad).find(member) + len(member) // 2
    bad[at] ^= 0xFF
    (tmp_path / "bad.zip").write_bytes(bytes(bad))
    (tmp_path / "cut.zip").write_bytes(body[: len(body) // 2])
    dest = tmp_path / "out" / "DAVIS"
    rc = main(["--archive", str(tmp_path / "bad.zip"), "--dest", str(dest), "--no-progress"])
    refused(capsys, rc, "bad.zip", "DAVIS/JPEGImages/480p/bear/00000.jpg is corrupt", "CRC")
    rc = main(["--archive", str(tmp_path / "cut.zip"), "--dest", str(dest), "--no-progress"])
    refused(capsys, rc, "cut.zip", "not a readable zip archive")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind, needle", [
    ("listed", "bear: 4 listed, 3 JPEGs, 3 masks"),
    ("masks", "2 sequences do not match its frames"),
    ("absent", "cat: 5 listed, 0 JPEGs, 0 masks"),
])
def test_frame_count_mismatch_is_one_line_and_leaves_no_destination(tmp_path, capsys, kind, needle):
    data = {"listed": lambda: davis_zip(listed={"bear": 4, "dog": 3}),
            "masks": lambda: davis_zip(db_info=None, masks=2),
            "absent": lambda: davis_zip(listed={"bear": 3, "dog": 3, "cat": 5})}[kind]()
    (tmp_path / "a.zip").write_bytes(data)
    dest = tmp_path / "DAVIS"
    refused(capsys, main(["--archive", str(tmp_path / "a.zip"), "--dest", str(dest)]), "a.zip", needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]


@pytest.mark.parametrize("db_info, prefix", [(DB_INFO, "DAVIS/"), ("DAVIS/db_info.yml", "DAVIS/"),
                                             ("db_info.yaml", "DAVIS2016/DAVIS/"), ("Annotations/db_info.yml", ""),
                                             (None, "DAVIS/")])
def test_db_info_may_sit_anywhere_or_be_absent(tmp_path, db_info, prefix):
    path = tmp_path / "a.zip"
    path.write_bytes(davis_zip(db_info=db_info, prefix=prefix))
    found = verify_archive(path)
    assert (found.prefix, found.db_info, dict(found.sequences)) == (prefix, db_info, {"bear": 3, "dog": 3})


def test_members_outside_the_destination_are_refused(tmp_path):
    path = tmp_path / "a.zip"
    path.write_bytes(davis_zip(extra={"DAVIS/../../evil.txt": "x"}))
    with pytest.raises(UserError, match="evil.txt would unpack outside the destination"):
        verify_archive(path)


def test_a_malformed_db_info_is_named(tmp_path):
    path = tmp_path / "a.zip"
    path.write_bytes(davis_zip(db_info=None, extra={DB_INFO: "sequences: {bear: 3}"}))
    with pytest.raises(UserError, match="db_info.yml does not list its sequences"):
        verify_archive(path)


# ------------------------------------------------------------------------------------------ --archive, destinations

def test_archive_option_verifies_and_unpacks_without_a_network(tmp_path, body, capsys, monkeypatch):
    monkeypatch.setattr(download, "fetch", lambda *a, **k: pytest.fail("--archive must not download"))
    (tmp_path / "mine.zip").write_bytes(body)
    dest = tmp_path / "DAVIS"
    assert main(["--archive", str(tmp_path / "mine.zip"), "--dest", str(dest), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert davis_available(dest) and "2 sequences, 6 frames checked against " + DB_INFO in out
    assert (tmp_path / "mine.zip").read_bytes() == body


def test_existing_destination_needs_overwrite_and_must_be_davis(tmp_path, body, capsys):
    (tmp_path / "a.zip").write_bytes(body)
    dest = tmp_path / "DAVIS"
    args = ["--archive", str(tmp_path / "a.zip"), "--dest", str(dest), "--no-progress"]
    assert main(args) == 0
    (dest / "old.txt").write_text("from before")
    refused(capsys, main(args), "already holds a DAVIS folder", "--overwrite")
    assert (dest / "old.txt").is_file()
    assert main(args + ["--overwrite"]) == 0
    assert davis_available(dest) and not (dest / "old.txt").exists() and leftovers(tmp_path) == ["a.zip"]
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me")
    rc = main(["--archive", str(tmp_path / "a.zip"), "--dest", str(other), "--overwrite"])
    refused(capsys, rc, "replaces only a DAVIS folder")
    assert (other / "mine.txt").read_text() == "keep me"


def test_destination_may_not_contain_the_archive(tmp_path, body, capsys):
    dest = tmp_path / "DAVIS"
    dest.mkdir()
    (dest / "a.zip").write_bytes(body)
    refused(capsys, main(["--archive", str(dest / "a.zip"), "--dest", str(dest), "--overwrite"]),
            "contains the input --archive")
    assert sorted(p.name for p in dest.iterdir()) == ["a.zip"]


def test_if_missing_and_ensure_davis_download_nothing_when_davis_is_there(tmp_path, body, capsys, monkeypatch):
    (tmp_path / "a.zip").write_bytes(body)
    dest = tmp_path / "DAVIS"
    assert main(["--archive", str(tmp_path / "a.zip"), "--dest", str(dest), "--no-progress"]) == 0
    monkeypatch.setattr(download, "fetch", lambda *a, **k: pytest.fail("nothing should be downloaded"))
    assert main(["--if-missing", "--dest", str(dest)]) == 0
    assert "already at" in capsys.readouterr().out
    assert ensure_davis(dest) == dest
    monkeypatch.setenv("SIAMPOLAR_DAVIS_ROOT", str(dest))
    assert ensure_davis() == dest


def test_bad_retries_is_one_line(capsys):
    refused(capsys, main(["--retries", "-1"]), "--retries -1")


@pytest.mark.parametrize("needed, free, words", [(300_000, 200_000, "needs 293.0 KiB but"),
                                                 (1000, 999, "needs 1,000 bytes but"),
                                                 (3 * 2**30, 2**30, "needs 3.0 GiB but"),
                                                 (2**20 + 10, 2**20, "needs 1,048,586 bytes but")])
def test_too_little_space_shows_numbers_that_differ(tmp_path, monkeypatch, needed, free, words):
    """'needs 0 MiB but has 0 MiB free' said nothing: the sizes are shown in a unit that tells them apart."""
    monkeypatch.setattr(download.shutil, "disk_usage", lambda folder: type("Usage", (), {"free": free})())
    with pytest.raises(UserError, match=words) as err:
        download._check_space(tmp_path, needed, tmp_path / "DAVIS.zip")
    assert str(err.value).startswith(f"{tmp_path / 'DAVIS.zip'}: needs")
