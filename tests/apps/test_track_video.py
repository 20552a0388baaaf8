"""`siampolar-track` (`siampolar_lib.commands.track`) on a small video made here: overlay video + one mask PNG per
frame; clear errors."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from siampolar_lib.apps.track_video import output_paths, parse_box, track_video
from siampolar_lib.commands.track import main
from siampolar_lib.errors import VideoError
from siampolar_lib.io import read_mask_png
from siampolar_lib.video import read_frames

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, quick_net) -> Path:
    """An untrained 'quick' network saved as a checkpoint (the tracking plumbing, not its accuracy, is tested):
    conftest's quick_net, whose ONNX export the run makes once (`quick_export`)."""
    from siampolar_lib.training.checkpoint import save_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "quick.pt"
    save_checkpoint(path, quick_net)
    return path


def make_video(path: Path, n: int = 6, fourcc: str = "mp4v") -> Path:
    """A small BGR-encoded video of a bright disk moving right on a textured background: 160 x 120, 10 fps."""
    rng = np.random.default_rng(0)
    bg = rng.integers(40, 120, (120, 160, 3), dtype=np.uint8)
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, (160, 120))
    assert wr.isOpened(), f"OpenCV cannot write {fourcc}"
    for i in range(n):
        f = bg.copy()
        cv2.circle(f, (50 + 5 * i, 60), 18, (240, 240, 240), -1)
        wr.write(f)
    wr.release()
    return path


@pytest.mark.slow
def test_cli_writes_overlay_and_masks(tmp_path, checkpoint):
    video = make_video(tmp_path / "clip.mp4")
    out = tmp_path / "result.gif"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "siampolar_lib.commands.track", "--checkpoint", str(checkpoint),
                           "--video", str(video), "--box", "32,42,36,36", "--out", str(out), "--device", "cpu"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "tracked 6 frames" in proc.stdout
    assert len(read_frames(out)) == 6
    masks = sorted((tmp_path / "result_masks").glob("*.png"))
    assert [m.name for m in masks] == [f"{i:05d}.png" for i in range(6)]
    first = read_mask_png(masks[0])
    assert first.shape == (120, 160) and first.sum() == 36 * 36, "frame 0's mask is the given box"


def test_library_to_folder_with_max_frames(tmp_path, checkpoint):
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    for i, f in enumerate(read_frames(make_video(tmp_path / "clip.avi", fourcc="MJPG"))):
        cv2.imwrite(str(frames_dir / f"{i:04d}.jpg"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    summary = track_video(checkpoint, frames_dir, (32, 42, 36, 36), tmp_path / "out", device="cpu",
                          max_frames=4, progress=False)
    assert summary["frames"] == 4 and summary["fps"] > 0
    assert len(read_frames(tmp_path / "out" / "overlay.mp4")) == 4
    assert len(list((tmp_path / "out" / "masks").glob("*.png"))) == 4


def test_bad_inputs_are_clear_errors(tmp_path, checkpoint, capsys):
    video = make_video(tmp_path / "clip.mp4", n=2)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 50)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VideoError, match="junk.mp4"):
        track_video(checkpoint, junk, (10, 10, 20, 20), tmp_path / "a.gif", progress=False)
    with pytest.raises(VideoError, match="no image frames"):
        track_video(checkpoint, empty, (10, 10, 20, 20), tmp_path / "b.gif", progress=False)
    with pytest.raises(ValueError, match="outside the 160x120 image"):
        track_video(checkpoint, video, (500, 10, 20, 20), tmp_path / "c.gif", progress=False)
    with pytest.raises(ValueError, match="overwrite the input"):
        track_video(checkpoint, video, (10, 10, 20, 20), video, progress=False)
    with pytest.raises(ValueError, match="four numbers"):
        parse_box("1,2,3")
    with pytest.raises(ValueError, match=".mp4 or .gif"):
        output_paths(tmp_path / "x.avi")
    assert main(["--checkpoint", str(checkpoint), "--video", str(video), "--box", "0,0,0,5",
                 "--out", str(tmp_path / "d.gif")]) == 2
    assert "zero or negative size" in capsys.readouterr().err
    assert not (tmp_path / "d.gif").exists()


def test_cli_error_exit_status(tmp_path, checkpoint):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "siampolar_lib.commands.track", "--checkpoint", str(checkpoint),
                           "--video", str(tmp_path / "missing.mp4"), "--box", "1,1,5,5", "--out",
                           str(tmp_path / "r.mp4")], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2
    assert "missing.mp4: no such video file" in proc.stderr and "Traceback" not in proc.stderr


def test_an_unreadable_video_is_named_before_the_engine_is_built(tmp_path, checkpoint, monkeypatch):
    """The ONNX export took tens of seconds before a video without its index was found unreadable."""
    import siampolar_lib.apps.track_video as track_module

    clip = make_video(tmp_path / "clip.mp4")
    clip.write_bytes(clip.read_bytes()[:-2000])  # mp4v writes its index (the moov atom) last

    def no_engine(*args, **kwargs):
        raise AssertionError("the engine was built before the video was read")

    monkeypatch.setattr(track_module, "make_engine", no_engine)
    with pytest.raises(VideoError, match="clip.mp4: not a readable video"):
        track_video(checkpoint, clip, (30, 40, 40, 40), tmp_path / "out", engine="onnxruntime")
    assert not (tmp_path / "out").exists()
