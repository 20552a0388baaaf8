"""The one atomic writer and the mask PNG pair."""
from __future__ import annotations

import numpy as np
import pytest

from siampolar_lib.io import atomic_write, read_mask_png, write_bytes, write_mask_png


def test_atomic_write_replaces_only_on_success(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    write_bytes(path, b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert path.read_bytes() == b"old", "a failed write leaves the old file"
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.txt"], "and no temp file"
    with atomic_write(path) as tmp:
        assert tmp.parent == path.parent and tmp.suffix == ".txt"
        tmp.write_bytes(b"new")
    assert path.read_bytes() == b"new"


def test_atomic_folder_replaces_an_empty_folder_and_cleans_up(tmp_path):
    out = tmp_path / "set"
    out.mkdir()
    with pytest.raises(ValueError):
        with atomic_write(out, folder=True) as tmp:
            (tmp / "x").write_text("1")
            raise ValueError("stop")
    assert out.is_dir() and not any(out.iterdir()) and sorted(p.name for p in tmp_path.iterdir()) == ["set"]
    with atomic_write(out, folder=True) as tmp:
        (tmp / "x").write_text("1")
    assert (out / "x").read_text() == "1"


def test_mask_png_round_trip_and_errors(tmp_path):
    m = np.zeros((7, 9), bool)
    m[2:5, 3:8] = True
    path = write_mask_png(tmp_path / "m.png", m)
    assert np.array_equal(read_mask_png(path), m)
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_mask_png(tmp_path / "nope.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="junk.png"):
        read_mask_png(tmp_path / "junk.png")
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        write_mask_png(tmp_path / "bad.png", np.zeros((2, 2, 3)))
