"""Results per DAVIS attribute (occlusion, fast motion, deformation, ...), as the DAVIS-2016 paper reports them.

A DAVIS root's `Annotations/db_info.yml` lists each sequence's attributes; a sequence scores for every attribute it
has, and an attribute's J&F, J_M and F_M are the means over the sequences that have it (so a lever's gain or loss
can be named: "+3 on occlusion, -1 on fast motion").

    attrs = read_attributes(root)            {sequence: ("FM", "OCC", ...)}; {} when the root has no db_info.yml
    table = attribute_table(rows, attrs)     {attribute: {"sequences", "JF_M", "J_M", "F_M"}} over rows' sequences
    print(format_attribute_table(table))
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import yaml

from siampolar_lib.errors import UserError

DB_INFO = Path("Annotations") / "db_info.yml"
# The DAVIS-2016 paper's attribute codes (Perazzi et al., CVPR 2016, Table 1); db_info.yml also lists ROT.
ATTRIBUTE_NAMES = {
    "AC": "appearance change", "BC": "background clutter", "CS": "camera shake", "DB": "dynamic background",
    "DEF": "deformation", "EA": "edge ambiguity", "FM": "fast motion", "HO": "heterogeneous object",
    "IO": "interacting objects", "LR": "low resolution", "MB": "motion blur", "OCC": "occlusion",
    "OV": "out of view", "SC": "shape complexity", "SV": "scale variation", "ROT": "ROT (in db_info.yml)",
}


def read_attributes(root: str | os.PathLike) -> dict[str, tuple[str, ...]]:
    """{sequence: its attribute codes} from root's Annotations/db_info.yml; {} when the root has none."""
    path = Path(root) / DB_INFO
    if not path.is_file():
        return {}
    try:
        info = yaml.safe_load(path.read_text()) or {}
        seqs = info["sequences"]
        return {str(s["name"]): tuple(str(a) for a in s.get("attributes") or ()) for s in seqs}
    except (yaml.YAMLError, KeyError, TypeError, AttributeError) as err:
        raise UserError(f"{path}: not a DAVIS db_info.yml (expected sequences: [{{name, attributes}}]; "
                        f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None


def attribute_table(rows: dict[str, dict], attrs: dict[str, tuple[str, ...]]) -> dict[str, dict]:
    """{attribute: {"sequences": n, "JF_M", "J_M", "F_M": means over rows' sequences having it}}, by code.

    rows: {sequence: a DAVIS row with J_M and F_M (and JF_M, else their mean)}; sequences without attributes
    (or not in attrs) count for none. Fractions 0..1, as the rows.
    """
    table: dict[str, dict] = {}
    for code in sorted({a for name in rows for a in attrs.get(name, ())}):
        having = [rows[n] for n in rows if code in attrs.get(n, ())]
        j = np.array([r["J_M"] for r in having], dtype=float)
        f = np.array([r["F_M"] for r in having], dtype=float)
        jf = np.array([r.get("JF_M", (r["J_M"] + r["F_M"]) / 2) for r in having], dtype=float)
        table[code] = {"sequences": len(having), "JF_M": float(jf.mean()), "J_M": float(j.mean()),
                       "F_M": float(f.mean())}
    return table


def format_attribute_table(table: dict[str, dict]) -> str:
    """Plain text, one line per attribute: code, name, number of sequences, J&F, J_M, F_M in percent."""
    lines = [f"{'attribute':<26} {'seqs':>4} {'J&F':>6} {'J_M':>6} {'F_M':>6}"]
    for code, r in table.items():
        label = f"{code} {ATTRIBUTE_NAMES.get(code, '')}".strip()[:26]
        lines.append(f"{label:<26} {r['sequences']:>4d} {100 * r['JF_M']:>6.1f} {100 * r['J_M']:>6.1f} "
                     f"{100 * r['F_M']:>6.1f}")
    return "\n".join(lines)
