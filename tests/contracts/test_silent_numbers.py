"""No silent wrong number (issue 22, items 6-10): inputs that used to be read wrongly without a word.

Each test fails on the code before the fix: a soft-edged mask read as 255 objects, a JPEG with garbage in its
scan decoded with an unnamed libjpeg warning, several palette objects merged into one by the DAVIS-2016 tools,
an animated GIF read as one frame, a dangling frame link skipped and the later masks renumbered.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import refused, script
from PIL import Image

from siampolar_lib.commands import evaluate as evaluate_cmd
from siampolar_lib.commands import score as score_cmd
from siampolar_lib.commands import track as track_cmd
from siampolar_lib.data.coco import davis_to_coco
from siampolar_lib.data.davis import DavisError, load_sequence, read_frame, read_labels, sequence_masks
from siampolar_lib.errors import VideoError
from siampolar_lib.io import read_label_png, read_mask_png
from siampolar_lib.video import iter_frames, list_frame_files, read_frames, read_image

REPO = Path(__file__).resolve().parents[2]


def trk(ckpt, video, out, *extra) -> list[str]:
    return ["--checkpoint", str(ckpt), "--video", str(video), "--out", str(out), "--no-progress", *extra]


def disk_frames(n: int, size=(120, 160)) -> list[np.ndarray]:
    """n RGB frames, a bright disk moving right on a fixed textured background."""
    bg = np.random.default_rng(0).integers(40, 120, (*size, 3), dtype=np.uint8)
    out = []
    for i in range(n):
        f = bg.copy()
        cv2.circle(f, (50 + 5 * i, 60), 18, (240, 240, 240), -1)
        out.append(f)
    return out


def tiny_davis(root: Path, labels: list[np.ndarray], palette: bool) -> Path:
    """A one-sequence DAVIS folder 'seq' whose masks are `labels` (palette PNGs, or grey PNGs as given)."""
    (root / "JPEGImages" / "480p" / "seq").mkdir(parents=True)
    (root / "Annotations" / "480p" / "seq").mkdir(parents=True)
    (root / "ImageSets" / "2016").mkdir(parents=True)
    (root / "ImageSets" / "2016" / "val.txt").write_text("seq\n")
    h, w = labels[0].shape
    for t, (lab, f) in enumerate(zip(labels, disk_frames(len(labels), (h, w)))):
        cv2.imwrite(str(root / "JPEGImages" / "480p" / "seq" / f"{t:05d}.jpg"), f)
        im = Image.fromarray(lab.astype(np.uint8), mode="P" if palette else "L")
        if palette:
            im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9))
        im.save(root / "Annotations" / "480p" / "seq" / f"{t:05d}.png")
    return root


# ------------------------------------------------------------------ 6. one mask rule: binary or a small palette

def soft_mask(shape=(40, 60)) -> np.ndarray:
    """A disk with a blurred (anti-aliased) edge: grey levels 0..255, as an image editor saves a mask."""
    m = np.zeros(shape, np.uint8)
    cv2.circle(m, (30, 20), 12, 255, -1)
    return cv2.GaussianBlur(m, (7, 7), 2)


def test_6_score_refuses_a_soft_edged_ground_truth(tmp_path, capsys):
    gt = tiny_davis(tmp_path / "gt", [soft_mask() for _ in range(4)], palette=False)
    pred = tmp_path / "pred" / "seq"
    pred.mkdir(parents=True)
    for t in range(4):
        Image.fromarray(np.zeros((40, 60), np.uint8)).save(pred / f"{t:05d}.png")  # all-zero prediction
    rc = score_cmd.main(["--gt", str(gt), "--pred", str(tmp_path / "pred"), "--out", str(tmp_path / "o"),
                       "--processes", "1"])
    refused(capsys, rc, "00000.png", "grey levels", "binary")
    assert not (tmp_path / "o" / "results.json").exists()


def test_6_every_reader_applies_the_same_rule(tmp_path):
    Image.fromarray(soft_mask()).save(tmp_path / "soft.png")
    with pytest.raises(ValueError, match=r"soft\.png: .*grey levels"):
        read_label_png(tmp_path / "soft.png")
    with pytest.raises(ValueError, match=r"soft\.png: .*grey levels"):
        read_mask_png(tmp_path / "soft.png")
    with pytest.raises(DavisError, match=r"soft\.png: .*grey levels"):
        read_labels(tmp_path / "soft.png")  # what siampolar-evaluate and davis2coco read
    # binary is 0 and any one other value; a palette gives its indices, up to a small number of objects
    Image.fromarray(np.array([[0, 128], [128, 0]], np.uint8)).save(tmp_path / "b128.png")
    np.testing.assert_array_equal(read_label_png(tmp_path / "b128.png"), [[0, 1], [1, 0]])
    pal = Image.fromarray(np.array([[0, 200], [3, 0]], np.uint8), mode="P")
    pal.putpalette(list(range(256)) * 3)
    pal.save(tmp_path / "pal.png")
    with pytest.raises(ValueError, match=r"pal\.png: palette index 200"):
        read_label_png(tmp_path / "pal.png")


# --------------------------------------------------------------- 7. a JPEG with garbage in its entropy-coded data

def garbage_jpeg(path: Path) -> Path:
    """A JPEG whose scan has 300 random bytes (no 0xFF, so every marker stays intact) written over its middle."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(disk_frames(1)[0], cv2.COLOR_RGB2BGR))
    data = bytearray(buf.tobytes())
    sos = data.index(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big")
    mid = (start + len(data) - 2) // 2
    junk = np.random.default_rng(1).integers(0, 255, 300, dtype=np.uint8)  # 0..254: never a marker byte
    data[mid:mid + 300] = junk.tobytes()
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    path.write_bytes(bytes(data))
    return path


def test_7_a_jpeg_with_garbage_inside_is_an_error_naming_it(tmp_path):
    bad = garbage_jpeg(tmp_path / "00001.jpg")
    with pytest.raises(VideoError, match=r"00001\.jpg: corrupt JPEG data \(libjpeg: Corrupt JPEG data"):
        read_image(bad)
    with pytest.raises(DavisError, match=r"00001\.jpg: corrupt JPEG data"):
        read_frame(bad)  # what evaluate, training and the demo read frames with


def test_7_a_clean_jpeg_decodes_exactly_as_opencv_does(tmp_path, capfd):
    path = tmp_path / "ok.jpg"
    cv2.imwrite(str(path), disk_frames(1)[0])
    np.testing.assert_array_equal(read_image(path), cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
    assert capfd.readouterr().err == ""


# ------------------------------------------------- 8. several palette objects given to the DAVIS-2016 tools

def two_objects(n: int = 4) -> list[np.ndarray]:
    out = []
    for t in range(n):
        lab = np.zeros((120, 160), np.uint8)
        lab[10:40, 10 + t:40 + t] = 1
        lab[70:100, 100:130] = 2
        out.append(lab)
    return out


def test_8_davis2016_tools_refuse_a_mask_of_several_objects(tmp_path, capsys):
    root = tiny_davis(tmp_path / "D", two_objects(), palette=True)
    with pytest.raises(DavisError, match=r"00000\.png: .*objects 1, 2"):
        sequence_masks(load_sequence(root, "seq"))  # what siampolar-evaluate scores against
    rc = script("davis2coco").main(["--davis-root", str(root), "--year", "2016", "--out", str(tmp_path / "c")])
    refused(capsys, rc, "00000.png", "objects 1, 2", "--year 2017")
    out = davis_to_coco(root, year=2017, out_dir=tmp_path / "c17")  # the 2017 reading keeps them apart
    (json_path,) = out.values()
    assert sorted({a["object_id"] for a in json.loads(json_path.read_text())["annotations"]}) == [1, 2]


def test_8_evaluate_refuses_it_before_tracking(tmp_path, capsys):
    root = tiny_davis(tmp_path / "D", two_objects(), palette=True)
    rc = evaluate_cmd.main(["--davis-root", str(root), "--out", str(tmp_path / "e"), "--baselines", "static",
                         "--no-progress", "--device", "cpu"])
    refused(capsys, rc, "00000.png", "objects 1, 2")


# ---------------------------------------------------------------- 9. an animated GIF OpenCV reads as one frame

def gif_without_control_blocks(path: Path, frames: list[np.ndarray]) -> Path:
    """An animated GIF with no graphic-control extensions (valid, as GIF87a animations are): FFmpeg reads one frame."""
    ims = [Image.fromarray(f) for f in frames]
    ims[0].save(path, save_all=True, append_images=ims[1:])
    data = re.sub(rb"\x21\xf9\x04.{4}\x00", b"", path.read_bytes(), flags=re.S)
    path.write_bytes(data)
    with Image.open(path) as im:
        assert im.n_frames == len(frames)
    return path


def test_9_every_frame_of_a_gif_is_read(tmp_path):
    frames = disk_frames(4)
    gif = gif_without_control_blocks(tmp_path / "clip.gif", frames)
    got = read_frames(gif)
    assert len(got) == 4
    assert [int(np.abs(g.astype(int) - f).max()) <= 40 for g, f in zip(got, frames)] == [True] * 4
    assert len(list(iter_frames(gif, max_frames=2))) == 2


def test_9_track_tracks_every_frame_of_that_gif(tmp_path, capsys, ckpt):
    gif = gif_without_control_blocks(tmp_path / "clip.gif", disk_frames(4))
    rc = track_cmd.main(trk(ckpt, gif, tmp_path / "o", "--box", "30,40,40,40", "--device", "cpu", "--engine", "torch"))
    assert rc == 0, capsys.readouterr().err
    assert "tracked 4 frames" in capsys.readouterr().out
    assert len(list((tmp_path / "o" / "masks").glob("*.png"))) == 4


# --------------------------------------------------------- 10. a dangling link among the frames of a folder

def frame_folder(folder: Path, names: list[str]) -> Path:
    folder.mkdir()
    for name, f in zip(names, disk_frames(len(names))):
        cv2.imwrite(str(folder / name), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    return folder


def test_10_a_dangling_frame_link_is_an_error_naming_it(tmp_path, capsys, ckpt):
    folder = frame_folder(tmp_path / "clip", ["00000.jpg", "00001.jpg", "00003.jpg"])
    (folder / "00002.jpg").symlink_to(tmp_path / "gone.jpg")
    with pytest.raises(VideoError, match=r"00002\.jpg: .*broken link"):
        list_frame_files(folder)
    refused(capsys, track_cmd.main(trk(ckpt, folder, tmp_path / "o", "--box", "30,40,40,40")), "00002.jpg")
    assert not (tmp_path / "o").exists()


def test_10_masks_take_their_frames_names(tmp_path, capsys, ckpt):
    folder = frame_folder(tmp_path / "clip", ["00000.jpg", "00001.jpg", "00003.jpg"])  # 00002 is not there
    rc = track_cmd.main(trk(ckpt, folder, tmp_path / "o", "--box", "30,40,40,40", "--device", "cpu",
                            "--engine", "torch"))
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "o" / "masks").iterdir()) == ["00000.png", "00001.png", "00003.png"]


def test_10_frames_that_share_a_name_are_refused(tmp_path, capsys, ckpt):
    folder = frame_folder(tmp_path / "clip", ["00000.jpg", "00001.jpg", "00001.png"])
    refused(capsys, track_cmd.main(trk(ckpt, folder, tmp_path / "o", "--box", "30,40,40,40")),
            "00001.jpg", "00001.png")
