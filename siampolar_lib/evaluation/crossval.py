"""Cross-validation of refinement-stage recipes over the DAVIS-2016 train split (`splits.CV_FOLDS`, issue 30).

A candidate is a name and the RefineConfig settings it changes from `SHIPPED_RECIPE`. For each candidate and each
fold, the stage is trained (the first stage of init_from frozen) on every training sequence but the fold's, then the
tracker (PyTorch engine, shipped TrackerConfig) runs on the fold's sequences and they are scored (DAVIS protocol).
Every sequence is thus scored once per candidate, by a stage that never saw it:

    out/<candidate>/fold<k>/run/           the stage's run (train_refine: last.pt, step{N}.pt, train_log.csv)
    out/<candidate>/fold<k>/scores.json    the fold's rows: J&F, J_M, F_M, box IoU, fps per sequence
    out/crossval.json, out/crossval.md     every row read back and the table (`summarise`), rewritten after each fold

Resumable: a scored fold is read back, an unfinished run resumed (`run_crossval` again with the same settings).
Noise: the sequences are resampled with replacement (BOOTSTRAP draws): the sd of a candidate's mean J&F, and of its
mean difference from the first candidate on the same sequences (paired, what a choice between them rests on).
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from siampolar_lib.data.davis import folder_sequences
from siampolar_lib.data.first_stage_cache import read_first_stage_cache
from siampolar_lib.errors import UserError
from siampolar_lib.evaluation.selection import check_train_sequences, fold_rows
from siampolar_lib.io import sha256, write_text
from siampolar_lib.outputs import check_output_apart, output_lock
from siampolar_lib.splits import CV_FOLDS, REAL_VAL_SEQUENCES
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.engine import as_engine
from siampolar_lib.tracking.tracker import Tracker
from siampolar_lib.training.checkpoint import load_checkpoint, load_model, model_from_checkpoint
from siampolar_lib.training.train_refine import RefineConfig, check_first_stage_cache, train_refine

# The shipped stage's recipe (run r2, checkpoints/README.md "The refinement stage"): what a candidate changes. In
# fp32: r2 ran bf16 autocast on an AVX-512 BF16 CPU; where bf16 is emulated (AVX2) it is about 7x slower than fp32
# (train_refine.native_bf16), and a fixed precision keeps a cross-validation's numbers the same on every machine.
# A key added here must default to what runs before it did (real_first_p 0: synthetic first rays only): a fold's
# scores.json written before the key existed reads back as that default (`recorded_settings`).
SHIPPED_RECIPE = {"iters": 1500, "batch": 32, "lr": 1e-3, "warmup": 100, "refine_iters": 2, "refine_channels": 32,
                  "refine_size": 128, "seed": 2, "precision": "fp32", "real_first_p": 0.0, "real_first_cache": ""}
TRACKER_PREFIX = "tracker."  # a candidate setting `tracker.refine_passes=2` changes the tracker, not the stage
BOOTSTRAP = 2000  # resamples of the sequences for the noise columns (seed 0: the table is a function of the rows)
ROW_KEYS = ("JF_M", "J_M", "F_M", "box_iou", "fps", "lost", "frames")


@dataclass(frozen=True)
class CrossvalConfig:
    """One cross-validation: the first stage, the data roots, the candidates and where it all goes."""

    init_from: str  # a SiamPolar checkpoint; its first stage is frozen (a stage it has is trained further)
    data: tuple[str, ...]  # DAVIS roots holding the folds' sequences (and any other training sequences)
    out: str  # the cross-validation's folder (new, or one to resume with the same settings)
    candidates: tuple[tuple[str, tuple[tuple[str, object], ...]], ...] = (("shipped", ()),)  # (name, settings)
    folds: tuple[tuple[str, ...], ...] = CV_FOLDS  # the folds' sequence names
    only_folds: tuple[int, ...] | None = None  # run these fold indices now (None: all); the rest wait
    max_frames: int | None = None  # score only the first N frames of each sequence (tests, quick looks)
    workers: int = 1  # the stage's DataLoader workers
    device: str = "auto"  # training device (scoring runs on the CPU's PyTorch engine, like the shipped figures)
    progress: bool = True  # print the stage's log rows and one line per scored fold

    def __post_init__(self):
        """Refuse what no cross-validation can use, in one line, before any work."""
        object.__setattr__(self, "data", tuple(str(d) for d in self.data))
        names = [c[0] for c in self.candidates]
        if not names or len(set(names)) != len(names):
            raise UserError(f"--candidate: give each candidate once, by a distinct name (got {names})")
        for name, settings in self.candidates:
            if not name.replace("-", "").replace("_", "").isalnum():
                raise UserError(f"--candidate {name!r}: a name is letters, digits, - and _ (it names a folder)")
            recipe(dict(settings))  # unknown or out-of-range settings refused here
            tracker_config(dict(settings))
        seen = [n for f in self.folds for n in f]
        if len(seen) != len(set(seen)) or not all(self.folds):
            raise UserError("folds must be non-empty and must not share a sequence")
        check_train_sequences(seen, "folds")
        bad = [k for k in self.only_folds or () if not 0 <= k < len(self.folds)]
        if bad:
            raise UserError(f"--folds {bad}: fold indices are 0..{len(self.folds) - 1}")


def recipe(settings: dict) -> dict:
    """SHIPPED_RECIPE with a candidate's stage settings (its `tracker.` ones aside), checked by RefineConfig itself."""
    settings = {k: v for k, v in settings.items() if not k.startswith(TRACKER_PREFIX)}
    unknown = sorted(set(settings) - set(SHIPPED_RECIPE))
    if unknown:
        raise UserError(f"--candidate: unknown setting {unknown[0]!r} (settings: {', '.join(SHIPPED_RECIPE)}, "
                        f"or {TRACKER_PREFIX}<a TrackerConfig field>)")
    merged = SHIPPED_RECIPE | settings
    RefineConfig(init_from="-", data=("-",), out="-", **merged)  # its __post_init__ refuses a bad value
    return merged


def tracker_config(settings: dict) -> dict:
    """A candidate's `tracker.` settings as {TrackerConfig field: value} ({} for the shipped tracker), checked."""
    changed = {k[len(TRACKER_PREFIX):]: v for k, v in settings.items() if k.startswith(TRACKER_PREFIX)}
    TrackerConfig.from_dict(changed, "--candidate")
    return changed


def parse_candidate(text: str) -> tuple[str, tuple[tuple[str, object], ...]]:
    """`name` or `name:key=value,key=value` (values typed as in SHIPPED_RECIPE, or `tracker.field=value` typed as in
    TrackerConfig) -> (name, settings)."""
    name, _, rest = text.partition(":")
    settings = []
    tracker_defaults = dataclasses.asdict(TrackerConfig())
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        key = key.strip().replace("-", "_")
        field = key[len(TRACKER_PREFIX):] if key.startswith(TRACKER_PREFIX) else None
        if not eq or (key not in SHIPPED_RECIPE and field not in tracker_defaults):
            raise UserError(f"--candidate {text!r}: expected name:key=value,... with keys {', '.join(SHIPPED_RECIPE)}"
                            f" or {TRACKER_PREFIX}<a TrackerConfig field>")
        kind = type(SHIPPED_RECIPE[key] if field is None else tracker_defaults[field])
        if kind is bool:  # bool("False") is True
            if value.strip().lower() not in ("true", "false"):
                raise UserError(f"--candidate {text!r}: {key}={value!r} is not true or false")
            settings.append((key, value.strip().lower() == "true"))
            continue
        try:
            settings.append((key, kind(value)))
        except ValueError:
            raise UserError(f"--candidate {text!r}: {key}={value!r} is not a {kind.__name__}") from None
    return name.strip(), tuple(settings)


def sequence_roots(data: Sequence[str]) -> dict[str, Path]:
    """{sequence: the DAVIS root holding it} over the data roots (the first root wins); val sequences refused."""
    roots: dict[str, Path] = {}
    for entry in data:
        p = Path(entry)
        if not p.is_dir():
            raise UserError(f"{p}: --data must be a DAVIS root here (a folder with JPEGImages/480p/)")
        for name in folder_sequences(p):
            roots.setdefault(name, p)
    leaked = sorted(set(roots) & set(REAL_VAL_SEQUENCES))
    if leaked:
        raise UserError(f"{leaked[0]} in {roots[leaked[0]]}: a DAVIS-2016 val sequence would be trained on; "
                        "cross-validate on train roots only")
    return roots


def recorded_settings(record: dict) -> dict:
    """A scores.json's settings, each SHIPPED_RECIPE key it predates filled with that key's default (what it ran)."""
    return SHIPPED_RECIPE | record["settings"]


def check_caches(cfg: CrossvalConfig) -> None:
    """UserError naming a candidate's first-stage cache that was not recorded from init_from's first stage."""
    paths = dict.fromkeys(recipe(dict(s))["real_first_cache"] for _, s in cfg.candidates)
    paths.pop("", None)
    if paths:
        model = load_model(cfg.init_from, device="cpu")
        for path in paths:
            check_first_stage_cache(read_first_stage_cache(path), model)


def run_fold(cfg: CrossvalConfig, name: str, settings: dict, k: int, roots: dict[str, Path],
             tracker: dict | None = None, home: str | None = None) -> dict:
    """Train (or resume) one candidate's stage without fold k and score fold k: the fold's scores.json contents.

    A fold read back must have been scored with the same settings and, for a candidate with a first-stage cache, a
    stage trained on the same cache file (its sha256): one candidate's folds never mix two caches of one name.
    tracker: the TrackerConfig fields the candidate changes; home: the candidate whose fold-k stage it scores (the
    first with its recipe: a candidate that changes only the tracker reuses that stage, trained once)."""
    tracker = tracker or {}
    folder = Path(cfg.out) / name / f"fold{k}"
    done, cache = folder / "scores.json", settings["real_first_cache"]
    if done.is_file():
        record = json.loads(done.read_text())
        if (recorded_settings(record) != settings or record.get("tracker", {}) != tracker
                or record["fold"] != list(cfg.folds[k])):
            raise UserError(f"{done}: scored with other settings ({record['settings']}); use another --out")
        if cache and record.get("real_first_cache_sha256") != sha256(cache):
            raise UserError(f"{done}: its stage was trained on another {cache} (rebuilt since?); use another --out")
        return record
    run = Path(cfg.out) / (home or name) / f"fold{k}" / "run"
    last = run / f"step{settings['iters']}.pt"
    if not last.is_file():
        resume = (run / "last.pt").is_file()
        train_refine(RefineConfig(init_from=cfg.init_from, data=cfg.data, out=str(run),
                                  exclude_sequences=cfg.folds[k], ckpt_every=500, log_every=50, workers=cfg.workers,
                                  device=cfg.device, progress=cfg.progress, resume=resume, **settings))
    stage = load_checkpoint(last)
    engine = as_engine(model_from_checkpoint(stage, last, device="cpu"))
    t0, rows, tracker_cfg = time.time(), {}, TrackerConfig.from_dict(tracker)
    for root in dict.fromkeys(roots[n] for n in cfg.folds[k]):
        names = [n for n in cfg.folds[k] if roots[n] == root]
        found = fold_rows(lambda _n, _gt: Tracker(engine, tracker_cfg), root, names, cfg.max_frames)
        rows |= {n: {key: float(r[key]) for key in ROW_KEYS} for n, r in found.items()}
    record = {"candidate": name, "settings": settings, "tracker": tracker, "fold": list(cfg.folds[k]),
              "stage": str(last), "stage_sha256": sha256(last),
              "real_first_cache_sha256": stage["meta"].get("real_first_cache_sha256"),
              "max_frames": cfg.max_frames, "score_seconds": round(time.time() - t0), "rows": rows}
    write_text(done, json.dumps(record, indent=1) + "\n")
    return record


def run_crossval(cfg: CrossvalConfig) -> dict:
    """Every (candidate, fold) of cfg trained and scored (or read back); writes and returns `summarise`'s table."""
    roots = sequence_roots(cfg.data)
    missing = [n for f in cfg.folds for n in f if n not in roots]
    if missing:
        raise UserError(f"--data: no root holds the fold sequence {missing[0]} (nor {len(missing) - 1} others)")
    out = Path(cfg.out)
    check_output_apart(out, {"--init-from": cfg.init_from, **{"--data": d for d in cfg.data}})
    check_caches(cfg)
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        records = []
        homes: dict[str, str] = {}  # a stage recipe (as JSON) -> the first candidate with it
        for name, settings in cfg.candidates:
            stage = recipe(dict(settings))
            home = homes.setdefault(json.dumps(stage, sort_keys=True), name)
            for k in range(len(cfg.folds)):
                if cfg.only_folds is None or k in cfg.only_folds:
                    records.append(run_fold(cfg, name, stage, k, roots, tracker_config(dict(settings)), home))
                    if cfg.progress:
                        s = fold_mean(records[-1]["rows"])
                        print(f"{name} fold {k}: J&F {100 * s['JF_M']:.1f} J_M {100 * s['J_M']:.1f} "
                              f"F_M {100 * s['F_M']:.1f}", flush=True)
                    write_tables(out, cfg)
        return write_tables(out, cfg)


def fold_mean(rows: dict[str, dict]) -> dict[str, float]:
    """Mean J&F, J_M, F_M over a fold's sequences."""
    return {key: float(np.mean([r[key] for r in rows.values()])) for key in ("JF_M", "J_M", "F_M")}


def read_records(out: Path, cfg: CrossvalConfig) -> dict[str, list[dict | None]]:
    """{candidate: [fold k's scores.json or None if not scored yet]} as on disk."""
    found = {}
    for name, _ in cfg.candidates:
        paths = [out / name / f"fold{k}" / "scores.json" for k in range(len(cfg.folds))]
        found[name] = [json.loads(p.read_text()) if p.is_file() else None for p in paths]
    return found


def bootstrap_sd(values: np.ndarray, draws: int = BOOTSTRAP) -> float:
    """sd of the mean of `values` (one per sequence) over resamples of the sequences with replacement (seed 0)."""
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(values), size=(draws, len(values)))
    return float(values[idx].mean(axis=1).std())


def summarise(records: dict[str, list[dict | None]]) -> list[dict]:
    """One row per candidate over its scored folds: mean over sequences, per fold, and the bootstrap noise."""
    table, base = [], None
    for name, folds in records.items():
        rows = {n: r for rec in folds if rec for n, r in rec["rows"].items()}
        if not rows:
            continue
        names = sorted(rows)
        jf = np.array([rows[n]["JF_M"] for n in names])
        entry = {"candidate": name, "settings": next(recorded_settings(rec) for rec in folds if rec),
                 "tracker": next(rec.get("tracker", {}) for rec in folds if rec),
                 "folds_scored": sum(rec is not None for rec in folds), "sequences": len(names),
                 "JF_M": float(jf.mean()), "J_M": float(np.mean([rows[n]["J_M"] for n in names])),
                 "F_M": float(np.mean([rows[n]["F_M"] for n in names])),
                 "fps": float(np.mean([rows[n]["fps"] for n in names])),
                 "per_fold_JF_M": [fold_mean(rec["rows"])["JF_M"] if rec else None for rec in folds],
                 "sd_JF_M": bootstrap_sd(jf), "per_sequence_JF_M": dict(zip(names, jf.tolist()))}
        if base is None:
            base = entry
        common = sorted(set(names) & set(base["per_sequence_JF_M"]))
        diff = np.array([entry["per_sequence_JF_M"][n] - base["per_sequence_JF_M"][n] for n in common])
        entry["diff_vs_first"] = float(diff.mean()) if len(diff) else float("nan")
        entry["sd_diff_vs_first"] = bootstrap_sd(diff) if len(diff) else float("nan")
        table.append(entry)
    return table


def format_table(table: list[dict]) -> str:
    """The summary as a Markdown table (percent, one decimal; the per-fold J&F in fold order)."""
    def pct(x):
        return "-" if x is None else f"{100 * x:.1f}"

    lines = ["| candidate | settings | folds | J&F (sd) | J_M | F_M | J&F per fold | vs first (sd, paired) | fps |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in table:
        changed = {k: v for k, v in e["settings"].items() if SHIPPED_RECIPE.get(k) != v}
        changed |= {f"{TRACKER_PREFIX}{k}": v for k, v in e.get("tracker", {}).items()}
        lines.append(f"| {e['candidate']} | {', '.join(f'{k}={v}' for k, v in changed.items()) or 'shipped recipe'} "
                     f"| {e['folds_scored']} | {pct(e['JF_M'])} ({pct(e['sd_JF_M'])}) | {pct(e['J_M'])} | "
                     f"{pct(e['F_M'])} | {' / '.join(pct(x) for x in e['per_fold_JF_M'])} | "
                     f"{100 * e['diff_vs_first']:+.1f} ({pct(e['sd_diff_vs_first'])}) | {e['fps']:.1f} |")
    return "\n".join(lines) + "\n"


def write_tables(out: Path, cfg: CrossvalConfig) -> dict:
    """crossval.json (settings, folds, table) and crossval.md from what is on disk now; returns the JSON's dict."""
    table = summarise(read_records(out, cfg))
    result = {"init_from": cfg.init_from, "init_from_sha256": sha256(cfg.init_from), "folds": [list(f) for f in
              cfg.folds], "recipe": SHIPPED_RECIPE, "max_frames": cfg.max_frames, "table": table}
    write_text(out / "crossval.json", json.dumps(result, indent=1) + "\n")
    write_text(out / "crossval.md", format_table(table))
    return result
