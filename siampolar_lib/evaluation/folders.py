"""Score DAVIS-format prediction folders against annotations, and the command line that does it.

    siampolar-score --gt DIR --pred DIR [--out DIR] [--sequences a,b] [--processes N]
    (or python -m siampolar_lib.commands.score ...)

Predictions are `<pred>/<sequence>/00000.png ...` mask PNGs; the measures and statistics are
`evaluation.metrics` (the DAVIS protocol), written to results.json (`evaluation.report`) and to the
official davis2017-evaluation CSVs `global_results-val.csv` and `per-sequence_results-val.csv`.

Objects (DAVIS 2017): a sequence whose first ground-truth frame holds several ids (palette PNGs) is scored per
object, prediction pixels == k against truth == k, one row `<seq>_<k>` each, and the means run over objects,
as davis2017-evaluation does. The objects are the ids present in that frame (the objects a tracker is given):
ids {1, 3} are two objects, never a phantom object 2 that, absent on both sides, would score 100. With one
object (DAVIS 2016, 0/255 masks) the prediction is binarised (> 0), so a palette prediction scores its union,
and the row keeps the sequence's name. A first frame with no object, or fewer than 3 frames, is refused (the
protocol initialises from frame 0 and scores frames [1:-1]).
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from siampolar_lib.data.davis import check_sequence_name, first_mask_problem
from siampolar_lib.errors import UserError
from siampolar_lib.evaluation.metrics import BOUND_TH, frame_measures, mean_over_sequences, sequence_statistics
from siampolar_lib.io import read_label_png, read_mask_png, write_mask_png
from siampolar_lib.video import frame_order


def binarise_folder(src: str | os.PathLike, dst: str | os.PathLike,
                    sequences: Sequence[str] | None = None) -> Path:
    """Copy a prediction folder `<src>/<seq>/*.png` to `dst` as 0/255 PNGs (foreground = > 0).

    Tools that match objects by pixel value (vos-benchmark) need this for multi-object palette files.
    `dst` must be a different folder; `src` is only read.
    """
    src, dst = Path(src), Path(dst)
    if dst.resolve() == src.resolve():
        raise ValueError(f"binarise_folder would overwrite its input {src}")
    if sequences is None:
        sequences = sorted(p.name for p in src.iterdir() if p.is_dir())
    for seq in sequences:
        check_sequence_name(seq, str(src))
        files = frame_order((src / seq).glob("*.png"))
        if not files:
            raise FileNotFoundError(f"no PNGs in {src / seq}")
        for f in files:
            write_mask_png(dst / seq / f.name, read_mask_png(f))
    return dst


def annotations_dir(gt: str | os.PathLike) -> Path:
    """The per-sequence annotation folder from either a DAVIS root or its `Annotations/480p` folder."""
    gt = Path(gt)
    if (gt / "Annotations" / "480p").is_dir():
        return gt / "Annotations" / "480p"
    if not gt.is_dir():
        raise FileNotFoundError(f"{gt}: ground-truth folder not found")
    return gt


def evaluate_sequence_objects(gt_seq_dir: str | os.PathLike, pred_seq_dir: str | os.PathLike,
                              bound_th: float = BOUND_TH) -> dict[int, dict]:
    """Score one sequence folder per object: {object id: row} (module docstring, "Objects").

    The objects are the ids present in the first ground-truth frame (frames in `video.frame_order`). UserError
    naming the folder for fewer than 3 frames (nothing the protocol scores) or an empty first frame.
    """
    gt_seq_dir, pred_seq_dir = Path(gt_seq_dir), Path(pred_seq_dir)
    names = [p.name for p in frame_order(gt_seq_dir.glob("*.png"))]
    if not names:
        raise FileNotFoundError(f"no ground-truth PNGs in {gt_seq_dir}")
    if len(names) < 3:
        raise UserError(f"{gt_seq_dir}: {len(names)} ground-truth frame{'s' * (len(names) != 1)}, nothing to score: "
                        "the DAVIS protocol scores frames [1:-1] (frame 0 is the given mask), so at least 3 are needed")
    gts, preds = [], []
    for name in names:
        gt = read_label_png(gt_seq_dir / name)
        pred_path = pred_seq_dir / name
        if not pred_path.is_file():
            raise FileNotFoundError(f"missing prediction {pred_path} (ground truth has {gt_seq_dir / name})")
        pred = read_label_png(pred_path)
        if pred.shape != gt.shape:
            raise ValueError(f"size mismatch: prediction {pred_path} is {pred.shape[1]}x{pred.shape[0]}, "
                             f"ground truth {gt_seq_dir / name} is {gt.shape[1]}x{gt.shape[0]}")
        gts.append(gt)
        preds.append(pred)
    ids = [int(k) for k in np.unique(gts[0]) if k]  # the objects the first frame gives a tracker
    if not ids:
        raise UserError(f"{gt_seq_dir / names[0]}: {first_mask_problem(gt_seq_dir.name)}")
    preds, gts = np.stack(preds), np.stack(gts)
    if len(ids) == 1:  # one object: DAVIS 2016, the prediction's union against the truth
        return {1: sequence_statistics(frame_measures(preds > 0, gts > 0, bound_th))}
    return {k: sequence_statistics(frame_measures(preds == k, gts == k, bound_th)) for k in ids}


def _evaluate_one(args: tuple[str, str, str, float]) -> list[tuple[str, dict]]:
    """Process-pool worker: (seq, gt_dir, pred_dir, bound_th) -> [(row name, row)], one per object."""
    seq, gt_dir, pred_dir, bound_th = args
    rows = evaluate_sequence_objects(Path(gt_dir) / seq, Path(pred_dir) / seq, bound_th)
    out = []
    for k, row in rows.items():
        row.update(sequence=seq, object=k)
        out.append((seq if len(rows) == 1 else f"{seq}_{k}", row))
    return out


def evaluate_folder(gt_dir: str | os.PathLike, pred_dir: str | os.PathLike,
                    sequences: Sequence[str] | None = None, processes: int | None = None,
                    bound_th: float = BOUND_TH) -> dict:
    """Score a DAVIS-format prediction folder `<pred>/<seq>/00000.png` against annotations.

    gt_dir: a DAVIS root or its Annotations/480p folder. sequences: default all GT sequence folders,
    each of which must have a prediction folder. processes: worker processes (default one per core,
    at most one per sequence; 1 = in this process).
    Returns the mean over sequences (over objects, for multi-object sequences) of J_M, J_O, J_D, F_M, F_O, F_D
    and JF_M, plus "sequences": {seq or seq_k: row} with the same keys, the per-frame lists J and F, and the
    row's "sequence" and "object" id.
    """
    gt_root, pred_root = annotations_dir(gt_dir), Path(pred_dir)
    if not pred_root.is_dir():
        raise FileNotFoundError(f"{pred_root}: prediction folder not found")
    where = "--sequences" if sequences is not None else str(gt_root)
    if sequences is None:
        sequences = sorted(p.name for p in gt_root.iterdir() if p.is_dir())
    sequences = [check_sequence_name(s, where) for s in sequences]
    if not sequences:
        raise ValueError(f"no sequences to score in {gt_root}")
    missing_gt = [s for s in sequences if not (gt_root / s).is_dir()]
    if missing_gt:
        raise FileNotFoundError(f"{gt_root}: no ground truth for the sequences {', '.join(missing_gt)}")
    missing = [s for s in sequences if not (pred_root / s).is_dir()]
    if missing:
        raise FileNotFoundError(f"{pred_root}: no prediction folder for the sequences {', '.join(missing)}")
    jobs = [(s, str(gt_root), str(pred_root), bound_th) for s in sequences]
    n_proc = min(processes or os.cpu_count() or 1, len(jobs))
    if n_proc <= 1:
        parts = list(map(_evaluate_one, jobs))
    else:
        with ProcessPoolExecutor(n_proc) as pool:
            parts = list(pool.map(_evaluate_one, jobs))
    rows = {name: row for part in parts for name, row in part}
    return {**mean_over_sequences(rows), "sequences": rows}


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
