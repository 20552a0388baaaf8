"""Results reporting shared by the scoring and benchmark CLIs: a text table, results.json and the official CSVs.

results.json schema (statistics as fractions 0..1, fps in frames per second or null):
    {"J_M", "J_O", "J_D", "F_M", "F_O", "F_D", "JF_M", "fps", "sequences": {seq: {same keys}},
     "run": {"method", "mode", "checkpoint", "checkpoint_sha256", "sequences", "frames", "version", ...},
     "attributes": {code: {"sequences", "JF_M", "J_M", "F_M"}}}   (when the DAVIS root has db_info.yml)
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Sequence

from siampolar_lib.evaluation.metrics import STAT_KEYS, stat_keys
from siampolar_lib.io import write_text

# davis2017-evaluation's CSV columns and the keys they come from (fractions; Recall = our O, Decay = our D)
GLOBAL_CSV_COLUMNS = (("J&F-Mean", "JF_M"), ("J-Mean", "J_M"), ("J-Recall", "J_O"), ("J-Decay", "J_D"),
                      ("F-Mean", "F_M"), ("F-Recall", "F_O"), ("F-Decay", "F_D"))


def _cell(key: str, value) -> str:
    """One table cell: statistics in percent with 1 decimal, fps with 1 decimal, '-' when absent."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = f"{value:.1f}" if key == "fps" else f"{100 * value:.1f}"
    return "0.0" if text == "-0.0" else text  # a tiny negative decay is not worth a sign


def format_table(rows: dict[str, dict],
                 columns: Sequence[str] = ("J_M", "J_O", "J_D", "F_M", "F_O", "F_D", "fps")) -> str:
    """Plain-text table, one line per row name: statistics in percent (1 decimal), fps (1 decimal)."""
    names = list(rows)
    first = max([len("sequence")] + [len(n) for n in names])
    widths = [max(6, len(c)) for c in columns]
    lines = [f"{'sequence':<{first}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(columns, widths))]
    for name in names:
        cells = [_cell(c, rows[name].get(c)) for c in columns]
        lines.append(f"{name:<{first}}  " + "  ".join(f"{v:>{w}}" for v, w in zip(cells, widths)))
    return "\n".join(lines)


def _clean(value):
    """A JSON-safe number: float, or None for a missing/NaN/inf value."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def write_results_json(path: str | os.PathLike, summary: dict, sequences: dict[str, dict],
                       run: dict | None = None, attributes: dict[str, dict] | None = None) -> Path:
    """Write results.json atomically (temp file + rename); only the statistics and fps are kept, missing -> null.

    run: what produced the results (method, mode, checkpoint and its sha256, sequences, frames, version),
    stored under "run" (plain JSON types). attributes: `evaluation.attributes.attribute_table`'s, if any.
    """
    path = Path(path)
    missing = [k for k in STAT_KEYS if k not in summary]
    if missing:
        raise ValueError(f"summary for {path} lacks {missing}")
    keys = stat_keys() + ("fps",)  # every registered measure's statistics
    doc = {k: _clean(summary.get(k)) for k in keys}
    doc["sequences"] = {s: {k: _clean(r.get(k)) for k in keys} for s, r in sequences.items()}
    if run is not None:
        doc["run"] = run
    if attributes:
        doc["attributes"] = {a: {k: _clean(v) if k != "sequences" else int(v) for k, v in r.items()}
                             for a, r in attributes.items()}
    return write_text(path, json.dumps(doc, indent=2, allow_nan=False) + "\n")


def object_name(name: str, row: dict) -> str:
    """The official per-object name `<sequence>_<object id>` of a row (object id 1 when the row has none)."""
    return f"{row.get('sequence', name)}_{int(row.get('object', 1))}"


def write_davis_csvs(folder: str | os.PathLike, rows: dict[str, dict], split: str = "val") -> tuple[Path, Path]:
    """Write davis2017-evaluation's `global_results-<split>.csv` and `per-sequence_results-<split>.csv`.

    rows: {name: row} with J_M, J_O, J_D, F_M, F_O, F_D, one row per object (a row's "sequence" and "object"
    keys name it `<sequence>_<object>`; without them `<name>_1`). Global values are means over the objects and
    J&F-Mean = (J-Mean + F-Mean) / 2, as the official tool; numbers are fractions with 3 decimals.
    """
    if not rows:
        raise ValueError("no rows to write")
    folder = Path(folder)
    means = {k: float(sum(r[k] for r in rows.values()) / len(rows)) for k in STAT_KEYS if k != "JF_M"}
    means["JF_M"] = (means["J_M"] + means["F_M"]) / 2
    header = ",".join(c for c, _ in GLOBAL_CSV_COLUMNS)
    values = ",".join(f"{means[k]:.3f}" for _, k in GLOBAL_CSV_COLUMNS)
    g = write_text(folder / f"global_results-{split}.csv", f"{header}\n{values}\n")
    lines = ["Sequence,J-Mean,F-Mean"] + [f"{object_name(n, r)},{r['J_M']:.3f},{r['F_M']:.3f}" for n, r in rows.items()]
    s = write_text(folder / f"per-sequence_results-{split}.csv", "\n".join(lines) + "\n")
    return g, s
