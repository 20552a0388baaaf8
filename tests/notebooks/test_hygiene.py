"""Notebooks are product: committed with clean outputs, in order, with no machine paths or errors, and they follow
the course conventions: `NN_` / `NNb_` / `NNc_` names, a `# Self-check` cell near the end, and a solution for every
exercise in `notebooks/solutions/<stem>_solutions.ipynb`. A fill-in exercise's check cell, whose committed output shows
the unfilled skeleton failing, starts with `# NBVAL_RAISES_EXCEPTION`: the one place an error output is committed."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
SOLUTIONS = sorted((NOTEBOOK_DIR / "solutions").glob("*.ipynb"))
ABS_PATH = re.compile(r"(?<![\w.:/~])/(?:root|home|work|tmp|Users|opt)/[\w.-]+")
NAME = re.compile(r"\d\d[a-z]?_[a-z0-9_]+\.ipynb$")
RAISES = "# NBVAL_RAISES_EXCEPTION"  # nbval's marker of a cell expected to raise (an unfilled exercise's check)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
EXERCISE_ITEM = re.compile(r"^(\d+)\.\s", re.MULTILINE)  # a top-level numbered item: "1. ..." at a line start
EXERCISE_HEADING = re.compile(r"^### Exercise (\d+)\b")


def source(cell: dict) -> str:
    return "".join(cell["source"])


def load(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def check_outputs(cells: list[dict]) -> None:
    """Every code cell executed in order from a fresh kernel; no machine path in an output; no error or traceback,
    except the error of a cell marked `# NBVAL_RAISES_EXCEPTION`, which it must show (without a machine path)."""
    code = [c for c in cells if c["cell_type"] == "code" and source(c).strip()]
    assert code, "no code cells"
    counts = [c.get("execution_count") for c in code]
    assert all(isinstance(n, int) for n in counts), "every code cell is executed and committed with outputs"
    assert counts == sorted(counts) and counts[0] == 1, f"cells run in order from a fresh kernel: {counts[:8]}"
    for c in code:
        raises = source(c).startswith(RAISES)
        errors = [out for out in c.get("outputs", []) if out.get("output_type") == "error"]
        assert len(errors) == raises, (f"a cell marked {RAISES} shows its error" if raises
                                       else f"error output committed: {errors[0].get('ename')}")
        for out in errors:
            m = ABS_PATH.search(ANSI.sub("", "\n".join(out.get("traceback", []))))
            assert m is None, f"an expected error's traceback shows a machine path: {m.group(0) if m else ''}"
        for out in c.get("outputs", []):
            text = json.dumps(out.get("text", "")) + json.dumps(out.get("data", {}).get("text/plain", ""))
            m = ABS_PATH.search(text)
            assert m is None, f"an output shows a machine path: {m.group(0) if m else ''}"
            if out.get("name") == "stderr":
                assert "Traceback" not in "".join(out.get("text", "")), "a traceback in stderr"


def exercise_numbers(cells: list[dict]) -> list[int]:
    """The numbers of the items in the markdown cell that starts with `## Exercises` ([] when there is none)."""
    cells = [source(c) for c in cells if c["cell_type"] == "markdown" and source(c).lstrip().startswith("## Exercises")]
    assert len(cells) <= 1, "one `## Exercises` cell per notebook"
    return [int(n) for n in EXERCISE_ITEM.findall(cells[0])] if cells else []


def solutions_path(nb_path: Path) -> Path:
    return NOTEBOOK_DIR / "solutions" / f"{nb_path.stem}_solutions.ipynb"


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 1


def test_naming_rule():
    """The rule itself: NN_ and NNb_ (or NNc_, ...) pass; other names fail."""
    assert NAME.match("04b_network_by_hand.ipynb") and NAME.match("00_start_here.ipynb")
    assert NAME.match("06c_refinement_stage.ipynb")
    assert not NAME.match("4_x.ipynb") and not NAME.match("04c-x.ipynb") and not NAME.match("04_Network.ipynb")


def test_exercise_counting():
    """The counter sees top-level items only (not indented sub-items or numbers inside a line)."""
    cells = [{"cell_type": "markdown", "source": "## Exercises\n\n1. a\n   2. not an item\n2. b, see 3. c\n10. d\n"}]
    assert exercise_numbers(cells) == [1, 2, 10]


def test_expected_errors_only_where_marked():
    """An error output passes only in a cell marked RAISES, which must show one, with no machine path in it."""
    err = {"output_type": "error", "ename": "AssertionError", "evalue": "x", "traceback": ["Cell In[1], line 2"]}
    cell = lambda src, outs: {"cell_type": "code", "source": src, "execution_count": 1, "outputs": outs}
    check_outputs([cell(RAISES + "\nassert False", [err])])
    for bad in (cell("assert False", [err]), cell(RAISES + "\nx = 1", []),
                cell(RAISES + "\nf()", [dict(err, traceback=["File \x1b[0;32m/work/x/lib.py:3"])])):
        with pytest.raises(AssertionError):
            check_outputs([bad])


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_hygiene(nb_path: Path):
    cells = load(nb_path)
    assert NAME.match(nb_path.name), "name notebooks NN_snake_case.ipynb or NNb_snake_case.ipynb"
    first = source(cells[0])
    assert cells[0]["cell_type"] == "markdown" and first.startswith("# "), "a title comes first"
    md = [source(c) for c in cells if c["cell_type"] == "markdown"]
    assert any(s.lstrip().startswith("## Recap") for s in md), "a Recap section is required"
    code = [c for c in cells if c["cell_type"] == "code" and source(c).strip()]
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in code), "a parameters cell"
    check_outputs(cells)


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_self_check_cell(nb_path: Path):
    """A code cell starting `# Self-check`, after the Recap, with 2-3 asserts a learner runs."""
    cells = load(nb_path)
    checks = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and source(c).startswith("# Self-check")]
    assert checks, "no code cell starting with `# Self-check`"
    recap = [i for i, c in enumerate(cells)
             if c["cell_type"] == "markdown" and source(c).lstrip().startswith("## Recap")]
    assert recap and checks[-1] > recap[0], "the self-check comes near the end, after the Recap"
    asserts = len(re.findall(r"^\s*assert\b", source(cells[checks[-1]]), re.MULTILINE))
    assert 2 <= asserts <= 3, f"a self-check holds 2-3 asserts, this one {asserts}"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_has_a_solution(nb_path: Path):
    """Exercises numbered 1..n; the solutions notebook has `### Exercise k` for each k, each with a code cell."""
    numbers = exercise_numbers(load(nb_path))
    if not numbers:
        return
    assert numbers == list(range(1, len(numbers) + 1)), f"exercises are numbered 1..n, got {numbers}"
    path = solutions_path(nb_path)
    assert path.is_file(), f"{len(numbers)} exercises but no solutions/{path.name}"
    cells = load(path)
    found = {}
    for i, c in enumerate(cells):
        m = EXERCISE_HEADING.match(source(c)) if c["cell_type"] == "markdown" else None
        if m:
            found[int(m.group(1))] = i
    assert sorted(found) == numbers, f"solutions for exercises {sorted(found)}, the notebook has {numbers}"
    starts = sorted(found.values()) + [len(cells)]
    for k, i in found.items():
        section = cells[i + 1: starts[starts.index(i) + 1]]  # up to the next exercise heading
        assert any(c["cell_type"] == "code" and source(c).strip() for c in section), f"### Exercise {k}: no code cell"


def test_solutions_belong_to_notebooks():
    stems = {p.stem for p in NOTEBOOKS}
    for path in SOLUTIONS:
        assert path.stem.endswith("_solutions") and path.stem[: -len("_solutions")] in stems, path.name


@pytest.mark.parametrize("nb_path", SOLUTIONS, ids=lambda p: p.name)
def test_solutions_hygiene(nb_path: Path):
    """Solutions notebooks obey the same output rules: title first, executed in order, clean outputs."""
    cells = load(nb_path)
    assert cells[0]["cell_type"] == "markdown" and source(cells[0]).startswith("# "), "a title comes first"
    check_outputs(cells)
