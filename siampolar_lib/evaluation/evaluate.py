"""Track DAVIS sequences and score them: `siampolar-evaluate --checkpoint CKPT --out DIR`
(or `python -m siampolar_lib.commands.evaluate`).

Every sequence is tracked from the box of its first annotated mask (frame 0 in DAVIS-2016). That frame's
output is its ground-truth mask (SiamMask's convention; the DAVIS protocol does not score it), earlier
frames (if any) are empty. Written under OUT, per method (`siampolar` or `siampolar_full_frame`, and each
baseline): `<method>/<seq>/<frame>.png` (0/255), `<method>/results.json` and the official davis2017-evaluation
CSVs `<method>/global_results-<split>.csv` and `<method>/per-sequence_results-<split>.csv` (sequence names
`<seq>_1`); the model's results and CSVs also go to `<out>/`. The network runs in the Engine it is given (the
command's `--engine onnxruntime`, its default, or `--engine torch`); a bare network runs in PyTorch. Statistics
follow the DAVIS protocol (`evaluation.metrics`: frames [1:-1], per sequence, then the mean over sequences).

Speed: fps of a sequence = timed frames / time in `init` + `track` (image reading and scoring excluded;
the tracker synchronises the device before its clock stops); the overall fps is the mean over sequences
(SiamMask's convention).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from siampolar_lib.data.davis import DavisSequence, check_first_mask, list_sequences, load_sequence
from siampolar_lib.device import describe_device, pick_device
from siampolar_lib.errors import DavisError, UserError
from siampolar_lib.evaluation.attributes import attribute_table, read_attributes
from siampolar_lib.evaluation.metrics import check_min_frames, mean_over_sequences
from siampolar_lib.evaluation.report import format_table, write_davis_csvs, write_results_json
from siampolar_lib.evaluation.sequence import load_eval_sequence, track_and_score
from siampolar_lib.io import package_version, sha256, write_mask_png, write_text
from siampolar_lib.models.siampolar import build_model
from siampolar_lib.outputs import check_output_apart, check_output_folder, is_empty_folder, owned_output
from siampolar_lib.paths import davis_root as resolve_root
from siampolar_lib.tracking.baselines import BASELINES as BASELINE_NAMES
from siampolar_lib.tracking.baselines import make_baseline
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.engine import Engine, as_engine
from siampolar_lib.tracking.tracker import Tracker
from siampolar_lib.training.checkpoint import load_model

MODEL_METHODS = {"search": "siampolar", "full_frame": "siampolar_full_frame"}
RUN_FILE = "run.json"  # what produced an evaluation folder (see run_record)


def load_tracker_model(checkpoint: str | os.PathLike | None, model_name: str | None, device: torch.device):
    """The network to track with: a checkpoint (load_model), or an untrained build_model(name) for smoke runs."""
    if checkpoint is not None:
        return load_model(checkpoint, device=device)
    if model_name is not None:
        return build_model(model_name, pretrained=True).to(device).eval()
    raise ValueError("give a checkpoint (or a model name for an untrained smoke run)")


def check_eval_output(out: str | os.PathLike, overwrite: bool | None,
                      inputs: dict[str, str | os.PathLike | None] | None = None) -> Path:
    """Validate an evaluation's --out before any work: a folder, not a file, and not someone else's data.

    inputs: {flag: path} of what the run reads (the DAVIS root, the checkpoint); --out may not be, contain or
    lie inside any of them (`outputs.check_output_apart`), with or without overwrite. overwrite False (the CLI's
    default): refuse any non-empty folder; None (the library's): refuse one that is not an earlier evaluation
    (no run.json); True: replace whatever is there (as a whole, at the end).
    """
    check_output_apart(out, inputs or {})
    out = check_output_folder(out)
    if is_empty_folder(out) or overwrite is True:
        return out
    if overwrite is None and (out / RUN_FILE).is_file():
        return out
    raise UserError(f"{out}: the output folder is not empty (an earlier run?); results of two runs must not mix: "
                    "pass --overwrite to replace it, or choose another --out")


def run_record(model, checkpoint: str | os.PathLike | None, methods: Sequence[str], mode: str, names: Sequence[str],
               frames: dict[str, int], max_frames: int | None, split: str, root: Path,
               tracker: TrackerConfig | None = None) -> dict:
    """What produced an evaluation (run.json and results.json): methods, mode, tracker settings, checkpoint, data."""
    rec = {"tool": "siampolar-evaluate", "version": package_version(), "methods": list(methods), "mode": mode,
           "checkpoint": None, "checkpoint_sha256": None, "model": None, "davis_root": str(root), "split": split,
           "sequences": list(names), "frames": dict(frames), "max_frames": max_frames,
           "tracker": asdict(tracker) if tracker is not None else None}
    if checkpoint is not None:
        rec["checkpoint"], rec["checkpoint_sha256"] = str(checkpoint), sha256(checkpoint)
    if model is not None:
        rec["model"] = getattr(getattr(model, "config", None), "name", type(model).__name__)
    return rec


def evaluate_tracker(model: torch.nn.Module | Engine | str | os.PathLike | None,
                     davis_root: str | os.PathLike | None = None, out: str | os.PathLike = "runs/eval", *,
                     overwrite: bool | None = None, **options) -> dict:
    """Track and score DAVIS sequences with a model (an nn.Module, an Engine or a checkpoint path) and baselines.

    model None runs only the baselines. `options` are `evaluate_into`'s (split, sequences, baselines, mode,
    device, cfg, max_frames, progress, verbose, checkpoint).
    Returns {method: {"summary": {J_M.., JF_M, fps}, "sequences": {seq: {J_M.., fps, lost, J, F}}}} and
    writes PNGs and results.json files under `out` (see the module docstring); prints one table per method
    when verbose. The run owns `out` (`outputs.owned_output`): it is written into a fresh folder beside it and
    swapped in when done (never two runs mixed; a concurrent run into the same `out` is refused); see
    `check_eval_output` for `overwrite`.
    """
    ckpt = options.get("checkpoint") or (model if isinstance(model, (str, os.PathLike)) else None)
    inputs = {"--davis-root": resolve_root(davis_root), "--checkpoint": ckpt}
    out = check_eval_output(out, overwrite, inputs)
    with owned_output(out) as staging:
        check_eval_output(out, overwrite, inputs)  # again, under the lock: another run may have ended meanwhile
        return evaluate_into(model, davis_root, staging, **options)


def _check_methods(model, baselines: Sequence[str], mode: str) -> list[str]:
    """The methods an evaluation runs: the model's (by mode) and the baselines; ValueError for unknown ones."""
    unknown = [b for b in baselines if b not in BASELINE_NAMES]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}: choose from {', '.join(BASELINE_NAMES)}")
    if mode not in MODEL_METHODS:
        raise ValueError(f"mode must be one of {sorted(MODEL_METHODS)}, got {mode!r}")
    methods = ([MODEL_METHODS[mode]] if model is not None else []) + list(baselines)
    if not methods:
        raise ValueError("nothing to evaluate: give a model and/or baselines")
    return methods


def _load_checked(root: Path, names: Sequence[str]) -> dict[str, DavisSequence]:
    """Every sequence, checked before any tracking: DavisError naming those with fewer than 3 frames."""
    seqs = {name: load_sequence(root, name) for name in names}
    short = [f"{n} ({len(s.frame_paths)})" for n, s in seqs.items() if len(s.frame_paths) < 3]
    if short:
        raise DavisError(root, f"sequences with fewer than 3 frames have no frame the DAVIS protocol scores "
                               f"(it skips the first and the last): {', '.join(short)}")
    return seqs


def _write_method(out: Path, method: str, rows: dict[str, dict], record: dict, split: str, is_model: bool,
                  attributes: dict[str, dict]) -> dict:
    """One method's summary (means over sequences + mean fps), written as results.json and the official CSVs."""
    summary = mean_over_sequences(rows)
    summary["fps"] = float(np.mean([r["fps"] for r in rows.values()]))
    for folder in (out / method, out) if is_model else (out / method,):
        write_results_json(folder / "results.json", summary, rows, run={**record, "method": method},
                           attributes=attributes)
        write_davis_csvs(folder, rows, split)
    return summary


def evaluate_into(model: torch.nn.Module | Engine | str | os.PathLike | None, davis_root: str | os.PathLike | None,
                  out: str | os.PathLike, *, split: str = "val", sequences: Sequence[str] | None = None,
                  baselines: Sequence[str] = (), mode: str = "search", device: str | torch.device = "auto",
                  cfg: TrackerConfig | None = None, max_frames: int | None = None, progress: bool = True,
                  verbose: bool = True, checkpoint: str | os.PathLike | None = None) -> dict:
    """`evaluate_tracker` writing straight into the folder `out` (no ownership checks, lock or swap).

    model: an Engine (built once from --engine by the command, `tracking.engine.make_engine`), or a network or a
    checkpoint path, run in PyTorch. max_frames keeps the first N >= 3 frames of each sequence (smoke runs).
    `checkpoint` names the file an nn.Module or Engine came from, for the record.
    """
    check_min_frames(max_frames)
    root, out = resolve_root(davis_root), Path(out)
    dev = device if isinstance(device, torch.device) else pick_device(device)
    methods = _check_methods(model, baselines, mode)
    names = list(sequences) if sequences else list_sequences(root, split)
    if not names:
        raise ValueError(f"no sequences to evaluate in {root} (split {split!r})")
    net = None
    if model is not None:
        if not isinstance(model, (torch.nn.Module, Engine)):
            checkpoint, model = model, load_tracker_model(model, None, dev)
        net = as_engine(model, dev)  # once: every sequence's Tracker shares it
    tcfg = cfg if cfg is not None else TrackerConfig(mode=mode)
    if tcfg.mode != mode:
        raise ValueError(f"cfg.mode {tcfg.mode!r} disagrees with mode {mode!r}")
    _load_checked(root, names)
    rows: dict[str, dict[str, dict]] = {m: {} for m in methods}
    frames: dict[str, int] = {}
    for name in tqdm(names, desc="sequences", disable=not progress, unit="seq"):
        frame_paths, gt = load_eval_sequence(root, name, max_frames)
        check_first_mask(gt, name)  # before any method runs: the protocol starts every tracker at frame 0
        frames[name] = len(frame_paths)
        for method in methods:
            tracker = Tracker(net, tcfg, device=dev) if method in MODEL_METHODS.values() \
                else make_baseline(method, gt_masks=gt)
            preds, rows[method][name] = track_and_score(tracker, frame_paths, gt, progress, desc=f"{method}/{name}")
            for t, p in enumerate(frame_paths):
                write_mask_png(out / method / name / (Path(p).stem + ".png"), preds[t])
    record = run_record(net, checkpoint, methods, mode, names, frames, max_frames, split, root, tcfg)
    results, attrs = {}, read_attributes(root)
    for method in methods:
        is_model = method in MODEL_METHODS.values()
        by_attribute = attribute_table(rows[method], attrs)
        summary = _write_method(out, method, rows[method], record, split, is_model, by_attribute)
        results[method] = {"summary": summary, "sequences": rows[method], "attributes": by_attribute}
        if verbose:
            print(f"\n== {method} ({describe_device(dev) if is_model else 'cpu'}) ==")
            print(format_table({**rows[method], "overall": summary}))
    write_text(out / RUN_FILE, json.dumps(record, indent=2) + "\n")
    return results
