"""The one experiment config: presets, dict round trip, generated CLI flags, and geometry followed everywhere."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from siampolar_lib.commands.train import parse_args
from siampolar_lib.data.davis import folder_sequences, load_sequence, read_frame, read_mask
from siampolar_lib.data.pairs import PairConfig
from siampolar_lib.geometry.boxes import mask_to_box
from siampolar_lib.models.config import LITE0, QUICK, get_config
from siampolar_lib.splits import VALIDATION_FOLD_SEQUENCES
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.loop import track_frames
from siampolar_lib.tracking.tracker import Tracker
from siampolar_lib.training.checkpoint import load_checkpoint, load_model
from siampolar_lib.training.config import OptimConfig, TrainConfig, load_preset
from siampolar_lib.training.train import train


@pytest.mark.parametrize("name,model", [("quick", "quick"), ("lite0_cpu", "lite0"), ("r50_gpu", "r50")])
def test_presets_load(name, model):
    cfg = load_preset(name)
    assert cfg.model == get_config(model)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg, "a preset survives the plain-dict round trip"


def test_lite0_cpu_preset_excludes_the_validation_fold():
    cfg = load_preset("lite0_cpu")
    assert cfg.exclude_sequences == VALIDATION_FOLD_SEQUENCES and cfg.batch == 16 and cfg.optim.warmup == 100
    assert cfg.precision == "bf16" and cfg.iters == 1700 and cfg.optim.freeze_backbone_iters == 800


def test_dict_round_trip_of_a_custom_config():
    cfg = TrainConfig(model=dataclasses.replace(LITE0, num_rays=24, search_size=287),
                      pairs=PairConfig(search_shift=32.0), optim=OptimConfig(lr=0.02), data=("a", "b"))
    d = cfg.to_dict()
    assert d["model"]["num_rays"] == 24 and d["data"] == ["a", "b"] and d["optim"]["lr"] == 0.02
    assert TrainConfig.from_dict(d) == cfg


def test_a_saved_tracker_section_is_skipped_and_a_preset_one_refused(tmp_path):
    """Checkpoints' meta.train_config may hold tracker settings: from_dict reads them back without; presets
    and flags, where a tracker setting would never be used, refuse it."""
    cfg = TrainConfig(optim=OptimConfig(lr=0.02), data=("a",))
    saved = {**cfg.to_dict(), "tracker": {"size_lr": 0.5, "mode": "search"}}
    assert TrainConfig.from_dict(saved) == cfg and "tracker" not in cfg.to_dict()
    (tmp_path / "p.yaml").write_text("tracker:\n  size_lr: 0.5\n")
    with pytest.raises(ValueError, match="tracker"):
        load_preset(tmp_path / "p.yaml")
    with pytest.raises(ValueError, match="--tracker.size-lr"):
        parse_args(["--data", "d", "--out", "o", "--iters", "2", "--tracker.size-lr", "0.5"])


def test_unknown_fields_are_named():
    with pytest.raises(ValueError, match="search_shfit"):
        TrainConfig.from_dict({"pairs": {"search_shfit": 3}})


def test_flags_are_generated_from_the_dataclasses():
    cfg = parse_args(["--preset", "quick", "--config", "lite0", "--model.num-rays", "24", "--model.search-size", "287",
                      "--pairs.search-shift", "32", "--loss.cls-weight", "2",
                      "--lr", "0.02", "--no-pretrained", "--stop-at", "none", "--data", "d", "--out", "o",
                      "--iters", "5", "--frozen-stages", "3"])
    assert cfg.model == dataclasses.replace(LITE0, num_rays=24, search_size=287, frozen_stages=3)
    assert cfg.pairs.search_shift == 32.0 and cfg.loss.cls_weight == 2.0
    assert cfg.optim.lr == 0.02 and not cfg.pretrained and cfg.stop_at is None
    # Parser errors are UserErrors (a ValueError): the CLI prints them as one line and exits 2.
    with pytest.raises(ValueError, match="required: --iters"):
        parse_args(["--data", "d", "--out", "o"])  # --iters is required without a preset that sets it
    with pytest.raises(ValueError, match="sideways"):
        parse_args(["--data", "d", "--out", "o", "--iters", "2", "--optimizer", "sideways"])


def test_ray_count_and_search_size_are_one_line_changes(synthetic_davis, tmp_path):
    """num_rays=24 and a 287 search crop: pairs, targets, training, checkpoint and tracker all follow."""
    model = dataclasses.replace(QUICK, num_rays=24, search_size=287)
    cfg = TrainConfig(model=model, data=(str(synthetic_davis),), out=str(tmp_path / "run"), iters=3, batch=2,
                      optim=OptimConfig(warmup=1), ckpt_every=0, device="cpu", pretrained=False, progress=False)
    result = train(cfg)
    ckpt = load_checkpoint(result["checkpoint"])
    assert ckpt["config"]["num_rays"] == 24 and ckpt["config"]["search_size"] == 287
    assert ckpt["meta"]["train_config"]["model"]["search_size"] == 287
    net = load_model(result["checkpoint"])
    assert net.config == model and net.head.rays.out_channels == 24

    seen = []
    original = net.track
    net.track = lambda x, zf=None: (seen.append(tuple(x.shape)), original(x, zf))[1]
    seq = load_sequence(synthetic_davis, folder_sequences(synthetic_davis)[0])
    frames = [read_frame(p) for p in seq.frame_paths[:3]]
    box = mask_to_box(read_mask(seq.mask_paths[0]))
    results = track_frames(Tracker(net, TrackerConfig()), frames, box)
    assert len(results) == 3 and all(r.polygon.shape == (24, 2) for r in results)
    assert seen == [(1, 3, 287, 287)] * 2, "the tracker crops the model's search size"


def test_resume_reads_a_run_folder_of_the_name_only_format(synthetic_davis, tmp_path):
    """A name-only last.pt (config "quick", a flat meta.train_config without sections) resumes."""
    cfg = TrainConfig(model=QUICK, data=(str(synthetic_davis),), out=str(tmp_path / "run"), iters=2, batch=2,
                      optim=OptimConfig(warmup=1), ckpt_every=0, device="cpu", pretrained=False, progress=False,
                      stop_at=1)
    train(cfg)
    path = tmp_path / "run" / "last.pt"
    old = torch.load(path, weights_only=True)
    old["config"] = "quick"
    old["meta"]["train_config"] = {"config": "quick", "batch": 2, "lr": 0.01, "warmup": 1, "seed": 0,
                                   "optimizer": "sgd", "schedule": "cosine", "iters": 2}
    torch.save(old, path)
    result = train(dataclasses.replace(cfg, stop_at=None, resume=True))
    assert result["steps"] == 2 and isinstance(load_checkpoint(path)["config"], dict)
