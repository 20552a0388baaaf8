"""Recording the first stage's real output: the tracker records exactly what its refinement stage is handed, the same
with or without a stage, and the cache of a run over DAVIS sequences (library call and script) holds only usable
frames, counted, and refuses val sequences and an earlier file in one line."""
from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from siampolar_lib.data.davis import folder_sequences
from siampolar_lib.data.first_stage_cache import read_first_stage_cache
from siampolar_lib.errors import UserError
from siampolar_lib.evaluation.first_stage_outputs import record_first_stage
from siampolar_lib.evaluation.sequence import load_eval_sequence
from siampolar_lib.geometry.polar import rays_to_polygon
from siampolar_lib.io import sha256
from siampolar_lib.models.config import get_config
from siampolar_lib.models.siampolar import SiamPolar
from siampolar_lib.paths import REPO_ROOT
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.tracker import Tracker
from siampolar_lib.training.checkpoint import first_stage_sha256, load_model, save_checkpoint

SCRIPT = REPO_ROOT / "data_scripts" / "cache_first_stage.py"


def networks() -> tuple[SiamPolar, SiamPolar]:
    """The quick network with a (non-identity) refinement stage, and its first stage alone."""
    torch.manual_seed(0)
    staged = SiamPolar(dataclasses.replace(get_config("quick"), refine_iters=2), pretrained=False).eval()
    torch.nn.init.normal_(staged.refiner.ray_convs[-1].weight, std=0.05)
    first = SiamPolar(get_config("quick"), pretrained=False).eval()
    first.load_state_dict({k: v for k, v in staged.state_dict().items() if not k.startswith("refiner.")})
    return staged, first


def disk_video(n: int = 5) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    bg = rng.integers(40, 120, (120, 160, 3), dtype=np.uint8)
    frames = []
    for i in range(n):
        f = bg.copy()
        cv2.circle(f, (60 + 5 * i, 60 + 2 * i), 20, (240, 220, 200), -1)
        frames.append(f)
    return frames


def run(tracker: Tracker, frames: list[np.ndarray], handed: list | None = None) -> list[tuple]:
    """(origin, rays, result) after every later frame; `handed` collects what `_refine` was given."""
    if handed is not None:
        refine = tracker._refine
        tracker._refine = lambda frame, centre, rays: handed.append((centre.copy(), rays.copy())) or \
            refine(frame, centre, rays)
    tracker.init(frames[0], (40.0, 40.0, 41.0, 41.0))
    out = []
    for f in frames[1:]:
        res = tracker.track(f)
        out.append((tracker.last_first_origin, tracker.last_first_rays, res))
    return out


def test_the_tracker_records_what_its_stage_is_handed_the_same_with_or_without_a_stage():
    staged, first = networks()
    frames, handed = disk_video(), []
    with_stage, without = run(Tracker(staged), frames, handed), run(Tracker(first), frames)
    assert len(handed) == len(with_stage) == 4
    for (origin, rays, res), (o2, r2, res2), (c, r) in zip(with_stage, without, handed):
        assert np.array_equal(origin, c) and np.array_equal(rays, r), "recorded = handed to the stage"
        assert np.array_equal(origin, o2) and np.array_equal(rays, r2), "the stage never feeds the first stage"
        assert np.array_equal(res.box, res2.box) and res.score == res2.score and res.lost == res2.lost
        assert np.abs(res.polygon - rays_to_polygon(origin, rays)).max() > 0.1, "the stage did refine"
        assert np.array_equal(rays_to_polygon(origin, rays), rays_to_polygon(o2, r2))
    assert first_stage_sha256(staged) == first_stage_sha256(first)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    """An untrained quick network, seeded: the same first polygons (some centres on the object, some off) each run."""
    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("c") / "seeded.pt", SiamPolar(get_config("quick"), pretrained=False))


def test_record_first_stage_keeps_every_usable_later_frame(seeded, tiny_davis):
    ckpt = seeded
    cache = record_first_stage(ckpt, [tiny_davis])
    names = folder_sequences(tiny_davis)
    counts, later = cache.meta["counts"], 0
    for name in names:
        paths, gt = load_eval_sequence(tiny_davis, name)
        later += len(paths) - 1
        for t in cache.frames[cache.sequences == name]:
            row = cache.row_of()[(name, int(t))]
            x, y = np.round(cache.centres[row]).astype(int)
            assert 1 <= t < len(paths) and gt[t][y, x], "a row's centre lies inside its true mask"
    assert sum(counts.values()) == later and counts.get("kept", 0) == len(cache) > 0, counts
    assert counts.get("outside", 0) > 0, "this network's first centre misses the object on some frames"
    assert cache.meta["checkpoint_sha256"] == sha256(ckpt) and cache.num_rays == 36
    assert cache.meta["first_stage_sha256"] == first_stage_sha256(load_model(ckpt))
    assert cache.meta["tracker"] == dataclasses.asdict(TrackerConfig()) and cache.meta["engine"] == "torch"
    with pytest.raises(UserError, match="blackswan are DAVIS-2016 val sequences"):
        record_first_stage(ckpt, [tiny_davis], ["blackswan"])
    with pytest.raises(UserError, match="holds the sequence 'nosuch'"):
        record_first_stage(ckpt, [tiny_davis], ["nosuch"])


@pytest.fixture(scope="module")
def script():
    """data_scripts/cache_first_stage.py as a module: its `main(argv)` runs in this process."""
    spec = importlib.util.spec_from_file_location("cache_first_stage", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_script_writes_a_cache_and_refuses_an_earlier_one(script, ckpt, tiny_davis, tmp_path, capsys):
    out = tmp_path / "first.npz"
    args = ["--checkpoint", str(ckpt), "--data", str(tiny_davis), "--no-progress"]
    assert script.main(args + ["--out", str(out), "--max-frames", "3"]) == 0
    cache, printed = read_first_stage_cache(out), capsys.readouterr().out
    assert str(out) in printed and f"{len(cache)} rows from 2 sequences" in printed
    assert cache.meta["max_frames"] == 3 and set(cache.frames.tolist()) <= {1, 2}
    for more, words in ((["--out", str(out)], "already exists"),
                        (["--out", str(tiny_davis / "c.npz")], "lies inside the input --data"),
                        (["--out", str(tmp_path / "c.json")], "an .npz file"),
                        (["--out", str(tmp_path / "v.npz"), "--sequences", "blackswan"], "val sequences")):
        assert script.main(args + more) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.npz"], "a refused run writes nothing"
