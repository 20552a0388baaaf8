"""siampolar-export-onnx owns its --out like every tool: apart from its inputs, locked while written, swapped in whole
(a failed or concurrent export leaves the earlier one as it was); its check frames come from the command (DAVIS)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import refused

from siampolar_lib.commands import export_onnx as export_cmd
from siampolar_lib.outputs import output_lock
from siampolar_lib.tracking import onnx_export
from siampolar_lib.tracking.onnx_export import META_NAME, SEARCH_NAME, TEMPLATE_NAME, sample_crops
from siampolar_lib.training.checkpoint import load_model


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under folder (relative) -> its bytes (None for a folder)."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in folder.rglob("*")}


@pytest.fixture
def earlier(tmp_path) -> Path:
    """An earlier export's folder (stand-in bytes: only its being kept whole is checked)."""
    out = tmp_path / "graphs"
    out.mkdir()
    for name in (TEMPLATE_NAME, SEARCH_NAME, META_NAME):
        (out / name).write_bytes(f"earlier {name}".encode())
    return out


def test_a_second_export_into_the_same_out_is_refused(tmp_path, ckpt, capsys):
    out = tmp_path / "graphs"
    with output_lock(out):  # the first run, as export_onnx holds it while it writes
        rc = export_cmd.main(["--checkpoint", str(ckpt), "--out", str(out)])
    refused(capsys, rc, str(out), "another run is writing")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [], "nothing staged, lock released"


def test_a_failed_export_leaves_the_earlier_one_whole(tmp_path, ckpt, earlier, capsys, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("exporter gave up")

    monkeypatch.setattr(onnx_export, "_export_graph", fail)
    before = snapshot(tmp_path)
    rc = export_cmd.main(["--checkpoint", str(ckpt), "--out", str(earlier), "--overwrite"])
    refused(capsys, rc, "torch.onnx.export failed", "exporter gave up")
    assert snapshot(tmp_path) == before, "the earlier export changed, or a temp or lock was left beside it"


def test_an_earlier_export_is_kept_without_overwrite(tmp_path, ckpt, earlier, capsys):
    before = snapshot(tmp_path)
    refused(capsys, export_cmd.main(["--checkpoint", str(ckpt), "--out", str(earlier)]), "earlier export",
            "--overwrite")
    assert snapshot(tmp_path) == before
    (earlier / "notes.txt").write_text("mine")  # a folder of the user's: refused even as an earlier export's
    before = snapshot(tmp_path)
    refused(capsys, export_cmd.main(["--checkpoint", str(ckpt), "--out", str(earlier)]), "not an export")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("where, relation", [("ckpt", "is"), ("ckpt folder", "contains"), ("in davis", "lies inside"),
                                             ("davis parent", "contains")])
def test_an_out_over_an_input_is_refused(tmp_path, ckpt, tiny_davis, capsys, where, relation):
    davis = Path(shutil.copytree(tiny_davis, tmp_path / "data" / "DAVIS"))
    (tmp_path / "ckpts").mkdir()
    mine = Path(shutil.copy(ckpt, tmp_path / "ckpts" / "quick.pt"))
    out = {"ckpt": mine, "ckpt folder": mine.parent, "in davis": davis / "onnx", "davis parent": davis.parent}[where]
    flag, src = ("--checkpoint", mine) if where.startswith("ckpt") else ("--davis-root", davis)
    before = snapshot(tmp_path)
    rc = export_cmd.main(["--checkpoint", str(mine), "--out", str(out), "--davis-root", str(davis), "--overwrite"])
    refused(capsys, rc, f"--out {out} {relation} the input {flag} {src}")
    assert snapshot(tmp_path) == before


def test_a_davis_root_that_is_not_davis_is_refused(tmp_path, ckpt, capsys):
    (tmp_path / "photos").mkdir()
    rc = export_cmd.main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "graphs"), "--davis-root",
                          str(tmp_path / "photos")])
    refused(capsys, rc, f"--davis-root {tmp_path / 'photos'}", "not a DAVIS folder")
    assert not (tmp_path / "graphs").exists()


def test_check_frames_come_from_the_first_davis_val_sequence(tiny_davis, ckpt):
    assert export_cmd.check_davis(str(tiny_davis)) == ("--davis-root", tiny_davis)
    check = export_cmd.davis_check_frames(tiny_davis)
    assert check.what.startswith("DAVIS ") and check.what.endswith("frames 0-1")
    assert [f.shape for f in check.frames] == [(64, 96, 3)] * 2 and check.box_xywh.shape == (4,)
    z, x, what = sample_crops(load_model(ckpt, device="cpu"), check)
    assert z.shape == (127, 127, 3) and x.shape == (255, 255, 3) and z.dtype == np.uint8 and what == check.what
