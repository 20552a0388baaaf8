"""Video in/out: frames round-trip through MP4, GIF, frame folders and mask PNGs; bad input is a clear error."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from siampolar_lib.errors import VideoError
from siampolar_lib.geometry.polar import rays_to_polygon
from siampolar_lib.video import read_frames, video_fps
from siampolar_lib.video_writers import write_gif, write_mp4, write_png, write_video
from siampolar_lib.viz import polygon_centre, render_track


def moving_square(n: int = 6, h: int = 64, w: int = 96) -> list[np.ndarray]:
    """n RGB frames of a red square moving right on grey: (h, w, 3) uint8 each."""
    frames = []
    for i in range(n):
        f = np.full((h, w, 3), 90, np.uint8)
        f[20:40, 10 + 8 * i:30 + 8 * i] = (230, 30, 30)
        frames.append(f)
    return frames


@pytest.mark.parametrize("fourcc,suffix", [("mp4v", ".mp4"), ("MJPG", ".avi")])
def test_read_video_written_by_opencv(tmp_path, fourcc, suffix):
    frames = moving_square()
    path = tmp_path / f"clip{suffix}"
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, (96, 64))
    assert wr.isOpened()
    for f in frames:
        wr.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    wr.release()
    got = read_frames(path)
    assert len(got) == len(frames) and got[0].shape == (64, 96, 3) and got[0].dtype == np.uint8
    # RGB order survives the BGR codec: the square is red, not blue (lossy codec: compare loosely).
    r, g, b = got[2][30, 30].astype(int)
    assert r > 150 and b < 100
    assert len(read_frames(path, max_frames=3)) == 3
    assert video_fps(path) == pytest.approx(10.0)


def test_mp4_and_gif_round_trip(tmp_path):
    frames = moving_square(5)
    for name in ("a.mp4", "a.gif"):
        p = write_video(tmp_path / name, frames, fps=8)
        got = read_frames(p)
        assert len(got) == 5 and got[0].shape == frames[0].shape
        assert np.abs(got[4].astype(int) - frames[4].astype(int)).mean() < 12
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.gif", "a.mp4"], "no temporary files left"


def test_frame_folder_sorted_and_max_frames(tmp_path):
    frames = moving_square(4)
    for i, f in enumerate(frames):
        write_png(tmp_path / f"{i:03d}.png", f)
    (tmp_path / "notes.txt").write_text("not a frame")
    got = read_frames(tmp_path)
    assert len(got) == 4 and all(np.array_equal(a, b) for a, b in zip(got, frames))
    assert len(read_frames(tmp_path, max_frames=2)) == 2


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(VideoError, match="no such"):
        read_frames(tmp_path / "missing.mp4")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VideoError, match="no image frames"):
        read_frames(empty)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 10)
    with pytest.raises(VideoError, match="junk.mp4.*not a readable video"):
        read_frames(junk)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    write_png(mixed / "0.png", np.zeros((8, 8, 3), np.uint8))
    write_png(mixed / "1.png", np.zeros((9, 8, 3), np.uint8))
    with pytest.raises(VideoError, match="differ in size"):
        read_frames(mixed)
    with pytest.raises(ValueError, match="use .gif or .mp4"):
        write_video(tmp_path / "x.avi", moving_square(2))
    with pytest.raises(ValueError, match="uint8"):
        write_gif(tmp_path / "x.gif", [np.zeros((4, 4, 3), np.float32)])
    with pytest.raises(ValueError, match="no frames"):
        write_mp4(tmp_path / "x.mp4", [])


def test_polygon_centre_recovers_ray_origin():
    rng = np.random.default_rng(0)
    for _ in range(20):
        c = rng.uniform(-50, 500, 2)
        rays = rng.uniform(0, 80, 36)
        rays[rng.integers(0, 36, 3)] = 0.0
        assert np.allclose(polygon_centre(rays_to_polygon(c, rays)), c, atol=1e-6)


def test_render_track_draws_every_layer():
    frame = np.full((120, 160, 3), 50, np.uint8)
    mask = np.zeros((120, 160), bool)
    mask[40:80, 50:100] = True
    poly = rays_to_polygon(np.array([75.0, 60.0]), np.full(36, 20.0))
    plain = render_track(frame)
    assert np.array_equal(plain, frame) and plain is not frame
    layers = [render_track(frame, mask=mask), render_track(frame, polygon=poly), render_track(frame, score=0.5),
              render_track(frame, box_xywh=(10, 10, 20, 20)), render_track(frame, score_map=np.eye(5))]
    for img in layers:
        assert img.shape == frame.shape and img.dtype == np.uint8 and not np.array_equal(img, frame)
    with_rays = render_track(frame, polygon=poly, rays=True)
    no_rays = render_track(frame, polygon=poly, rays=False)
    assert with_rays[60, 75].tolist() != no_rays[60, 75].tolist(), "rays meet at the centre"


def noisy_clip(path, n: int = 6):
    """A video of n noisy 160x120 frames (large, so a cut takes part of the last frame) written by `path`'s suffix:
    .gif by Pillow, .avi (MJPG) or .xvid.avi (XVID) or .mp4 (mp4v) by OpenCV."""
    from PIL import Image

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(n)]
    if path.suffix == ".gif":
        Image.fromarray(frames[0]).save(path, save_all=True, append_images=[Image.fromarray(f) for f in frames[1:]],
                                        duration=100, loop=0)
        return path
    fourcc = {".mp4": "mp4v", ".avi": "XVID" if path.name.endswith(".xvid.avi") else "MJPG"}[path.suffix]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, (160, 120))
    for f in frames:
        wr.write(f)
    wr.release()
    return path


@pytest.mark.parametrize("name", ["clip.avi", "clip.xvid.avi", "clip.gif"])
@pytest.mark.parametrize("cut", [2000, 8000])
def test_a_cut_off_video_is_an_error_not_a_damaged_last_frame(tmp_path, capfd, name, cut):
    """Issue 29, 4.13: FFmpeg only warned and the damaged last frame was tracked and written."""
    path = noisy_clip(tmp_path / name)
    assert len(read_frames(path)) == 6
    path.write_bytes(path.read_bytes()[:-cut])
    capfd.readouterr()
    with pytest.raises(VideoError, match=rf"{path.name}: frame [45] is damaged \(FFmpeg: .+\); the video is cut off"):
        read_frames(path)
    assert capfd.readouterr().err == "", "FFmpeg's warnings are in the error, not printed beside it"


def test_an_mp4_without_its_index_is_one_error_holding_ffmpegs_reason(tmp_path, capfd):
    """Issue 29, 4.20: FFmpeg's "moov atom not found" was printed twice before the error."""
    path = noisy_clip(tmp_path / "clip.mp4")
    path.write_bytes(path.read_bytes()[:-2000])
    capfd.readouterr()
    assert video_fps(path) == 24.0
    with pytest.raises(VideoError, match="clip.mp4: not a readable video .*FFmpeg: .*moov atom not found"):
        read_frames(path)
    assert capfd.readouterr().err == ""
