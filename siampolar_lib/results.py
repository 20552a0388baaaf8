"""Results reporting shared by the metrics and evaluation CLIs: a text table and the results.json writer.

results.json schema (statistics as fractions 0..1, fps in frames per second or null):
    {"J_M", "J_O", "J_D", "F_M", "F_O", "F_D", "JF_M", "fps", "sequences": {seq: {same keys}}}
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Sequence

from .io import write_text

STAT_KEYS = ("J_M", "J_O", "J_D", "F_M", "F_O", "F_D", "JF_M")
RESULT_KEYS = STAT_KEYS + ("fps",)


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


def write_results_json(path: str | os.PathLike, summary: dict, sequences: dict[str, dict]) -> Path:
    """Write results.json atomically (temp file + rename); only RESULT_KEYS are kept, missing ones -> null."""
    path = Path(path)
    missing = [k for k in STAT_KEYS if k not in summary]
    if missing:
        raise ValueError(f"summary for {path} lacks {missing}")
    doc = {k: _clean(summary.get(k)) for k in RESULT_KEYS}
    doc["sequences"] = {s: {k: _clean(r.get(k)) for k in RESULT_KEYS} for s, r in sequences.items()}
    return write_text(path, json.dumps(doc, indent=2, allow_nan=False) + "\n")
