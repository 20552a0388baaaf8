"""Helpers the command-line tests share: the one-line error contract, data_scripts/ tools imported as modules, and an
ONNX export that copies a checked one's graphs."""
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


def export_by_copy(monkeypatch, graphs: Path, names: tuple[str, ...] | None = None) -> list[str]:
    """Make the ONNX export copy the graphs named in `names` (default: all) from `graphs`, a checked export of the same
    weights for them, and trace the others as usual (tracing takes seconds to tens of seconds a graph). The rest of
    the export runs as it is, its check of every graph against PyTorch included, so a copy of another network's
    graph fails it. Returns the names of the graphs copied so far."""
    import shutil

    from siampolar_lib.tracking import onnx_export

    real, copied = onnx_export._export_graph, []

    def copy(module, args, path, input_names, output_names) -> None:
        name = Path(path).name
        if names is not None and name not in names:
            return real(module, args, path, input_names, output_names)
        shutil.copyfile(graphs / name, path)
        copied.append(name)

    monkeypatch.setattr(onnx_export, "_export_graph", copy)
    return copied
