"""Notebooks are product: committed with clean outputs, in order, with no machine paths or errors."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
ABS_PATH = re.compile(r"(?<![\w.:/~])/(?:root|home|work|tmp|Users|opt)/[\w.-]+")


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 1


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_hygiene(nb_path: Path):
    nb = json.loads(nb_path.read_text())
    cells = nb["cells"]
    assert re.match(r"\d\d[a-z]?_[a-z0-9_]+\.ipynb$", nb_path.name), "name notebooks NN_snake_case.ipynb or NNb_snake_case.ipynb"
    first = "".join(cells[0]["source"])
    assert cells[0]["cell_type"] == "markdown" and first.startswith("# "), "a title comes first"
    md = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    assert any(s.lstrip().startswith("## Recap") for s in md), "a Recap section is required"
    code = [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    assert code, "no code cells"
    counts = [c.get("execution_count") for c in code]
    assert all(isinstance(n, int) for n in counts), "every code cell is executed and committed with outputs"
    assert counts == sorted(counts) and counts[0] == 1, f"cells run in order from a fresh kernel: {counts[:8]}"
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in code), "a parameters cell"
    for c in code:
        for out in c.get("outputs", []):
            assert out.get("output_type") != "error", f"error output committed: {out.get('ename')}"
            text = json.dumps(out.get("text", "")) + json.dumps(out.get("data", {}).get("text/plain", ""))
            m = ABS_PATH.search(text)
            assert m is None, f"an output shows a machine path: {m.group(0) if m else ''}"
            if out.get("name") == "stderr":
                assert "Traceback" not in "".join(out.get("text", "")), "a traceback in stderr"
