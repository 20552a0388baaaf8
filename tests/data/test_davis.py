"""The DAVIS reader: real frames and masks, splits in both ImageSets styles, and bad input named by file."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from siampolar_lib.data.davis import (
    DavisError,
    first_annotated,
    first_box,
    frame_size,
    list_sequences,
    load_sequence,
    read_frame,
    read_labels,
    read_mask,
    sequence_masks,
    split_lists,
)


@pytest.fixture
def davis_copy(tmp_path, synthetic_davis) -> Path:
    """A writable copy of the small synthetic DAVIS set, for breaking files."""
    return Path(shutil.copytree(synthetic_davis, tmp_path / "DAVIS"))


# ---------------------------------------------------------------- real data


def test_real_val_split_and_sequences(real_davis):
    names = list_sequences(real_davis, "val")
    assert len(names) == 15 and names[0] == "blackswan"
    assert set(split_lists(real_davis)) == {"val"}  # no train split, no db_info.yml: still readable
    seq = load_sequence(real_davis, "blackswan")
    assert len(seq) == 50 and len(seq.mask_paths) == 50
    assert seq.frame_paths[7].stem == seq.mask_paths[7].stem == "00007"


def test_real_frame_is_rgb_and_mask_bool(real_davis):
    seq = load_sequence(real_davis, "blackswan")
    frame = read_frame(seq.frame_paths[0])
    bgr = cv2.imread(str(seq.frame_paths[0]))
    assert frame.shape == (480, 854, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, bgr[..., ::-1])
    mask = read_mask(seq.mask_paths[0])
    assert mask.dtype == bool and mask.shape == (480, 854)
    raw = cv2.imread(str(seq.mask_paths[0]), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(mask, raw > 0)


def test_real_first_box_is_bounding_rect(real_davis):
    seq = load_sequence(real_davis, "bmx-trees")
    raw = cv2.imread(str(seq.mask_paths[0]), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(first_box(seq), np.array(cv2.boundingRect((raw > 0).astype(np.uint8)), float))


def test_train_sample_both_imagesets_styles_agree(real_davis_train, tmp_path):
    assert list_sequences(real_davis_train, "train") == [
        "dog-agility", "motocross-bumps", "motorbike", "rollerblade", "surf", "tennis"]
    # the same folder seen through ImageSets/480p/train.txt only ("/JPEGImages/480p/seq/00000.jpg /Annotations/...")
    only_pairs = tmp_path / "pairs"
    (only_pairs / "ImageSets").mkdir(parents=True)
    shutil.copytree(real_davis_train / "ImageSets" / "480p", only_pairs / "ImageSets" / "480p")
    assert split_lists(only_pairs) == split_lists(real_davis_train)


def test_train_sample_empty_last_mask(real_davis_train):
    seq = load_sequence(real_davis_train, "surf")
    masks = sequence_masks(seq)
    assert masks.shape == (55, 480, 854) and not masks[-1].any() and masks[:-1].any(axis=(1, 2)).all()
    assert first_annotated(seq)[0] == 0


# ---------------------------------------------------------------- splits


def test_no_imagesets_falls_back_to_folder_listing(davis_copy):
    shutil.rmtree(davis_copy / "ImageSets")
    assert split_lists(davis_copy) == {"all": ["synth00", "synth01", "synth02", "synth03"]}
    assert list_sequences(davis_copy, "val") == ["synth00", "synth01", "synth02", "synth03"]


def test_missing_split_names_the_file(real_davis):
    with pytest.raises(DavisError, match=r"ImageSets/2016/train\.txt.*'val'"):
        list_sequences(real_davis, "train")


def test_not_a_davis_root(tmp_path):
    with pytest.raises(DavisError, match="JPEGImages/480p"):
        split_lists(tmp_path)


def test_bad_pairs_line_names_the_file(tmp_path):
    (tmp_path / "ImageSets" / "480p").mkdir(parents=True)
    (tmp_path / "ImageSets" / "480p" / "val.txt").write_text("blackswan 00000\n")
    with pytest.raises(DavisError, match=r"val\.txt: line 1"):
        split_lists(tmp_path)


# ---------------------------------------------------------------- bad input


def test_listed_but_missing_sequence(davis_copy):
    shutil.rmtree(davis_copy / "JPEGImages" / "480p" / "synth02")
    assert "synth02" in list_sequences(davis_copy, "train")
    with pytest.raises(DavisError, match=r"JPEGImages/480p/synth02: sequence 'synth02' is listed") as e:
        load_sequence(davis_copy, "synth02")
    assert e.value.path == davis_copy / "JPEGImages" / "480p" / "synth02"


def test_frame_without_mask(davis_copy):
    (davis_copy / "Annotations" / "480p" / "synth01" / "00005.png").unlink()
    with pytest.raises(DavisError, match=r"synth01/00005\.png: frame 00005\.jpg of 'synth01' has no mask"):
        load_sequence(davis_copy, "synth01")


def test_mask_size_mismatch(davis_copy):
    bad = davis_copy / "Annotations" / "480p" / "synth00" / "00003.png"
    Image.fromarray(np.zeros((240, 427), np.uint8)).save(bad)
    seq = load_sequence(davis_copy, "synth00")
    with pytest.raises(DavisError, match=r"synth00/00003\.png: mask is 427x240 but .*854x480"):
        sequence_masks(seq)


def test_corrupt_jpeg_garbage_bytes(davis_copy):
    bad = davis_copy / "JPEGImages" / "480p" / "synth00" / "00002.jpg"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(DavisError, match=r"synth00/00002\.jpg: not a JPEG"):
        read_frame(bad)
    with pytest.raises(DavisError, match=r"00002\.jpg"):
        frame_size(bad)


def test_jpeg_header_but_garbage_body(davis_copy):
    bad = davis_copy / "JPEGImages" / "480p" / "synth00" / "00002.jpg"
    bad.write_bytes(b"\xff\xd8" + b"\x00garbage" * 100 + b"\xff\xd9")
    with pytest.raises(DavisError, match=r"00002\.jpg: corrupt image"):
        read_frame(bad)


def test_truncated_jpeg(davis_copy):
    bad = davis_copy / "JPEGImages" / "480p" / "synth01" / "00000.jpg"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DavisError, match=r"synth01/00000\.jpg: truncated JPEG"):
        read_frame(bad)


def test_truncated_png_mask(davis_copy):
    bad = davis_copy / "Annotations" / "480p" / "synth01" / "00004.png"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DavisError, match=r"synth01/00004\.png: not a readable mask image"):
        read_mask(bad)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(DavisError, match=r"nope\.jpg: frame file is missing"):
        read_frame(tmp_path / "nope.jpg")
    with pytest.raises(DavisError, match=r"nope\.png: mask file is missing"):
        read_mask(tmp_path / "nope.png")


def test_rgb_mask_is_refused(tmp_path):
    p = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(p)
    with pytest.raises(DavisError, match=r"rgb\.png: mask mode 'RGB'"):
        read_mask(p)


def test_all_empty_sequence_has_no_first_box(davis_copy):
    for m in (davis_copy / "Annotations" / "480p" / "synth03").glob("*.png"):
        Image.fromarray(np.zeros((480, 854), np.uint8)).save(m)
    seq = load_sequence(davis_copy, "synth03")
    assert not sequence_masks(seq).any()
    with pytest.raises(DavisError, match="every mask of 'synth03' is empty"):
        first_box(seq)


# ---------------------------------------------------------------- 2017 palette masks


def _palette_png(path: Path, labels: np.ndarray) -> None:
    im = Image.fromarray(labels.astype(np.uint8), mode="P")
    im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [0] * (256 * 3 - 12))
    im.save(path)


def test_palette_mask_objects(tmp_path):
    labels = np.zeros((6, 8), np.uint8)
    labels[1:3, 1:4], labels[4:6, 5:8] = 1, 3
    _palette_png(tmp_path / "m.png", labels)
    np.testing.assert_array_equal(read_labels(tmp_path / "m.png"), labels)
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), labels > 0)
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png", object_id=3), labels == 3)
    assert not read_mask(tmp_path / "m.png", object_id=2).any()


def test_grey_255_mask_is_object_one(tmp_path):
    Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_labels(tmp_path / "g.png"), [[0, 1], [1, 0]])
