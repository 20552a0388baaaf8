"""DAVIS to COCO-style JSON (lossless RLE masks, one class "object"), and a reader for training.

One JSON per split: `480p_<split>.json` (train, val, ...) and `480p_trainval.json` when both train and
val exist. Images carry `sequence`, `frame_index`, `video_id` and `first_frame_id` (the id of the
sequence's frame 0). Each object in a frame is one annotation with `category_id` 1 (the one class
"object": the tracker learns "the thing in the template", not which video it is), `object_id`, a
compressed RLE `segmentation` (counts as str), `bbox` [x, y, w, h] (cv2.boundingRect convention),
`area` and `iscrowd` 0. Frames whose object is absent stay as images without annotations.
`davis_coco` builds one such dict in memory, `coco_videos` reads one into `Video`s (what training samples from);
`davis_to_coco` and `load_coco_videos` do the same through JSON files; `check_coco` refuses, naming the file
and the entry, a dict or file of another shape (`read_coco_json` reads one file and checks it).
"""
from __future__ import annotations

import json
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from siampolar_lib.data.davis import DavisError, frame_size, load_sequence, one_object, read_labels, split_lists
from siampolar_lib.geometry.boxes import mask_to_box
from siampolar_lib.io import write_text

CATEGORIES = [{"id": 1, "name": "object", "supercategory": "object"}]


# ---------------------------------------------------------------- masks <-> RLE


def encode_rle(mask: np.ndarray) -> dict:
    """Compressed COCO RLE of a mask (H, W) bool: {"size": [H, W], "counts": str}."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def decode_rle(rle: dict) -> np.ndarray:
    """Decode a compressed COCO RLE (counts str or bytes): (H, W) bool."""
    with warnings.catch_warnings():  # pycocotools' __array__ predates NumPy 2's copy keyword: harmless notice
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle).astype(bool)


def mask_polygons(mask: np.ndarray) -> list[list[float]]:
    """Outer contours of a mask as COCO polygons [[x0, y0, x1, y1, ...], ...] (lossy; 3+ points each)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


# ---------------------------------------------------------------- conversion


def _convert_sequence(args: tuple[Path, str, int, bool]) -> list[dict]:
    """One sequence as a list of frame records {file_name, height, width, frame_index, objects}."""
    root, name, year, polygons = args
    seq = load_sequence(root, name)
    records = []
    for t, (f, m) in enumerate(zip(seq.frame_paths, seq.mask_paths)):
        h, w = frame_size(f)
        labels = read_labels(m)
        if labels.shape != (h, w):
            raise DavisError(m, f"mask is {labels.shape[1]}x{labels.shape[0]} but its frame {f.name} is {w}x{h}")
        ids = [1] if year == 2016 else [int(v) for v in np.unique(labels) if v != 0]
        objects = []
        for oid in ids:
            obj = one_object(labels, m) if year == 2016 else labels == oid
            box = mask_to_box(obj)
            if box is None:
                continue  # the object is absent in this frame: the image stays, without an annotation
            rle = encode_rle(obj)
            o = {"object_id": oid, "segmentation": rle, "bbox": [float(v) for v in box],
                 "area": float(mask_utils.area(rle))}
            if polygons:
                o["polygons"] = mask_polygons(obj)
            objects.append(o)
        records.append({"file_name": f.relative_to(root).as_posix(), "height": h, "width": w,
                        "frame_index": t, "objects": objects})
    return records


def _convert(root: Path, names: list[str], year: int, polygons: bool, workers: int) -> dict[str, list[dict]]:
    """{name: frame records} of the named sequences, in `workers` processes (1 = in this one)."""
    jobs = [(root, n, year, polygons) for n in names]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_convert_sequence, jobs))
    else:
        results = [_convert_sequence(j) for j in jobs]
    return dict(zip(names, results))


def _assemble(names: list[str], converted: dict[str, list[dict]], split: str, year: int) -> dict:
    """A COCO dict for the sequences `names` (ids numbered from 1 in sequence then frame order)."""
    images, annotations, videos = [], [], []
    for vid, name in enumerate(names, 1):
        first_id = len(images) + 1
        for rec in converted[name]:
            image_id = len(images) + 1
            images.append({"id": image_id, "file_name": rec["file_name"], "width": rec["width"],
                           "height": rec["height"], "sequence": name, "frame_index": rec["frame_index"],
                           "video_id": vid, "first_frame_id": first_id})
            for o in rec["objects"]:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                    "iscrowd": 0, **o})
        videos.append({"id": vid, "name": name, "num_frames": len(converted[name]), "first_frame_id": first_id})
    return {"info": {"description": f"DAVIS {year} 480p {split}, converted by siampolar_lib.data.coco",
                     "year": year, "split": split},
            "videos": videos, "images": images, "annotations": annotations, "categories": CATEGORIES}


def _write_json(obj: dict, path: Path) -> None:
    """Write JSON to a temporary file beside `path`, then rename it into place."""
    write_text(path, json.dumps(obj, separators=(",", ":")))


def _check_year(year: int) -> None:
    """ValueError unless year is 2016 or 2017."""
    if year not in (2016, 2017):
        raise ValueError(f"year must be 2016 or 2017, got {year}")


def davis_coco(root: str | os.PathLike, names: list[str], *, year: int = 2016, split: str = "all",
               polygons: bool = False, workers: int = 1) -> dict:
    """One COCO dict (the module docstring's layout) of the DAVIS sequences `names`, built in memory.

    Every frame and mask is validated as by `davis_to_coco`; `split` only labels the dict's "info".
    """
    _check_year(year)
    names = list(dict.fromkeys(names))
    return _assemble(names, _convert(Path(root), names, year, polygons, workers), split, year)


def davis_to_coco(root: str | os.PathLike, year: int = 2016, out_dir: str | os.PathLike | None = None, *,
                  polygons: bool = False, workers: int = 1, only: list[str] | None = None) -> dict[str, Path]:
    """Convert a DAVIS folder to COCO JSONs in `out_dir`; return {split: json path}.

    year: 2016 (one object a sequence: a mask of several is refused, `davis.one_object`) or 2017 (one
    annotation per palette index).
    workers: processes converting sequences in parallel (1 = in this process).
    only: convert just these sequences (each split keeps those it lists; splits left empty are skipped).
    The DAVIS folder is only read; every file is validated (missing masks, size mismatches, corrupt files).
    """
    if out_dir is None:
        raise ValueError("out_dir is required: the converter never writes into the DAVIS folder by default")
    _check_year(year)
    root, out_dir = Path(root), Path(out_dir)
    found = coco_splits(root, year, only)
    names = list(dict.fromkeys(n for split, v in found.items() if split != "trainval" for n in v))
    converted = _convert(root, names, year, polygons, workers)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, seqs in found.items():
        path = coco_json_path(out_dir, split)
        _write_json(_assemble(seqs, converted, split, year), path)
        written[split] = path
    return written


def coco_splits(root: str | os.PathLike, year: int = 2016, only: list[str] | None = None) -> dict[str, list[str]]:
    """The JSONs `davis_to_coco` writes: {split: sequence names}, "trainval" added when train and val exist.

    only: keep just these sequences (a split left empty is not written).
    """
    found = {k: v for k, v in split_lists(root, year).items() if k != "trainval"}
    if only is not None:
        keep = set(only)
        found = {k: [n for n in v if n in keep] for k, v in found.items()}
        found = {k: v for k, v in found.items() if v}  # a split none of `only` is in is not written
    if "train" in found and "val" in found:
        found["trainval"] = list(dict.fromkeys(found["train"] + found["val"]))
    return found


def coco_json_path(out_dir: str | os.PathLike, split: str) -> Path:
    """Where `davis_to_coco` writes a split's JSON: out_dir/480p_<split>.json."""
    return Path(out_dir) / f"480p_{split}.json"


# ---------------------------------------------------------------- reading back


@dataclass(frozen=True)
class FrameRecord:
    """One frame of a video from a COCO JSON; mask_rle and box_xywh are None where the object is absent."""

    file_path: Path
    frame_index: int
    mask_rle: dict | None
    box_xywh: tuple[float, float, float, float] | None
    height: int
    width: int


@dataclass
class Video:
    """One tracked object through a sequence: `frames` in frame order."""

    name: str
    frames: list[FrameRecord] = field(default_factory=list)

    def decode_mask(self, frame: FrameRecord) -> np.ndarray:
        """The frame's mask: (H, W) bool, all False where the object is absent."""
        if frame.mask_rle is None:
            return np.zeros((frame.height, frame.width), dtype=bool)
        return decode_rle(frame.mask_rle)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_rle(v) -> bool:
    """A compressed COCO RLE: {"size": [H, W], "counts": str} (what `encode_rle` writes)."""
    size = v.get("size") if isinstance(v, dict) else None
    return isinstance(size, list) and len(size) == 2 and all(_is_int(n) and n >= 0 for n in size) \
        and isinstance(v.get("counts"), str)


def _is_box(v) -> bool:
    return isinstance(v, list) and len(v) == 4 and all(isinstance(n, (int, float)) and not isinstance(n, bool)
                                                       and np.isfinite(n) for n in v)


# What `coco_videos` reads of each entry: {key: (accepts, what it must be)}
_IMAGE_KEYS = {"id": (_is_int, "an integer"), "sequence": (lambda v: isinstance(v, str) and v, "a sequence name"),
               "frame_index": (_is_int, "an integer"), "file_name": (lambda v: isinstance(v, str) and v, "a file name"),
               "height": (lambda v: _is_int(v) and v > 0, "a positive integer"),
               "width": (lambda v: _is_int(v) and v > 0, "a positive integer")}
_ANNOTATION_KEYS = {"image_id": (_is_int, "an integer"),
                    "segmentation": (_is_rle, 'a compressed RLE {"size": [H, W], "counts": "..."}'),
                    "bbox": (_is_box, "[x, y, w, h], four numbers")}


def _json_kind(v) -> str:
    """What a parsed JSON value is, in JSON's words ('an object', 'a list', 'a number', ...)."""
    kinds = ((bool, "true/false"), (dict, "an object"), (list, "a list"), (str, "a string"), ((int, float), "a number"))
    return next((name for tp, name in kinds if isinstance(v, tp)), "null")


def _entry_problem(entry, keys: dict) -> str | None:
    """What is wrong with one image or annotation entry, or None."""
    if not isinstance(entry, dict):
        return f"is {_json_kind(entry)}, not an object"
    for key, (accepts, what) in keys.items():
        if key not in entry:
            return f"has no {key!r}"
        if not accepts(entry[key]):
            return f"{key!r} is {json.dumps(entry[key])[:40]}, not {what}"
    return None


def check_coco(data, source: str | os.PathLike = "COCO data", per_object: bool = False) -> None:
    """DavisError naming `source` and the first part of `data` that is not `davis_coco`'s layout.

    Checks what `coco_videos` reads (a top-level object; `images` and `annotations` lists; each image's id,
    sequence, frame_index, file_name, height and width; each annotation's image_id, RLE segmentation and bbox;
    object_id too when per_object), so a file of another shape is one clear error, not a KeyError mid-run.
    """
    if not isinstance(data, dict):
        raise DavisError(source, f"not a COCO file: its top level is {_json_kind(data)}, not an object "
                                 "with 'images' and 'annotations'")
    for key in ("images", "annotations"):
        if key not in data:
            raise DavisError(source, f"not a COCO file: no {key!r} key")
        if not isinstance(data[key], list):
            raise DavisError(source, f"not a COCO file: {key!r} is {_json_kind(data[key])}, not a list")
    ann_keys = {**_ANNOTATION_KEYS, "object_id": (_is_int, "an integer")} if per_object else _ANNOTATION_KEYS
    for key, entry_keys in (("images", _IMAGE_KEYS), ("annotations", ann_keys)):
        for i, entry in enumerate(data[key]):
            if (problem := _entry_problem(entry, entry_keys)) is not None:
                raise DavisError(source, f"{key}[{i}] {problem}")


def read_coco_json(json_path: str | os.PathLike) -> dict:
    """A COCO JSON file as a dict, checked by `check_coco`; DavisError naming the file when it cannot be used."""
    json_path = Path(json_path)
    try:
        data = json.loads(json_path.read_text())
    except UnicodeDecodeError:
        raise DavisError(json_path, "not a JSON text file (it is not UTF-8 text)") from None
    except json.JSONDecodeError as err:
        raise DavisError(json_path, f"not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    check_coco(data, json_path)
    return data


def load_coco_videos(json_path: str | os.PathLike, image_root: str | os.PathLike,
                     per_object: bool = False) -> list[Video]:
    """Read a JSON written by `davis_to_coco` into videos (see `coco_videos`)."""
    return coco_videos(read_coco_json(json_path), image_root, per_object=per_object, source=json_path)


def coco_videos(data: dict, image_root: str | os.PathLike, *, per_object: bool = False,
                source: str | os.PathLike = "COCO data") -> list[Video]:
    """A COCO dict of `davis_coco`'s layout -> videos in its image order; file paths joined to `image_root`.

    per_object=False: one Video per sequence, its mask the union of all objects (DAVIS 2016: the object).
    per_object=True: one Video per (sequence, object id), named "<sequence>/<object id>" (DAVIS 2017).
    source names the data in errors (the JSON file it was read from).
    """
    image_root = Path(image_root)
    check_coco(data, source, per_object)
    anns: dict[int, list[dict]] = {}
    for a in data["annotations"]:
        anns.setdefault(a["image_id"], []).append(a)
    by_seq: dict[str, list[dict]] = {}
    for im in data["images"]:
        by_seq.setdefault(im["sequence"], []).append(im)
    videos = []
    for name, ims in by_seq.items():
        ims.sort(key=lambda im: im["frame_index"])
        ids = sorted({a["object_id"] for im in ims for a in anns.get(im["id"], [])}) if per_object else [None]
        for oid in ids:
            frames = []
            for im in ims:
                sel = [a for a in anns.get(im["id"], []) if oid is None or a["object_id"] == oid]
                rle = box = None
                if len(sel) == 1:
                    rle, box = sel[0]["segmentation"], tuple(float(v) for v in sel[0]["bbox"])
                elif sel:  # several objects, union: merge the RLEs, box of the merged mask
                    rle = mask_utils.merge([dict(a["segmentation"]) for a in sel], intersect=False)
                    rle["counts"] = rle["counts"].decode("ascii")
                    b = mask_to_box(decode_rle(rle))
                    box = tuple(float(v) for v in b)
                frames.append(FrameRecord(image_root / im["file_name"], int(im["frame_index"]), rle, box,
                                          int(im["height"]), int(im["width"])))
            videos.append(Video(name if oid is None else f"{name}/{oid}", frames))
    return videos


def verify_coco(json_path: str | os.PathLike, root: str | os.PathLike, year: int = 2016) -> int:
    """Decode every annotation and compare it with the source mask, pixel for pixel; return frames checked.

    Raises DavisError naming the mask file at the first difference (also for a missing or extra object).
    """
    data = json.loads(Path(json_path).read_text())
    anns: dict[int, list[dict]] = {}
    for a in data["annotations"]:
        anns.setdefault(a["image_id"], []).append(a)
    root = Path(root)
    for im in data["images"]:
        mask_path = root / "Annotations" / "480p" / im["sequence"] / (Path(im["file_name"]).stem + ".png")
        labels = read_labels(mask_path)
        source = {1: labels > 0} if year == 2016 else {int(v): labels == v for v in np.unique(labels) if v}
        source = {k: v for k, v in source.items() if v.any()}
        got = {a["object_id"]: a for a in anns.get(im["id"], [])}
        if set(got) != set(source):
            raise DavisError(mask_path, f"objects {sorted(source)} in the mask but {sorted(got)} in {json_path}")
        for oid, a in got.items():
            if not np.array_equal(decode_rle(a["segmentation"]), source[oid]):
                raise DavisError(mask_path, f"object {oid} decoded from the JSON differs from the mask")
            if tuple(a["bbox"]) != tuple(float(v) for v in mask_to_box(source[oid])):
                raise DavisError(mask_path, f"object {oid} has bbox {a['bbox']} in the JSON")
    return len(data["images"])

