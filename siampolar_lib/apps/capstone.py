"""The capstone's job (notebook 09, `data_scripts/capstone_band.py`): train the recipe, score it, set it against a band.

    scores = score_capstone(first_ckpt, ckpt, out=...)   the validation fold (the first stage alone, and the whole
                                                         network) by `selection.fold_scores`; the val sequences by
                                                         `evaluate.evaluate_tracker` (masks and results.json in out)
    record = run_capstone(recipe, data, out)             `training.capstone`'s steps, then score_capstone: the whole
                                                         recipe in one call, what the band script runs per seed
    band = expected_band([record_0, record_1])           the seeds' range, widened by their spread on each side
    band_verdict(value, band["val"]["JF_M"])             inside, or above / below it by how many points
    recipe_minutes(recipe, logged_speeds(), data)        what the recipe costs at the committed logs' speeds (fp32,
                                                         2 AVX2 cores), step by step: notebook 09's sizing

Scoring is the DAVIS protocol with the tracker's defaults and the PyTorch engine on the CPU, as the shipped model's
figures were taken (`checkpoints/val15_results.json`, `shipped_val_summary`).
"""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from siampolar_lib.data.davis import load_sequence
from siampolar_lib.data.sources import training_sequences
from siampolar_lib.errors import UserError
from siampolar_lib.evaluation.evaluate import evaluate_tracker
from siampolar_lib.evaluation.selection import fold_scores
from siampolar_lib.io import sha256, write_text
from siampolar_lib.paths import SHIPPED_CHECKPOINT, checkpoints_dir, davis_root, davis_train_sample_root
from siampolar_lib.splits import REAL_VAL_SEQUENCES, VALIDATION_FOLD_SEQUENCES
from siampolar_lib.training.capstone import (
    CapstoneConfig,
    check_held_out,
    claim_run_folder,
    train_first_stage,
    train_stage,
)
from siampolar_lib.training.checkpoint import load_checkpoint, load_model
from siampolar_lib.training.log import read_log
from siampolar_lib.training.train_refine import native_bf16

PARTS = ("fold_first_stage", "fold", "val")  # what a run is scored on (the first stage alone: the fold only)
KEYS = ("JF_M", "J_M", "F_M")  # the scores a band covers
# The band's least widening, half a point: the same weights score a few tenths apart on two CPUs (the tracker amplifies
# float rounding; checkpoints/README.md), so two seeds closer than that do not define a narrower band.
BAND_FLOOR = 0.005
BAND_RULE = ("each score's range over the seeds, widened on each side by the seeds' spread (at least 0.5 points): "
             "with two seeds, a third run of the recipe falls inside with probability 2/3 if its scores are normal")
SHIPPED = checkpoints_dir() / SHIPPED_CHECKPOINT  # the shipped network (not $SIAMPOLAR_CHECKPOINT: that may be yours)
SHIPPED_FIRST_STAGE = checkpoints_dir() / "campaign" / "phase1_lite0.pt"  # the shipped network's first stage alone
SHIPPED_VAL_RESULTS = checkpoints_dir() / "val15_results.json"  # the shipped network on the 15 val sequences
# A lite0 step's pairs/s in bf16 over fp32 on the training campaign's CPU, which computes bf16 natively (12.7 against
# 9.8 pairs/s: checkpoints/README.md, "How it was trained").
BF16_GAIN = 12.7 / 9.8
MASK_READ_SECONDS = 0.01  # reading one frame's mask when a run loads its videos (`data.sources`: about 1 s per 100)


def logged_speeds() -> dict:
    """The speeds the recipe is sized from, read from the committed logs, each for fp32 on 2 AVX2 cores:

    stage_samples_per_s and score_frames_per_s: the refinement stage's training and the tracker's scoring in the
    cross-validation's folds 2-4 (`campaign/crossval/base`, which ran alone on a 2-core AVX2 CPU). first_pairs_per_s:
    phase 1's log (backbone frozen, bf16 on the campaign's CPU) divided by BF16_GAIN and by cpu_factor, the two
    CPUs' ratio of PyTorch tracking speed on the same network (`val15_results.json` there, the folds here).
    """
    campaign = checkpoints_dir() / "campaign"
    folds = [campaign / "crossval" / "base" / f"fold{k}" for k in (2, 3, 4)]
    scored = [json.loads((f / "scores.json").read_text()) for f in folds]
    rows = [row for s in scored for row in s["rows"].values()]
    phase1 = float(np.median([r["pairs_per_s"] for r in read_log(campaign / "phase1_lite0_train_log.csv")]))
    campaign_fps = json.loads(SHIPPED_VAL_RESULTS.read_text())["siampolar"]["fps"]  # the same network, the other CPU
    cpu_factor = campaign_fps / float(np.mean([r["fps"] for r in rows]))
    return {"phase1_bf16_pairs_per_s": phase1, "bf16_gain": BF16_GAIN, "cpu_factor": cpu_factor,
            "first_pairs_per_s": phase1 / BF16_GAIN / cpu_factor,
            "stage_samples_per_s": float(np.median([r["samples_per_s"] for f in folds
                                                    for r in read_log(f / "train_log.csv")])),
            "score_frames_per_s": sum(r["frames"] for r in rows) / sum(s["score_seconds"] for s in scored)}


def count_frames(root: str | os.PathLike, names: Sequence[str]) -> int:
    """Frames of these sequences of a DAVIS folder."""
    return sum(len(load_sequence(root, name).frame_paths) for name in names)


def recipe_minutes(cfg: CapstoneConfig, speeds: dict, data: Sequence[str | os.PathLike], *,
                   fold_root: str | os.PathLike | None = None, val_root: str | os.PathLike | None = None) -> dict:
    """What `run_capstone` costs at `speeds` (`logged_speeds`): {"minutes": {first stage, refinement stage, scoring,
    reading masks}, "frames": {fold, val, train}}. Scoring tracks the fold twice (the first stage alone, the whole
    network) and the val sequences; the training videos' masks are read three times (once by the first stage, twice
    by the stage: its training videos and its fold)."""
    fold_root = Path(fold_root) if fold_root is not None else davis_train_sample_root()
    frames = {"fold": count_frames(fold_root, VALIDATION_FOLD_SEQUENCES),
              "val": count_frames(davis_root(val_root), REAL_VAL_SEQUENCES),
              "train": sum(count_frames(root, training_sequences(root, cfg.exclude_sequences)) for root in data)}
    minutes = {"first stage": cfg.first_iters * cfg.first_batch / speeds["first_pairs_per_s"] / 60,
               "refinement stage": cfg.stage_iters * cfg.stage_batch / speeds["stage_samples_per_s"] / 60,
               "scoring": (2 * frames["fold"] + frames["val"]) / speeds["score_frames_per_s"] / 60,
               "reading masks": 3 * frames["train"] * MASK_READ_SECONDS / 60}
    return {"minutes": minutes, "frames": frames}


def _summary(scores: dict, names: Sequence[str], max_frames: int | None) -> dict:
    """The part of a fold_scores / evaluate summary a record keeps: J&F, J_M, F_M, J_M per sequence, what was scored."""
    return {**{k: float(scores[k]) for k in KEYS}, "per_sequence_J_M": dict(scores["per_sequence_J_M"]),
            "sequences": list(names), "max_frames": max_frames}


def score_capstone(first_checkpoint: str | os.PathLike | None, checkpoint: str | os.PathLike, *,
                   fold_root: str | os.PathLike | None = None,
                   fold_sequences: Sequence[str] = VALIDATION_FOLD_SEQUENCES,
                   val_root: str | os.PathLike | None = None, val_sequences: Sequence[str] = REAL_VAL_SEQUENCES,
                   out: str | os.PathLike | None = None, max_frames: int | None = None) -> dict:
    """A trained network scored: {"fold_first_stage", "fold", "val"}, each {JF_M, J_M, F_M, per_sequence_J_M,
    sequences, max_frames}, or None where not asked for.

    fold: `selection.fold_scores` over fold_sequences of fold_root (default: the full-rate DAVIS-2016 train sample),
    for the first stage alone (first_checkpoint; None skips it) and for the whole network (checkpoint). val:
    `evaluate.evaluate_tracker` over val_sequences of val_root (default `paths.davis_root()`; none: skipped), its
    masks and results.json written into `out`. max_frames: the first N frames of each sequence (None: every frame).
    """
    fold_root = Path(fold_root) if fold_root is not None else davis_train_sample_root()
    scores: dict = {part: None for part in PARTS}
    if first_checkpoint is not None:
        first = load_model(first_checkpoint, device="cpu")
        scores["fold_first_stage"] = _summary(fold_scores(first, fold_root, fold_sequences, max_frames=max_frames),
                                              fold_sequences, max_frames)
    model = load_model(checkpoint, device="cpu")
    scores["fold"] = _summary(fold_scores(model, fold_root, fold_sequences, max_frames=max_frames), fold_sequences,
                              max_frames)
    if val_sequences:
        if out is None:
            raise UserError("scoring the val sequences writes their masks: give out, a folder")
        result = evaluate_tracker(model, davis_root(val_root), out, sequences=list(val_sequences), device="cpu",
                                  max_frames=max_frames, progress=False, verbose=False, checkpoint=checkpoint)
        val = result["siampolar"]
        per_sequence = {name: row["J_M"] for name, row in val["sequences"].items()}
        scores["val"] = _summary({**val["summary"], "per_sequence_J_M": per_sequence}, val_sequences, max_frames)
    return scores


def _plain(result: dict) -> dict:
    """A step's result with its paths as text (for JSON)."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in result.items()}


def run_capstone(cfg: CapstoneConfig, data: Sequence[str | os.PathLike], out: str | os.PathLike, *,
                 fold_root: str | os.PathLike | None = None,
                 fold_sequences: Sequence[str] = VALIDATION_FOLD_SEQUENCES,
                 val_root: str | os.PathLike | None = None, val_sequences: Sequence[str] = REAL_VAL_SEQUENCES,
                 max_frames: int | None = None, device: str = "cpu", workers: int = 1, progress: bool = False) -> dict:
    """The whole recipe: train_first_stage, train_stage, score_capstone (out/val holds the val masks); writes and
    returns out/capstone.json: {recipe, data, imagenet, first_stage, stage, scores, score_seconds, checkpoint_sha256}.

    Refused before any work: a scored sequence the data would train on (`check_held_out`), or an out holding another
    recipe's run (`claim_run_folder`); a stopped run in out resumes.
    """
    check_held_out(cfg, data, [*fold_sequences, *val_sequences])
    claim_run_folder(cfg, data, out)
    first = train_first_stage(cfg, data, out, device=device, workers=workers, progress=progress)
    stage = train_stage(cfg, first["checkpoint"], data, out, device=device, workers=workers, progress=progress)
    start = time.perf_counter()
    scores = score_capstone(first["checkpoint"], stage["checkpoint"], fold_root=fold_root,
                            fold_sequences=fold_sequences, val_root=val_root, val_sequences=val_sequences,
                            out=Path(out) / "val", max_frames=max_frames)
    record = {"recipe": cfg.to_dict(), "data": [str(d) for d in data], "imagenet": first["imagenet"],
              "first_stage": _plain(first), "stage": _plain(stage), "scores": scores,
              "score_seconds": time.perf_counter() - start, "checkpoint_sha256": sha256(stage["checkpoint"])}
    write_text(Path(out) / "capstone.json", json.dumps(record, indent=1) + "\n")
    return record


def expected_band(records: Sequence[dict]) -> dict:
    """{part: {key: [low, high]}} over the runs' scores (fractions, like the scores): BAND_RULE. A part some run was
    not scored on is left out."""
    if len(records) < 2:
        raise UserError(f"a band needs at least two runs of the recipe (seeds), got {len(records)}")
    band: dict = {}
    for part in PARTS:
        if any(r["scores"].get(part) is None for r in records):
            continue
        band[part] = {}
        for key in KEYS:
            values = [float(r["scores"][part][key]) for r in records]
            spread = max(max(values) - min(values), BAND_FLOOR)
            band[part][key] = [min(values) - spread, max(values) + spread]
    return band


def band_verdict(value: float, band: Sequence[float]) -> str:
    """Where a score lies against a band (fractions): inside it, or above / below it by how many points."""
    low, high = band
    where = f"the band [{100 * low:.1f}, {100 * high:.1f}]"
    if low <= value <= high:
        return f"inside {where}"
    side, gap = ("above", value - high) if value > high else ("below", low - value)
    return f"{side} {where} by {100 * gap:.1f} points"


def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """The CPU a band was measured on, in the words its timings need: name, cores, threads, the vector instructions
    PyTorch uses, native bf16."""
    return {"processor": cpu_name(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "native_bf16": native_bf16(torch.device("cpu")), "torch": torch.__version__}


def band_record(records: Sequence[dict], command: str) -> dict:
    """The band file's contents: the recipe (seed aside), each seed's record, the band, its rule, machine, command."""
    recipes = [{k: v for k, v in r["recipe"].items() if k != "seed"} for r in records]
    if any(r != recipes[0] for r in recipes):
        raise UserError("the runs of a band must share one recipe (all but the seed)")
    return {"recipe": recipes[0], "seeds": [r["recipe"]["seed"] for r in records], "runs": list(records),
            "band": expected_band(records), "band_rule": BAND_RULE, "machine": machine(), "command": command,
            "date": time.strftime("%Y-%m-%d %H:%M")}


def read_band(path: str | os.PathLike) -> dict | None:
    """The band file (`band_record`), or None when it has not been written yet; UserError for anything else."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        band = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: not a JSON file ({err})") from None
    if not isinstance(band, dict) or not {"recipe", "runs", "band"} <= set(band):
        raise UserError(f"{path}: not a capstone band (data_scripts/capstone_band.py writes one)")
    return band


def shipped_val_summary(path: str | os.PathLike = SHIPPED_VAL_RESULTS) -> dict:
    """The shipped network's scores on the 15 val sequences, every frame (its committed evaluation): JF_M, J_M, F_M,
    per_sequence_J_M."""
    model = json.loads(Path(path).read_text())["siampolar"]
    per_sequence = {name: row["J_M"] for name, row in model["sequences"].items()}
    return _summary({**model, "per_sequence_J_M": per_sequence}, list(per_sequence), None)


def shipped_committed_scores() -> dict:
    """The shipped network's committed full-protocol scores, every frame: the fold with its first stage alone (phase 1's
    last point, `campaign/learning_curve.json`) and whole (`campaign/learning_curve_staged.json`), and the 15 val
    sequences (`shipped_val_summary`). The fold's were taken on the training campaign's CPU (another CPU may score the
    same weights a few tenths apart)."""
    campaign = checkpoints_dir() / "campaign"
    alone = max((p for p in json.loads((campaign / "learning_curve.json").read_text()) if p["label"] == "phase1"),
                key=lambda p: p["step"])
    staged = next(p for p in json.loads((campaign / "learning_curve_staged.json").read_text())
                  if p["label"] == "phase1")
    scored = {"sequences": list(VALIDATION_FOLD_SEQUENCES), "max_frames": None}
    return {"fold_first_stage": {k: float(alone[k]) for k in KEYS} | scored,
            "fold": {k: float(staged[k]) for k in KEYS} | scored, "val": shipped_val_summary()}


def shipped_volume(checkpoint: str | os.PathLike = SHIPPED) -> dict:
    """What the shipped network's checkpoint says it was trained on: first-stage pairs over its phases, and
    refinement-stage samples."""
    meta = load_checkpoint(checkpoint)["meta"]
    pairs = sum(int(p["steps"]) * int(p["train_config"]["batch"]) for p in meta.get("phases", []))
    return {"first_stage_pairs": pairs, "stage_samples": int((meta.get("refine") or {}).get("samples", 0))}
