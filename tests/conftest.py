"""Shared fixtures: the real DAVIS sample (by path, never copied) and a small synthetic DAVIS set."""
from __future__ import annotations

from pathlib import Path

import pytest

from siampolar_lib.paths import SHARED_DATA, davis_available, davis_root


@pytest.fixture(scope="session")
def real_davis() -> Path:
    """The real DAVIS-2016 sample (15 val sequences); skipped with a reason where it is absent."""
    root = davis_root() if davis_available() else SHARED_DATA / "DAVIS"
    if not davis_available(root):
        pytest.skip(f"no real DAVIS folder at {root} (set SIAMPOLAR_DAVIS_ROOT)")
    return root


@pytest.fixture(scope="session")
def real_davis_train() -> Path:
    """The real DAVIS-2016 train sample (6 sequences, surf's last mask empty)."""
    root = SHARED_DATA / "davis_train_sample"
    if not davis_available(root):
        pytest.skip(f"no DAVIS train sample at {root}")
    return root


@pytest.fixture(scope="session")
def osvos_results() -> Path:
    """OSVOS predictions for the 15 real sequences (palette PNGs: binarise with > 0)."""
    root = SHARED_DATA / "davis_osvos_results" / "480p"
    if not root.is_dir():
        pytest.skip(f"no OSVOS results at {root}")
    return root


@pytest.fixture(scope="session")
def synthetic_davis(tmp_path_factory) -> Path:
    """A small synthetic DAVIS-layout folder: 4 sequences of 12 frames, seed 0."""
    from siampolar_lib.data.synthetic import make_synthetic_davis

    out = tmp_path_factory.mktemp("synthetic") / "DAVIS"
    make_synthetic_davis(out, sequences=4, frames=12, seed=0)
    return out


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory):
    """Exported ONNX graphs go to this session's temp folder (tests never reuse another run's exports)."""
    import os

    old = os.environ.get("SIAMPOLAR_ONNX_CACHE")
    folder = tmp_path_factory.mktemp("onnx_cache")
    os.environ["SIAMPOLAR_ONNX_CACHE"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("SIAMPOLAR_ONNX_CACHE", None)
    else:
        os.environ["SIAMPOLAR_ONNX_CACHE"] = old
