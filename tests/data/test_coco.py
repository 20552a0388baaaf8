"""DAVIS to COCO: every annotation decodes to its source mask pixel for pixel; the input is never touched."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from siampolar_lib.data.coco import davis_to_coco, decode_rle, load_coco_videos, verify_coco
from siampolar_lib.data.davis import DavisError, list_sequences, load_sequence, read_mask
from siampolar_lib.paths import REPO_ROOT

# pycocotools' __array__ predates NumPy 2's copy keyword; the notice says nothing about our data
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def _check_against_masks(json_path: Path, root: Path) -> int:
    """Independent of verify_coco: pycocotools decode of each annotation vs read_mask; return frames seen."""
    data = json.loads(json_path.read_text())
    by_image = {}
    for a in data["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    for im in data["images"]:
        src = read_mask(root / "Annotations" / "480p" / im["sequence"] / f"{im['frame_index']:05d}.png")
        anns = by_image.get(im["id"], [])
        assert len(anns) == int(src.any())
        for a in anns:
            assert isinstance(a["segmentation"]["counts"], str)
            np.testing.assert_array_equal(mask_utils.decode(a["segmentation"]).astype(bool), src)
            assert a["bbox"] == list(map(float, cv2.boundingRect(src.astype(np.uint8))))
            assert a["area"] == int(src.sum()) and a["category_id"] == 1 and a["iscrowd"] == 0
    return len(data["images"])


@pytest.fixture(scope="module")
def synthetic_coco(synthetic_davis, tmp_path_factory) -> dict[str, Path]:
    before = _snapshot(synthetic_davis)
    out = davis_to_coco(synthetic_davis, out_dir=tmp_path_factory.mktemp("coco"))
    assert _snapshot(synthetic_davis) == before, "the converter must not touch its input"
    return out


def test_synthetic_splits_and_round_trip(synthetic_coco, synthetic_davis):
    assert set(synthetic_coco) == {"train", "val", "trainval"}
    assert {p.name for p in synthetic_coco.values()} == {"480p_train.json", "480p_val.json", "480p_trainval.json"}
    n = {k: _check_against_masks(p, synthetic_davis) for k, p in synthetic_coco.items()}
    assert n == {"train": 36, "val": 12, "trainval": 48}
    assert verify_coco(synthetic_coco["trainval"], synthetic_davis) == 48
    leftovers = [p.name for p in synthetic_coco["train"].parent.iterdir() if not p.name.startswith("480p_")]
    assert leftovers == [], "temporary files left behind"


def test_image_fields_and_one_class(synthetic_coco, synthetic_davis):
    data = json.loads(synthetic_coco["trainval"].read_text())
    assert data["categories"] == [{"id": 1, "name": "object", "supercategory": "object"}]
    ids = [im["id"] for im in data["images"]]
    assert ids == list(range(1, len(ids) + 1))
    first = {}
    for im in data["images"]:
        assert im["file_name"] == f"JPEGImages/480p/{im['sequence']}/{im['frame_index']:05d}.jpg"
        assert (synthetic_davis / im["file_name"]).is_file()
        assert (im["width"], im["height"]) == (854, 480)
        if im["frame_index"] == 0:
            first[im["sequence"]] = im["id"]
        assert im["first_frame_id"] == first[im["sequence"]]
    assert [v["name"] for v in data["videos"]] == ["synth00", "synth01", "synth02", "synth03"]
    assert len({im["video_id"] for im in data["images"]}) == 4


def test_absent_object_keeps_image_without_annotation(real_davis_train, tmp_path):
    out = davis_to_coco(real_davis_train, out_dir=tmp_path, only=["dog-agility", "surf"])
    assert set(out) == {"train"}  # no val split there: no trainval either
    data = json.loads(out["train"].read_text())
    surf_last = [im for im in data["images"] if im["sequence"] == "surf" and im["frame_index"] == 54]
    assert len(surf_last) == 1
    assert not [a for a in data["annotations"] if a["image_id"] == surf_last[0]["id"]]
    assert len(data["images"]) == 25 + 55 and len(data["annotations"]) == 25 + 54
    assert verify_coco(out["train"], real_davis_train) == 80


@pytest.mark.slow
def test_all_real_frames_round_trip(real_davis, tmp_path):
    out = davis_to_coco(real_davis, out_dir=tmp_path, workers=2)
    assert set(out) == {"val"}
    assert _check_against_masks(out["val"], real_davis) == 1047


def test_load_coco_videos(synthetic_coco, synthetic_davis):
    videos = load_coco_videos(synthetic_coco["val"], synthetic_davis)
    assert [v.name for v in videos] == ["synth03"]
    seq = load_sequence(synthetic_davis, "synth03")
    for f, fp, mp in zip(videos[0].frames, seq.frame_paths, seq.mask_paths):
        assert f.file_path == fp and (f.height, f.width) == (480, 854)
        src = read_mask(mp)
        np.testing.assert_array_equal(videos[0].decode_mask(f), src)
        assert (f.box_xywh is None) == (not src.any())


def test_load_coco_videos_absent_frame(synthetic_davis, tmp_path):
    out = davis_to_coco(synthetic_davis, out_dir=tmp_path)
    video = [v for v in load_coco_videos(out["train"], synthetic_davis) if v.name == "synth01"][0]
    last = video.frames[-1]
    assert last.mask_rle is None and last.box_xywh is None  # synth01's object has left the frame
    assert not video.decode_mask(last).any() and video.decode_mask(last).shape == (480, 854)


def test_out_dir_is_required(synthetic_davis):
    with pytest.raises(ValueError, match="out_dir is required"):
        davis_to_coco(synthetic_davis)


def test_polygons_on_request(synthetic_davis, tmp_path):
    out = davis_to_coco(synthetic_davis, out_dir=tmp_path, polygons=True, only=["synth03"])
    data = json.loads(out["val"].read_text())
    assert set(out) == {"val"}  # synth03 is in val only: train (and so trainval) are not written
    for a in data["annotations"][:3]:
        rles = mask_utils.frPyObjects(a["polygons"], 480, 854)
        poly = mask_utils.decode(mask_utils.merge(rles)).astype(bool)
        exact = decode_rle(a["segmentation"])
        assert (poly & exact).sum() / (poly | exact).sum() > 0.9  # polygons are lossy; RLE stays exact


def test_conversion_names_bad_files(synthetic_davis, tmp_path):
    root = Path(shutil.copytree(synthetic_davis, tmp_path / "DAVIS"))
    bad = root / "Annotations" / "480p" / "synth02" / "00006.png"
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(bad)
    with pytest.raises(DavisError, match=r"synth02/00006\.png: mask is 10x10 but its frame 00006\.jpg is 854x480"):
        davis_to_coco(root, out_dir=tmp_path / "out")
    bad.unlink()
    with pytest.raises(DavisError, match=r"synth02/00006\.png: frame 00006\.jpg of 'synth02' has no mask"):
        davis_to_coco(root, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir()), "nothing written on error"


def test_verify_catches_a_changed_mask(synthetic_davis, tmp_path):
    root = Path(shutil.copytree(synthetic_davis, tmp_path / "DAVIS"))
    out = davis_to_coco(root, out_dir=tmp_path / "out", only=["synth03"])
    m = root / "Annotations" / "480p" / "synth03" / "00002.png"
    arr = np.array(Image.open(m))
    arr[np.nonzero(arr)[0][0], np.nonzero(arr)[1][0]] = 0  # one pixel less
    Image.fromarray(arr).save(m)
    with pytest.raises(DavisError, match=r"synth03/00002\.png: object 1 decoded from the JSON differs"):
        verify_coco(out["val"], root)


def _palette(path: Path, labels: np.ndarray) -> None:
    im = Image.fromarray(labels.astype(np.uint8), mode="P")
    im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9))
    im.save(path)


def make_davis2017(root: Path) -> Path:
    """A DAVIS-2017-shaped folder: one sequence "two", 3 frames, objects 1 and 2 (2 gone in frame 2)."""
    (root / "JPEGImages" / "480p" / "two").mkdir(parents=True)
    (root / "Annotations" / "480p" / "two").mkdir(parents=True)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("two\n")
    rng = np.random.default_rng(0)
    for t in range(3):
        frame = rng.integers(0, 255, (40, 64, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "JPEGImages" / "480p" / "two" / f"{t:05d}.jpg"), frame)
        labels = np.zeros((40, 64), np.uint8)
        labels[5:15, 5 + t:20 + t] = 1
        if t < 2:
            labels[25:35, 40:60] = 2  # object 2 is gone in frame 2
        _palette(root / "Annotations" / "480p" / "two" / f"{t:05d}.png", labels)
    return root


def test_davis2017_one_annotation_per_object(tmp_path):
    root = make_davis2017(tmp_path / "D17")
    out = davis_to_coco(root, year=2017, out_dir=tmp_path / "out")
    data = json.loads(out["val"].read_text())
    assert [(a["image_id"], a["object_id"]) for a in data["annotations"]] == [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1)]
    assert verify_coco(out["val"], root, year=2017) == 3
    per_object = load_coco_videos(out["val"], root, per_object=True)
    assert [v.name for v in per_object] == ["two/1", "two/2"]
    assert per_object[1].frames[2].mask_rle is None
    union = load_coco_videos(out["val"], root)[0]
    for f in union.frames:
        truth = read_mask(root / "Annotations" / "480p" / "two" / f"{f.frame_index:05d}.png")
        np.testing.assert_array_equal(union.decode_mask(f), truth)
    assert union.frames[0].box_xywh == (5.0, 5.0, 55.0, 30.0)
    # read as 2016 the same folder has no 2016 split: the folder listing stands in ("all")
    assert list_sequences(root, "val", year=2016) == ["two"]


def test_training_from_a_davis2017_json_follows_each_object(tmp_path):
    from siampolar_lib.data.sources import load_training_videos

    root = make_davis2017(tmp_path / "D17")
    out = davis_to_coco(root, year=2017, out_dir=tmp_path / "out")
    videos = load_training_videos([out["val"]], image_root=root)
    assert [v.name for v in videos] == ["two/1", "two/2"], "the union of both objects would be one box around both"
    assert videos[0].frames[0].box_xywh == (5.0, 5.0, 15.0, 10.0)
    with pytest.raises(ValueError, match="no training videos left"):  # excluding a sequence excludes its objects
        load_training_videos([out["val"]], image_root=root, exclude=["two"])


def test_cli_smoke(synthetic_davis, tmp_path):
    script = str(REPO_ROOT / "data_scripts" / "davis2coco.py")
    r = subprocess.run([sys.executable, script, "--davis-root", str(synthetic_davis), "--out", str(tmp_path / "o"),
                        "--verify"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "val: " in r.stdout and "verified 12 frames" in r.stdout
    written = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert written == ["480p_train.json", "480p_trainval.json", "480p_val.json"]
    broken = Path(shutil.copytree(synthetic_davis, tmp_path / "broken"))
    (broken / "JPEGImages" / "480p" / "synth00" / "00001.jpg").write_bytes(b"not a jpeg")
    r = subprocess.run([sys.executable, script, "--davis-root", str(broken), "--out", str(tmp_path / "o2")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "synth00/00001.jpg: not a JPEG" in r.stderr and "Traceback" not in r.stderr
