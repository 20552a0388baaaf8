"""The library's shape: no import cycle, no upward import, small functions and modules, light command lines."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "siampolar_lib"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400

# What each layer may import from the library (prefixes of module names below siampolar_lib). `apps` (the jobs the
# commands and the demo notebook run) and `commands` (with `commands.cli`, the command line's error contract) may
# import anything below them; nothing imports a command.
ALLOWED = {
    "geometry": ("geometry",),
    "errors": (),
    "io": ("errors",),
    "outputs": ("errors", "io"),
    "evaluation.metrics": ("geometry", "errors"),
    "models": ("geometry", "models"),
    "data": ("data", "geometry", "io", "video", "errors", "outputs", "paths"),
    "training": ("training", "data", "models", "geometry", "device", "errors", "io", "outputs", "splits", "paths"),
    # training.targets: the grid_bound baseline is defined by the training targets' assignment (tracking.baselines);
    # outputs: the ONNX export and cache own their folders like every other output (locks, staging, dead temps)
    "tracking": ("tracking", "geometry", "models", "device", "errors", "io", "outputs", "training.targets"),
    # video: scoring reads a folder's mask PNGs in frame order (video.frame_order), as tracking read the frames;
    # training.train_refine: cross-validation (evaluation.crossval) trains each fold's stage before scoring it;
    # data.first_stage_cache: the tracker's first-stage outputs are recorded into the file the stage's samples read
    "evaluation": ("evaluation", "tracking", "geometry", "models", "training.checkpoint", "training.train_refine",
                   "data.davis", "data.first_stage_cache", "device", "errors", "io", "outputs", "paths", "splits",
                   "video"),
}
ENTRY_POINTS = ("commands",)
# The floors README's "Layout of the library" lists, bottom up: a module imports from its own floor or below.
FLOORS = (("errors", "io", "outputs", "device", "paths", "splits", "video", "video_writers"), ("geometry",),
          ("models",), ("data",), ("training",), ("tracking",), ("evaluation",), ("viz", "exercises"), ("apps",),
          ENTRY_POINTS)

def module_name(path: Path) -> str:
    """siampolar_lib/a/b.py -> 'a.b'; a package's __init__.py -> its folder's name."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def library_imports(path: Path) -> set[str]:
    """Modules of ours that a file imports anywhere (top level or inside functions), as names below the package."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("siampolar_lib"):
                target = node.module[len("siampolar_lib."):] if node.module != "siampolar_lib" else ""
            else:
                continue
            for alias in node.names:  # `from . import x` names a module
                sub = f"{target}.{alias.name}" if target else alias.name
                found.add(sub if (PACKAGE / (sub.replace(".", "/") + ".py")).is_file() else target)
        elif isinstance(node, ast.Import):
            found |= {a.name[len("siampolar_lib."):] for a in node.names if a.name.startswith("siampolar_lib.")}
    return {m for m in found if m and m != name}


def graph() -> dict[str, set[str]]:
    return {module_name(p): library_imports(p) for p in PACKAGE.rglob("*.py")}


def _layer(name: str) -> str | None:
    for layer in sorted(ALLOWED, key=len, reverse=True):
        if name == layer or name.startswith(layer + "."):
            return layer
    return None


def test_no_import_cycle():
    g = graph()
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(g.get(node, ())):
            nxt = nxt if nxt in g else nxt.rsplit(".", 1)[0]
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join(trail[trail.index(nxt):] + [nxt]))
            if nxt in g and state.get(nxt) is None:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node, [node])


def test_no_upward_import():
    bad = []
    for name, imports in sorted(graph().items()):
        for target in sorted(imports):
            if target.split(".")[0] in ENTRY_POINTS and name.split(".")[0] != target.split(".")[0]:
                bad.append(f"{name} imports the entry point {target}")
            layer = _layer(name)
            if layer is None or not target:
                continue
            if not any(target == a or target.startswith(a + ".") for a in ALLOWED[layer]):
                bad.append(f"{name} ({layer}) imports {target}")
    assert not bad, "\n".join(bad)


def floor(name: str) -> int:
    """The floor of a module below siampolar_lib ('' is the package itself, above everything)."""
    top = name.split(".")[0]
    return next((i for i, f in enumerate(FLOORS) if top in f), len(FLOORS))


def test_every_module_has_a_floor_and_imports_none_above_it():
    bad = []
    for name, imports in sorted(graph().items()):
        if name and floor(name) == len(FLOORS):
            bad.append(f"{name} is on no floor: add it to FLOORS and to README's layout")
        bad += [f"{name} (floor {floor(name)}) imports {t} (floor {floor(t)})" for t in sorted(imports)
                if t and floor(t) > floor(name)]
    assert not bad, "\n".join(bad)


def test_functions_and_modules_are_small():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES:
            long.append(f"{path.relative_to(PACKAGE)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}: {n} lines")
    assert not long, "\n".join(long)


def test_layout_checks_catch_a_cycle_and_an_upward_import(tmp_path, monkeypatch):
    """The checks above can fail: a fake package with both faults is caught."""
    fake = tmp_path / "siampolar_lib"
    (fake / "geometry").mkdir(parents=True)
    (fake / "geometry" / "__init__.py").write_text("")
    (fake / "geometry" / "a.py").write_text("from ..models import b\n")
    (fake / "models").mkdir()
    (fake / "models" / "__init__.py").write_text("")
    (fake / "models" / "b.py").write_text("from siampolar_lib.geometry import a\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    with pytest.raises(AssertionError, match="geometry.a .geometry. imports models.b"):
        test_no_upward_import()
    with pytest.raises(pytest.fail.Exception, match="import cycle"):
        test_no_import_cycle()


@pytest.mark.parametrize("module", ["siampolar_lib.evaluation.folders", "siampolar_lib.evaluation.metrics",
                                    "siampolar_lib.geometry.polar", "siampolar_lib.geometry.crops"])
def test_torch_free_modules_do_not_import_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_scoring_help_does_not_import_torch():
    code = ("import sys, runpy\nsys.argv = ['siampolar-score', '--help']\n"
            "try:\n    runpy.run_module('siampolar_lib.commands.score', run_name='__main__')\n"
            "except SystemExit:\n    pass\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--gt" in out.stdout and out.stdout.strip().endswith("False")


def test_command_lines_live_in_commands_only():
    """No `main()`, argparse or `__main__` block under the library floors: each tool is one module of commands/."""
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        if name.split(".")[0] in ENTRY_POINTS:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == "main" and node in tree.body:
                bad.append(f"{name}: def main")
            elif isinstance(node, (ast.Import, ast.ImportFrom)) and "argparse" in ast.unparse(node):
                bad.append(f"{name}: imports argparse")
            elif isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
                bad.append(f"{name}: an `if __name__ == '__main__'` block")
    assert not bad, "\n".join(bad)


def test_ruff_is_clean():
    """The style the repository keeps (ruff.toml: pyflakes, pycodestyle at 120 columns, sorted absolute imports)."""
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.is_file():
        pytest.skip(f"ruff is not installed beside {sys.executable} (pip install -e '.[dev]')")
    out = subprocess.run([str(ruff), "check", "--no-cache", str(PACKAGE.parent)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-1000:]


TESTS = PACKAGE.parent / "tests"
# Modules tested inside another module's tests or a contract suite (tests/ mirrors the package otherwise: the tests of
# siampolar_lib/a/b.py are tests/a/test_b.py). Each entry names the files a reader opens to find them.
TESTED_IN = {
    "commands.cli": ("contracts/test_cli_errors.py",),
    "commands.crossval": ("evaluation/test_crossval.py",),
    "commands.demo": ("apps/test_demo.py", "contracts/test_cli_errors.py"),
    "commands.download": ("data/test_download.py",),
    "commands.error_split": ("evaluation/test_error_split.py", "contracts/test_refused_inputs.py"),
    "commands.evaluate": ("evaluation/test_evaluate.py",),
    "commands.score": ("evaluation/test_metrics.py", "contracts/test_refused_inputs.py"),
    "commands.track": ("apps/test_track_video.py",),
    "commands.train": ("training/test_train.py", "training/test_config.py"),
    "commands.train_flags": ("training/test_config.py",),
    "commands.train_refine": ("training/test_train_refine.py",),
    "data.augment": ("data/test_pairs.py",),
    "data.refine_samples": ("models/test_refine.py",),
    "device": ("training/test_train.py",),
    "errors": ("contracts/test_cli_errors.py",),
    "evaluation.folders": ("evaluation/test_metrics.py",),
    "evaluation.report": ("evaluation/test_metrics.py", "evaluation/test_evaluate.py"),
    "evaluation.sequence": ("evaluation/test_evaluate.py",),
    # the checks of the notebooks' fill-in exercises, a module per notebook, are tested together
    "exercises.boundaries": ("test_exercises.py",),
    "exercises.boxes": ("test_exercises.py",),
    "exercises.common": ("test_exercises.py",),
    "exercises.crops": ("test_exercises.py",),
    "exercises.losses": ("test_exercises.py",),
    "exercises.polygons": ("test_exercises.py",),
    "exercises.refinement": ("test_exercises.py",),
    "exercises.sgd": ("test_exercises.py",),
    "geometry.boxes": ("geometry/test_polar.py", "tracking/test_tracker.py"),
    "geometry.crops": ("models/test_siampolar.py", "training/test_targets.py"),
    "models.config": ("contracts/test_config_ranges.py", "models/test_siampolar.py"),
    "models.grid": ("training/test_targets.py",),
    "models.head": ("models/test_siampolar.py",),
    "models.neck": ("models/test_siampolar.py",),
    "outputs": ("contracts/test_outputs_apart.py",),
    "paths": ("training/test_checkpoint.py",),
    "tracking.onnx_export": ("tracking/test_engine.py", "commands/test_export_onnx.py"),
    "tracking.onnx_graphs": ("tracking/test_engine.py",),
    "training.log": ("training/test_train.py", "training/test_losses.py"),
    "training.schedule": ("training/test_train.py",),
    "video_writers": ("test_video.py",),
}


def test_tests_mirror_the_package():
    """Every library module has its test module at the mirrored path, or TESTED_IN names existing files for it."""
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        name = module_name(path)
        mirrored = TESTS / path.parent.relative_to(PACKAGE) / f"test_{path.name}"
        homes = [TESTS / f for f in TESTED_IN.get(name, ())]
        if mirrored.is_file():
            if name in TESTED_IN:
                bad.append(f"{name}: has {mirrored.relative_to(TESTS)}; drop it from TESTED_IN")
        elif not homes:
            bad.append(f"{name}: no tests/{mirrored.relative_to(TESTS)} and no TESTED_IN entry")
        bad += [f"{name}: TESTED_IN names {h.relative_to(TESTS)}, which does not exist"
                for h in homes if not h.is_file()]
    assert not bad, "\n".join(bad)


def test_every_command_is_installed_and_in_the_readme_table():
    """Each commands/ module with a main is a [project.scripts] entry, and README's table lists each entry."""
    import tomllib

    scripts = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]["scripts"]
    targets = {v.split(":")[0] for v in scripts.values()}
    with_main = {f"siampolar_lib.commands.{p.stem}" for p in (PACKAGE / "commands").glob("*.py")
                 if "\ndef main(" in p.read_text()}
    assert with_main == targets, f"commands with a main but no script: {sorted(with_main - targets)}"
    readme = (PACKAGE.parent / "README.md").read_text()
    for name, target in scripts.items():
        assert f"| `{name}` | `python -m {target.split(':')[0]}`" in readme, f"README's command table lacks {name}"
    words = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
    assert f"adds {words[len(scripts) - 1]} commands" in readme
