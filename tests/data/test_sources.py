"""The one road from --data to training videos: a DAVIS root and its davis2coco JSON give the same videos."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from siampolar_lib.data.coco import coco_videos, davis_coco, davis_to_coco, load_coco_videos
from siampolar_lib.data.davis import folder_sequences, list_sequences, load_sequence, read_mask
from siampolar_lib.data.pairs import PairConfig, PairDataset
from siampolar_lib.data.sources import load_training_videos, training_sequences, videos_from_davis


def _frames(videos) -> list:
    return [(v.name, v.frames) for v in videos]


def test_a_davis_root_and_its_json_give_the_same_videos(synthetic_davis, tmp_path):
    written = davis_to_coco(synthetic_davis, out_dir=tmp_path / "coco")
    from_json = load_training_videos([written["trainval"]], image_root=synthetic_davis)
    from_root = load_training_videos([synthetic_davis])
    train, val = list_sequences(synthetic_davis, "train"), list_sequences(synthetic_davis, "val")
    assert [v.name for v in from_root] == train + val
    assert _frames(from_root) == _frames(from_json)
    val_json = load_coco_videos(written["val"], synthetic_davis)
    assert _frames(videos_from_davis(synthetic_davis, "val")) == _frames(val_json)


def test_in_memory_coco_equals_the_written_json(synthetic_davis, tmp_path):
    names = list_sequences(synthetic_davis, "train")
    written = davis_to_coco(synthetic_davis, out_dir=tmp_path / "coco", only=names)
    assert _frames(coco_videos(davis_coco(synthetic_davis, names), synthetic_davis)) == \
        _frames(load_coco_videos(written["train"], synthetic_davis))


def test_videos_follow_the_order_given(synthetic_davis):
    names = folder_sequences(synthetic_davis)[::-1]
    videos = videos_from_davis(synthetic_davis, names)
    assert [v.name for v in videos] == names and all(len(v.frames) == 12 for v in videos)
    assert [v.name for v in videos_from_davis(synthetic_davis)] == folder_sequences(synthetic_davis)


def test_training_sequences_need_a_listing_and_a_folder(synthetic_davis, tmp_path):
    root = tmp_path / "DAVIS"
    shutil.copytree(synthetic_davis, root)
    train = list_sequences(root, "train")
    shutil.rmtree(root / "JPEGImages" / "480p" / train[0])  # listed, no frames: not a training sequence
    assert training_sequences(root) == train[1:] + list_sequences(root, "val")
    assert training_sequences(root, exclude=train[1:2]) == train[2:] + list_sequences(root, "val")
    shutil.rmtree(root / "ImageSets")  # no listing at all: every sequence folder
    assert training_sequences(root) == folder_sequences(root)


def test_excluding_everything_and_missing_data_are_named(synthetic_davis, tmp_path):
    with pytest.raises(ValueError, match="no training videos left"):
        load_training_videos([synthetic_davis], exclude=folder_sequences(synthetic_davis))
    with pytest.raises(ValueError, match="no training data"):
        load_training_videos([])
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_training_videos([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not a DAVIS root"):
        load_training_videos([tmp_path / "empty"])


def test_videos_from_davis_train_sample(real_davis_train):
    """Real frames: surf's empty last mask stays an absent frame, masks decode to the PNGs, pairs come out."""
    vids = videos_from_davis(real_davis_train, ["surf", "dog-agility"])
    assert [v.name for v in vids] == ["surf", "dog-agility"]
    surf = vids[0]
    assert surf.frames[-1].mask_rle is None and surf.frames[-1].box_xywh is None  # surf's last mask is empty
    seq = load_sequence(real_davis_train, "dog-agility")
    assert len(vids[1].frames) == len(seq)
    np.testing.assert_array_equal(vids[1].decode_mask(vids[1].frames[7]), read_mask(seq.mask_paths[7]))
    ds = PairDataset(vids, PairConfig(), length=4, seed=0)
    d = ds[0]
    assert d["search"].shape == (3, 255, 255) and (d["search_mask"].any() == d["positive"])
