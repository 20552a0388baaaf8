"""Helpers the command-line tests share: the one-line error contract, and data_scripts/ tools imported as modules."""
from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def script(name: str):
    """Import a data_scripts/ tool as a module (they are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "data_scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def refused(capsys, rc: int, *needles: str) -> str:
    """Assert exit status 2 and ONE stderr line `error: ...` holding every needle; return that line."""
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "np.float64" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]
