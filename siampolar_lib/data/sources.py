"""From the `--data` values of a training run to the videos its pairs are sampled from: one road.

    DAVIS root       --coco.davis_coco------>  COCO dict  --coco.coco_videos-->  list[Video]
    davis2coco JSON  --coco.read_coco_json-->  COCO dict  --coco.coco_videos-->  list[Video]

A DAVIS root and the JSON `data_scripts/davis2coco.py` writes for it give the same videos: the same frames,
RLE masks (DAVIS 2016: one object a sequence) and boxes, in the same order. `videos_from_davis` takes
named sequences (a notebook, a benchmark); `load_training_videos` takes the run's `--data` list.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from siampolar_lib.data.coco import Video, coco_videos, davis_coco, read_coco_json
from siampolar_lib.data.davis import folder_sequences, list_sequences, split_lists


def videos_from_davis(root: str | os.PathLike, sequences: Sequence[str] | str | None = None) -> list[Video]:
    """Videos of a DAVIS folder, one per sequence, in the order given; a mask of several objects is refused.

    sequences: names, a split name ("train", "val"), or None for every sequence folder.
    Reads every mask once (about 1 s per 100 frames); frames are read later, when pairs are made.
    """
    if sequences is None:
        names = list_sequences(root, "all")
    elif isinstance(sequences, str):
        names = list_sequences(root, sequences)
    else:
        names = list(sequences)
    return coco_videos(davis_coco(root, names, year=2016), root, source=root)


def training_sequences(root: str | os.PathLike, exclude: Sequence[str] = ()) -> list[str]:
    """The sequences a DAVIS root gives a training run, in split-file order, each once, minus `exclude`.

    Those its ImageSets list (every split but "trainval") that have a frame folder; every sequence folder
    where it has no ImageSets.
    """
    present, excluded = set(folder_sequences(root)), set(exclude)
    listed = (n for split, names in split_lists(root, 2016).items() if split != "trainval" for n in names)
    return [n for n in dict.fromkeys(listed) if n in present and n not in excluded]


def _image_root(json_path: Path, data: dict) -> Path:
    """The DAVIS root a davis2coco JSON's file names are relative to: its info's `image_root`/`davis_root`/`root`,
    else the nearest of its three parent folders holding JPEGImages/. data: the JSON's contents."""
    info = data.get("info", {}) or {}
    for key in ("image_root", "davis_root", "root"):
        if isinstance(info, dict) and isinstance(info.get(key), str) and info[key]:
            root = Path(info[key])
            return root if root.is_absolute() else (json_path.parent / root)
    for cand in (json_path.parent, json_path.parent.parent, json_path.parent.parent.parent):
        if (cand / "JPEGImages").is_dir():
            return cand
    raise FileNotFoundError(f"{json_path}: cannot infer the image root (no JPEGImages/ above it); "
                            "pass --image-root")


def several_objects(coco: dict) -> bool:
    """True when some image of a COCO dict has more than one annotation (a DAVIS-2017 conversion)."""
    seen: set[int] = set()
    for a in coco["annotations"]:
        if a["image_id"] in seen:
            return True
        seen.add(a["image_id"])
    return False


def load_training_videos(data: Sequence[str | os.PathLike], *, image_root: str | os.PathLike | None = None,
                         exclude: Sequence[str] = ()) -> list[Video]:
    """The videos of a run's --data entries (davis2coco JSONs and/or DAVIS roots), in order, minus `exclude`.

    A DAVIS root gives its `training_sequences`; a JSON's file names are joined to image_root (default: the
    DAVIS root found from the JSON). A sequence name seen twice in one root is used once. A JSON with several
    objects in a frame (`davis2coco.py --year 2017`) gives one video per object, "<sequence>/<object id>" (the
    tracker follows one object; their union would teach it a box around several), and excluding a sequence
    excludes all its objects.
    """
    if not data:
        raise ValueError("no training data: pass --data PATH (a davis2coco json or a DAVIS root)")
    videos: list[Video] = []
    for entry in data:
        p = Path(entry)
        if p.is_dir():
            if not (p / "JPEGImages").is_dir():
                raise FileNotFoundError(f"{p}: not a DAVIS root (no JPEGImages/) and not a json file")
            names = training_sequences(p, exclude)
            videos += videos_from_davis(p, names) if names else []
        elif p.is_file():
            coco = read_coco_json(p)  # its shape checked: one clear error naming the file, not a KeyError later
            videos += coco_videos(coco, Path(image_root) if image_root else _image_root(p, coco), source=p,
                                  per_object=several_objects(coco))
        else:
            raise FileNotFoundError(f"{p}: no such training data (expected a davis2coco json or a DAVIS root)")
    excluded = set(exclude)
    videos = [v for v in videos if v.name not in excluded and v.name.split("/")[0] not in excluded]
    if not videos:
        raise ValueError(f"no training videos left in {[str(d) for d in data]} after excluding {sorted(excluded)}")
    return videos
