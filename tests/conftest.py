"""Shared fixtures: the real DAVIS sample (by path, never copied), small synthetic DAVIS sets, frames, a seeded
untrained network with its checkpoint and its ONNX export (made once a run).

The small ones are module-scoped: each test module gets its own copy, so a module may damage its copy.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from siampolar_lib.paths import SHARED_DATA, davis_available, davis_root

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Under pytest-xdist each worker takes one core: with PyTorch's default of one thread per core, two workers would
    # put four busy threads on two cores. Subprocesses a test starts inherit the setting.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)


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
    """Exported ONNX graphs go to this run's temp folder (tests never reuse another run's exports).

    Under pytest-xdist both workers share one folder beside their own temp folders, so a network exported for one
    (`quick_export`) is not exported again for the other (tracking.onnx_cache takes concurrent users).
    """
    old = os.environ.get("SIAMPOLAR_ONNX_CACHE")
    if os.environ.get("PYTEST_XDIST_WORKER"):  # basetemp is <the run's temp folder>/popen-gwN
        folder = tmp_path_factory.getbasetemp().parent / "onnx_cache"
        folder.mkdir(mode=0o700, exist_ok=True)
    else:
        folder = tmp_path_factory.mktemp("onnx_cache")
    os.environ["SIAMPOLAR_ONNX_CACHE"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("SIAMPOLAR_ONNX_CACHE", None)
    else:
        os.environ["SIAMPOLAR_ONNX_CACHE"] = old


@pytest.fixture(scope="session")
def quick_net():
    """An untrained quick network with the weights torch seed 0 gives, in eval mode (plumbing, not accuracy); the
    global RNG is left as it was. Every seed-0 quick network has these weights, so the same ONNX export
    (`quick_export`). Tests read it (save it, track with it), never change it."""
    from siampolar_lib import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build_model("quick", pretrained=False).eval()


@pytest.fixture(scope="session")
def quick_export(quick_net, onnx_cache) -> Path:
    """quick_net's checked ONNX export in the run's cache: made once a run (tens of seconds), by the first test, or
    tool a test runs, that needs it; a checkpoint of quick_net (`ckpt`) tracked with onnxruntime finds it there."""
    from siampolar_lib.tracking.onnx_cache import cached_export

    return cached_export(quick_net)


@pytest.fixture(scope="module")
def tiny_davis(tmp_path_factory) -> Path:
    """2 synthetic sequences of 5 frames, 96x64."""
    from siampolar_lib.data.synthetic import make_synthetic_davis

    return make_synthetic_davis(tmp_path_factory.mktemp("d") / "DAVIS", sequences=2, frames=5, seed=0, size=(96, 64))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, quick_net) -> Path:
    """An untrained quick network as a checkpoint (plumbing, not accuracy): quick_net's weights, whose ONNX export
    the run makes once (`quick_export`)."""
    from siampolar_lib.training.checkpoint import save_checkpoint

    return save_checkpoint(tmp_path_factory.mktemp("c") / "quick.pt", quick_net)


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory) -> Path:
    """A folder of 4 JPEG frames, 160x120, a bright disk moving right."""
    d = tmp_path_factory.mktemp("frames") / "clip"
    d.mkdir()
    rng = np.random.default_rng(0)
    bg = rng.integers(40, 120, (120, 160, 3), dtype=np.uint8)
    for i in range(4):
        f = bg.copy()
        cv2.circle(f, (50 + 5 * i, 60), 18, (240, 240, 240), -1)
        cv2.imwrite(str(d / f"{i:05d}.jpg"), f)
    return d


@pytest.fixture(scope="session")
def capstone_davis(tmp_path_factory) -> Path:
    """4 synthetic sequences of 6 frames, 160x120 (seed 0): the capstone tests hold out synth02 (their fold) and
    synth03 (their val sequence)."""
    from siampolar_lib.data.synthetic import make_synthetic_davis

    return make_synthetic_davis(tmp_path_factory.mktemp("capstone") / "DAVIS", sequences=4, frames=6, seed=0,
                                size=(160, 120))
