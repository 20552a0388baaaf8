"""Read a DAVIS folder: sequences, splits, frames (RGB) and masks (bool), with errors that name the file.

Layout (DAVIS 2016 and 2017, 480p):

    root/JPEGImages/480p/<seq>/00000.jpg ...   frames
    root/Annotations/480p/<seq>/00000.png ...  masks: 2016 grey 0/255; 2017 palette, one object id per index
    root/ImageSets/2016/val.txt                sequence names, one a line (also 2017/)
    root/ImageSets/480p/val.txt                "/JPEGImages/480p/seq/00000.jpg /Annotations/480p/seq/00000.png"

A folder may hold only some of this: no train split, no db_info.yml, no ImageSets at all (then every
sequence folder is listed, as the split "all").
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

import numpy as np
from PIL import Image

from siampolar_lib.errors import DavisError, UserError, VideoError
from siampolar_lib.geometry.boxes import check_box_size, mask_to_box
from siampolar_lib.io import read_label_png
from siampolar_lib.video import check_jpeg_complete, frame_order, read_image

FRAME_DIR = Path("JPEGImages") / "480p"
MASK_DIR = Path("Annotations") / "480p"
FALLBACK_SPLIT = "all"  # the split name used when a folder has no ImageSets


@dataclass(frozen=True)
class DavisSequence:
    """One DAVIS sequence: frame i is `frame_paths[i]`, its mask `mask_paths[i]` (same stem)."""

    name: str
    frame_paths: tuple[Path, ...]
    mask_paths: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.frame_paths)


# ---------------------------------------------------------------- splits


def bad_sequence_name(name: object) -> str:
    """Why `name` cannot name a sequence folder ('' when it can): it must be ONE path component under the root.

    A name is joined to the root to read frames and masks and to an output folder to write predictions, so
    '/', '\\', '..', '.', an empty name, NUL or an absolute or drive path would read or write outside them.
    """
    if not isinstance(name, str) or not name:
        return "it is empty"
    if name in (".", ".."):
        return f"{name!r} is not a folder name"
    if PureWindowsPath(name).anchor or os.path.isabs(name):
        return "it is an absolute path, not one folder name"
    for ch, what in (("/", "'/'"), ("\\", "'\\'"), ("\0", "a NUL byte")):
        if ch in name:
            return f"it holds {what}, so it is a path, not one folder name"
    return ""


def check_sequence_name(name: str, where: str) -> str:
    """`name`, or UserError naming `where` it came from (a flag, or a list file and line) when it is not ONE
    folder name under the DAVIS root (`bad_sequence_name`); every reader of sequence names goes through it."""
    problem = bad_sequence_name(name)
    if problem:
        raise UserError(f"{where}: sequence name {name!r} is refused: {problem} (a sequence is one folder under "
                        "JPEGImages/480p; a path would read and write outside the DAVIS root and the output)")
    return name


def check_sequence_names(names, flag: str = "--sequences") -> list[str]:
    """Every name of a list given on the command line (`check_sequence_name`, the error naming `flag`)."""
    return [check_sequence_name(n, flag) for n in names]


def read_sequence_list(path: str | os.PathLike) -> list[str]:
    """Sequence names of an ImageSets/<year>/<split>.txt, one a line; DavisError naming the file and line of a name
    that is not one folder name (`bad_sequence_name`)."""
    path = Path(path)
    names = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        name = line.strip()
        if name:
            problem = bad_sequence_name(name)
            if problem:
                raise DavisError(path, f"line {i}: sequence name {name!r} is refused: {problem} (a sequence is one "
                                       "folder under JPEGImages/480p)")
            names.append(name)
    return names


def _names_from_pairs(path: Path) -> list[str]:
    """Sequence names, in first-seen order, from an ImageSets/480p list of "/JPEGImages/480p/seq/x.jpg ..."."""
    names: list[str] = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = Path(line.split()[0]).parts
        if "JPEGImages" not in parts or len(parts) < parts.index("JPEGImages") + 4:
            raise DavisError(path, f"line {i} is not '/JPEGImages/480p/<seq>/<frame>.jpg ...': {line!r}")
        name = parts[parts.index("JPEGImages") + 2]
        problem = bad_sequence_name(name)
        if problem:
            raise DavisError(path, f"line {i}: sequence name {name!r} is refused: {problem}")
        if name not in names:
            names.append(name)
    return names


def folder_sequences(root: str | os.PathLike) -> list[str]:
    """Sorted names of the sequence folders under JPEGImages/480p."""
    frames = Path(root) / FRAME_DIR
    if not frames.is_dir():
        raise DavisError(frames, "no such folder: not a DAVIS root (expected JPEGImages/480p/<sequence>/)")
    return sorted(p.name for p in frames.iterdir() if p.is_dir())


def split_lists(root: str | os.PathLike, year: int = 2016) -> dict[str, list[str]]:
    """The splits a folder holds, {split: sequence names}, from ImageSets/<year>/ then ImageSets/480p/.

    Only splits that exist are returned; with no ImageSets at all, {"all": every sequence folder}.
    """
    root = Path(root)
    found: dict[str, list[str]] = {}
    year_dir = root / "ImageSets" / str(year)
    if year_dir.is_dir():
        for txt in sorted(year_dir.glob("*.txt")):
            found[txt.stem] = read_sequence_list(txt)
    pairs_dir = root / "ImageSets" / "480p"
    if year == 2016 and pairs_dir.is_dir():
        for txt in sorted(pairs_dir.glob("*.txt")):
            found.setdefault(txt.stem, _names_from_pairs(txt))
    if not found:
        found[FALLBACK_SPLIT] = folder_sequences(root)
    return found


def list_sequences(root: str | os.PathLike, split: str = "val", year: int = 2016) -> list[str]:
    """Sequence names of one split; "all" gives every sequence folder; errors name the missing file."""
    if split == FALLBACK_SPLIT:
        return folder_sequences(root)
    found = split_lists(root, year)
    if split not in found:
        if FALLBACK_SPLIT in found:  # no ImageSets at all: the folder listing stands for every split
            return found[FALLBACK_SPLIT]
        where = Path(root) / "ImageSets" / str(year) / f"{split}.txt"
        raise DavisError(where, f"no split {split!r} in this DAVIS folder; it has {sorted(found)}")
    return found[split]


# ---------------------------------------------------------------- sequences


def load_sequence(root: str | os.PathLike, name: str) -> DavisSequence:
    """List one sequence's frames and masks; raise DavisError if the folder or any frame's mask is missing.

    `name` must be one folder name (`check_sequence_name`): a path is refused before anything is read.
    Frames are in `video.frame_order` (by the number in their names).
    """
    root = Path(root)
    check_sequence_name(name, str(root / FRAME_DIR))
    frame_dir, mask_dir = root / FRAME_DIR / name, root / MASK_DIR / name
    if not frame_dir.is_dir():
        raise DavisError(frame_dir, f"sequence {name!r} is listed but its frame folder is missing")
    frames = tuple(frame_order(frame_dir.glob("*.jpg")))
    if not frames:
        raise DavisError(frame_dir, f"sequence {name!r} has no .jpg frames")
    if not mask_dir.is_dir():
        raise DavisError(mask_dir, f"sequence {name!r} has no annotation folder")
    masks = tuple(mask_dir / (f.stem + ".png") for f in frames)
    for f, m in zip(frames, masks):
        if not m.is_file():
            raise DavisError(m, f"frame {f.name} of {name!r} has no mask")
    return DavisSequence(name, frames, masks)


def load_split(root: str | os.PathLike, split: str = "val", year: int = 2016) -> list[DavisSequence]:
    """Every sequence of a split, loaded (see `load_sequence`)."""
    return [load_sequence(root, n) for n in list_sequences(root, split, year)]


# ---------------------------------------------------------------- pixels


def read_frame(path: str | os.PathLike) -> np.ndarray:
    """Decode a frame: (H, W, 3) uint8 RGB; DavisError for a missing, corrupt or truncated file.

    The one frame reader (`video.read_image`) under DAVIS's error type.
    """
    try:
        return read_image(path)
    except VideoError as err:
        raise DavisError(path, str(err)[len(str(path)) + 2:]) from None  # the same message, DAVIS's type


def frame_size(path: str | os.PathLike) -> tuple[int, int]:
    """(H, W) of a frame from its header, without decoding pixels; DavisError for a corrupt file."""
    path = Path(path)
    if not path.is_file():
        raise DavisError(path, "frame file is missing")
    with open(path, "rb") as fh:
        head = fh.read(2)
        fh.seek(max(0, path.stat().st_size - 64))
        tail = fh.read()
    if path.suffix.lower() in (".jpg", ".jpeg"):
        try:
            check_jpeg_complete(path, head + b"\x00" * 64 + tail)
        except VideoError as err:
            raise DavisError(path, str(err)[len(str(path)) + 2:]) from None
    try:
        with Image.open(path) as im:
            w, h = im.size
    except OSError as e:  # PIL's UnidentifiedImageError is an OSError
        raise DavisError(path, f"corrupt image: {e}") from e
    return h, w


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """Object ids of a ground-truth mask PNG (palette or grey): (H, W) uint8, 0 = background (`io.read_label_png`).

    Errors are DavisError naming the file: missing, unreadable, or colour (RGB) rather than palette/grey.
    """
    try:
        return read_label_png(path, rgb=False)
    except (FileNotFoundError, ValueError) as err:
        raise DavisError(path, str(err)[len(str(path)) + 2:]) from None


def read_mask(path: str | os.PathLike, object_id: int | None = None) -> np.ndarray:
    """A mask: (H, W) bool; object_id=None gives the union of all objects, else that one object."""
    labels = read_labels(path)
    return labels > 0 if object_id is None else labels == object_id


def one_object(labels: np.ndarray, path: str | os.PathLike) -> np.ndarray:
    """The object of a DAVIS-2016 mask, (H, W) bool from (H, W) uint8 ids; DavisError if it holds several.

    The DAVIS-2016 tools follow one object a sequence: a DAVIS-2017 palette mask of several objects would be
    merged into one mask and one box, so it is refused, naming the file and the ids.
    """
    ids = np.flatnonzero(np.bincount(labels.ravel(), minlength=1)[1:]) + 1
    if ids.size > 1:
        raise DavisError(path, f"a mask of {ids.size} objects (objects {', '.join(map(str, ids))}), but the "
                               "DAVIS-2016 tools follow one object a sequence and would merge them; use the "
                               "DAVIS-2017 tools (siampolar-score, davis2coco.py --year 2017) or one object a mask")
    return labels > 0


def _mask(path: Path, object_id: int | None) -> np.ndarray:
    """`read_mask`, but object_id=None is the sequence's one object (`one_object`), not a union."""
    labels = read_labels(path)
    return one_object(labels, path) if object_id is None else labels == object_id


def sequence_masks(seq: DavisSequence, object_id: int | None = None) -> np.ndarray:
    """All masks of a sequence: (T, H, W) bool; DavisError if one differs in size from the first frame.

    object_id=None: the one object of a DAVIS-2016 sequence (a mask of several is refused, `one_object`).
    """
    h, w = frame_size(seq.frame_paths[0])
    out = np.zeros((len(seq), h, w), dtype=bool)
    for t, (f, m) in enumerate(zip(seq.frame_paths, seq.mask_paths)):
        mask = _mask(m, object_id)
        fh, fw = frame_size(f) if t else (h, w)
        if mask.shape != (fh, fw) or (fh, fw) != (h, w):
            raise DavisError(m, f"mask is {mask.shape[1]}x{mask.shape[0]} but frame {f.name} is {fw}x{fh}"
                             f" (sequence frames are {w}x{h})")
        out[t] = mask
    return out


def first_box(seq: DavisSequence, object_id: int | None = None) -> np.ndarray:
    """Box (x, y, w, h) float of frame 0's mask, where the DAVIS protocol starts a tracker (cv2.boundingRect
    convention); DavisError naming the sequence when that mask is empty (as `check_first_mask`)."""
    box = mask_to_box(_mask(seq.mask_paths[0], object_id))
    if box is None:
        first_annotated(seq, object_id)  # every mask empty: that error says so
        raise DavisError(seq.mask_paths[0], first_mask_problem(seq.name))
    try:
        check_box_size(box, f"the first mask of sequence {seq.name!r}: its box")
    except ValueError as err:
        raise DavisError(seq.mask_paths[0], str(err)) from None
    return box


def first_mask_problem(name: str) -> str:
    """Why a sequence whose frame-0 mask is empty cannot be tracked (one line naming it)."""
    return (f"the first mask of sequence {name!r} is empty: the DAVIS protocol initialises a tracker from frame 0's "
            "mask, so this sequence cannot be initialised (starting at a later frame would give it that frame's "
            "true mask and score it)")


def check_first_mask(masks: np.ndarray, name: str) -> np.ndarray:
    """box_xywh of frame 0's mask of (T, H, W) masks, the one a tracker starts from; UserError naming the sequence
    when it is empty (all masks empty, or the object only later: the DAVIS protocol starts at frame 0) or its box
    is smaller than a tracker takes (`geometry.boxes.check_box_size`: a 1-pixel mask).

    What a sequence's tracking loop calls before `init`, in place of starting at `first_nonempty`.
    """
    masks = np.asarray(masks)
    box = mask_to_box(masks[0]) if len(masks) else None
    if box is None:
        if first_nonempty(masks) is None:
            raise UserError(f"every mask of sequence {name!r} is empty: nothing to track")
        raise UserError(first_mask_problem(name))
    try:  # a tracker's init would refuse it too, naming no sequence
        check_box_size(box, f"the first mask of sequence {name!r}: its box")
    except ValueError as err:
        raise UserError(str(err)) from None
    return box


def first_annotated(seq: DavisSequence, object_id: int | None = None) -> tuple[int, np.ndarray]:
    """(frame index, box_xywh) of the first frame whose mask is non-empty; DavisError if every mask is empty.

    object_id=None: the sequence's one object, as `sequence_masks`. Where a tracker starts is `first_box`
    (frame 0, refused when empty); this says where the object first appears.

    Reads masks from disk until the first non-empty one; `first_nonempty` does the same for masks in memory.
    """
    for t, m in enumerate(seq.mask_paths):
        box = mask_to_box(_mask(m, object_id))
        if box is not None:
            return t, box
    raise DavisError(seq.mask_paths[0].parent, f"every mask of {seq.name!r} is empty")


def first_nonempty(masks: np.ndarray) -> int | None:
    """Index of the first non-empty mask of (T, H, W) masks; None when all are empty."""
    masks = np.asarray(masks)
    hits = np.flatnonzero(masks.reshape(len(masks), -1).any(axis=1))
    return int(hits[0]) if hits.size else None
