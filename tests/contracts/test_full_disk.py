"""A full disk: every tool says so in one line (exit 2), keeps the earlier result and leaves no temp (issue 22).

Each tool runs once on a small tmpfs, the disk is then filled to its last byte, and the same run is repeated with
--overwrite. Before the fix the checkpoint writer raised torch's bare RuntimeError ("file write failed"), the mask
PNG writer's cv2.imwrite could fail quietly, and a full disk's OSError was a traceback in every tool. The MP4
case is separate: OpenCV's writer does not fail on a full disk, it only warns and leaves a file with no index
(0 frames), so the test gives the writer a file system that loses the end of the file, as a full disk does.
Mounting a tmpfs needs root: the tests skip elsewhere (the MP4 test does not need it).
"""
from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import export_by_copy, refused, script

from siampolar_lib.commands import evaluate as evaluate_cmd
from siampolar_lib.commands import track as track_cmd
from siampolar_lib.commands import train as train_cmd
from siampolar_lib.errors import VideoError

FULL = "No space left on device"
OPENCV_WRITER = cv2.VideoWriter


@pytest.fixture
def disk(tmp_path) -> Path:
    """An empty 8 MiB tmpfs of this test's own, unmounted afterwards."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {' '.join(proc.stderr.split())}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=True)


def fill(folder: Path) -> None:
    """Fill the file system under folder to its last byte with folder/filler."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    chunk = b"\0" * (1 << 16)
    try:
        while True:
            os.write(fd, chunk)
    except OSError as err:
        assert err.errno == errno.ENOSPC, err
    finally:
        os.close(fd)
    assert os.statvfs(folder).f_bavail == 0


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under folder but the filler -> its bytes (None for a folder)."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes())
            for p in folder.rglob("*") if p.name != "filler"}


def rerun_on_full_disk(capsys, disk: Path, run, *needles: str) -> None:
    """run(again=False) on free space, then run(again=True) on the filled disk: one line, earlier result intact."""
    assert run(False) == 0
    capsys.readouterr()
    before = snapshot(disk)
    fill(disk)
    line = refused(capsys, run(True), *needles)
    assert ".partial-" not in line and ".tmp" not in line, f"names a temp, not the output: {line}"
    assert snapshot(disk) == before, "the earlier result changed, or a temp was left behind"


@pytest.mark.parametrize("out", ["r.gif", "r.mp4", "folder"])
def test_track_on_a_full_disk(capsys, disk, ckpt, frames_dir, out):
    args = ["--checkpoint", str(ckpt), "--video", str(frames_dir), "--out", str(disk / out), "--box", "30,40,40,40",
            "--engine", "torch", "--device", "cpu", "--no-progress"]
    rerun_on_full_disk(capsys, disk, lambda again: track_cmd.main(args + ["--overwrite"] * again), FULL, str(disk))


def test_evaluate_on_a_full_disk(capsys, disk, tiny_davis):
    args = ["--davis-root", str(tiny_davis), "--baselines", "static", "--out", str(disk / "ev"), "--no-progress",
            "--max-frames", "4", "--model", "quick", "--engine", "torch", "--device", "cpu"]
    rerun_on_full_disk(capsys, disk, lambda again: evaluate_cmd.main(args + ["--overwrite"] * again), FULL, str(disk))


def test_davis2coco_on_a_full_disk(capsys, disk, tiny_davis):
    d2c = script("davis2coco")
    args = ["--davis-root", str(tiny_davis), "--out", str(disk / "coco")]
    rerun_on_full_disk(capsys, disk, lambda again: d2c.main(args + ["--overwrite"] * again), FULL, str(disk / "coco"))


def test_export_onnx_on_a_full_disk(capsys, disk, ckpt, quick_export, monkeypatch):
    """The exporter's bare OSError was 'torch.onnx.export failed for quick', naming neither the disk nor --out.

    The first export (the earlier result) copies the graphs of ckpt's weights from quick_export (tens of seconds
    saved); the one on the full disk is real, so it is torch.onnx's own write that meets the full disk."""
    from siampolar_lib.commands import export_onnx as export_cmd
    from siampolar_lib.tracking import onnx_export

    real = onnx_export._export_graph
    export_by_copy(monkeypatch, quick_export)

    def run(again: bool) -> int:
        if again:
            monkeypatch.setattr(onnx_export, "_export_graph", real)
        return export_cmd.main(["--checkpoint", str(ckpt), "--out", str(disk / "onnx")] + ["--overwrite"] * again)

    rerun_on_full_disk(capsys, disk, run, FULL, str(disk / "onnx"))


def test_train_on_a_full_disk(capsys, disk, tiny_davis):

    args = ["--data", str(tiny_davis), "--out", str(disk / "run"), "--batch", "1", "--device", "cpu", "--no-progress"]
    # The second run resumes for 2 more steps: its checkpoint cannot be written, the first run's stays whole.
    rerun_on_full_disk(capsys, disk, lambda again: train_cmd.main(args + (["--iters", "4", "--resume"] if again
                                                                          else ["--iters", "2"])), FULL, str(disk))


class LosingTail:
    """cv2.VideoWriter whose file loses its second half on release, as a full disk leaves an MP4 (no index)."""

    def __init__(self, path, *args):
        self.path, self.inner = path, OPENCV_WRITER(path, *args)

    def isOpened(self) -> bool:
        return self.inner.isOpened()

    def write(self, frame) -> None:
        self.inner.write(frame)

    def release(self) -> None:
        self.inner.release()
        with open(self.path, "r+b") as f:
            f.truncate(os.path.getsize(self.path) // 2)


def test_an_mp4_that_does_not_read_back_never_replaces_the_earlier_one(tmp_path, monkeypatch):
    from siampolar_lib import video_writers
    from siampolar_lib.video import read_frames

    clip = [np.full((64, 96, 3), 40 * i, np.uint8) for i in range(5)]
    out = video_writers.write_mp4(tmp_path / "a.mp4", clip, fps=5)
    streamed = tmp_path / "b.mp4"
    with video_writers.VideoSink(streamed, fps=5) as sink:
        for f in clip:
            sink.write(f)
    good = {p.name: p.read_bytes() for p in (out, streamed)}
    assert len(read_frames(out)) == len(read_frames(streamed)) == 5
    monkeypatch.setattr(video_writers.cv2, "VideoWriter", LosingTail)
    with pytest.raises(VideoError, match=r"a\.mp4: the MP4 reads back with 0 of its 5 frames"):
        video_writers.write_mp4(out, clip, fps=5)
    with pytest.raises(VideoError, match=r"b\.mp4: the MP4 reads back with 0 of its 5 frames"):
        with video_writers.VideoSink(streamed, fps=5) as sink:
            for f in clip:
                sink.write(f)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == good, "earlier videos changed or temps left"


@pytest.mark.parametrize("tool", ["score", "davis2coco", "train"])
def test_a_first_run_on_a_full_disk_leaves_no_folder(capsys, disk, tiny_davis, tool):
    """An --out (and its parents) a failed first run made is removed again: score and davis2coco left it empty."""
    from siampolar_lib.commands import score as score_cmd

    out = disk / "new" / "out"
    fill(disk)
    if tool == "score":
        rc = score_cmd.main(["--gt", str(tiny_davis), "--pred", str(tiny_davis / "Annotations" / "480p"), "--out",
                             str(out), "--processes", "1"])
    elif tool == "davis2coco":
        rc = script("davis2coco").main(["--davis-root", str(tiny_davis), "--out", str(out)])
    else:
        rc = train_cmd.main(["--data", str(tiny_davis), "--out", str(out), "--iters", "1", "--batch", "1",
                             "--device", "cpu", "--no-progress"])
    refused(capsys, rc, FULL, str(out))
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]
