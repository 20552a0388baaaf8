"""Checkpoints: round trip, atomic write, and every bad file is a CheckpointError naming it."""
from __future__ import annotations

import os

import pytest
import torch

from siampolar_lib import build_model
from siampolar_lib.models.config import LITE0, QUICK
from siampolar_lib.training.checkpoint import (
    FORMAT,
    CheckpointError,
    check_network,
    checkpoint_log,
    load_checkpoint,
    load_model,
    network_differences,
    save_checkpoint,
)


@pytest.fixture(scope="module")
def quick_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("quick", pretrained=False).eval()
    with torch.no_grad():  # move weights off their init so a round trip is a real check
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    path = tmp_path_factory.mktemp("ckpt") / "quick.pt"
    save_checkpoint(path, model, step=7, meta={"data": "synthetic", "losses": [1.5, 0.5]},
                    optimizer={"lr": 0.01})
    return model, path


def test_round_trip(quick_ckpt):
    model, path = quick_ckpt
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert ckpt["format"] == FORMAT and ckpt["config"] == QUICK.to_dict() and ckpt["step"] == 7
    assert ckpt["meta"] == {"data": "synthetic", "losses": [1.5, 0.5]} and ckpt["optimizer"] == {"lr": 0.01}
    assert [p.name for p in path.parent.iterdir()] == ["quick.pt"]  # no temp file left behind
    loaded = load_model(path)
    assert not loaded.training
    g = torch.Generator().manual_seed(0)
    z, x = torch.rand(1, 3, 127, 127, generator=g) * 255, torch.rand(1, 3, 255, 255, generator=g) * 255
    with torch.no_grad():
        a, b = model(z, x), loaded(z, x)
    for key in ("cls", "ctr", "rays"):
        for u, v in zip(a[key], b[key]):
            torch.testing.assert_close(u, v)


def test_truncated_file(quick_ckpt, tmp_path):
    _, path = quick_ckpt
    bad = tmp_path / "truncated.pt"
    data = path.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_model(bad)


def test_random_bytes_file(tmp_path):
    bad = tmp_path / "noise.pt"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="noise.pt.*not a readable"):
        load_checkpoint(bad)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="absent.pt.*no such"):
        load_model(tmp_path / "absent.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(CheckpointError, match="foreign.pt.*not a SiamPolar checkpoint"):
        load_model(foreign)
    unknown = tmp_path / "unknown.pt"
    torch.save({"format": FORMAT, "config": "r34", "model": {}, "step": 0, "meta": {}}, unknown)
    with pytest.raises(CheckpointError, match="unknown.pt.*r34"):
        load_model(unknown)


def test_wrong_architecture(quick_ckpt, tmp_path):
    _, path = quick_ckpt
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    ckpt["config"] = "lite0"  # a quick state dict presented as lite0
    bad = tmp_path / "mislabelled.pt"
    torch.save(ckpt, bad)
    with pytest.raises(CheckpointError, match="mislabelled.pt.*wrong architecture"):
        load_model(bad)


def test_meta_must_be_plain(tmp_path):
    model = build_model("quick", pretrained=False)
    with pytest.raises(TypeError, match="plain types"):
        save_checkpoint(tmp_path / "x.pt", model, meta={"path": tmp_path})
    assert not list(tmp_path.iterdir())


def test_checkpoint_stores_the_whole_model_config(quick_ckpt):
    """config is a dict with every ModelConfig field; loading rebuilds the same config."""
    from dataclasses import fields

    _, path = quick_ckpt
    stored = torch.load(path, map_location="cpu", weights_only=True)["config"]
    assert isinstance(stored, dict) and set(stored) == {f.name for f in fields(QUICK)}
    assert load_model(path).config == QUICK


def test_shipped_name_only_checkpoint_loads_as_todays_preset(tmp_path):
    """A file that stores only the name "lite0" (a name-only checkpoint) loads as LITE0."""
    import dataclasses

    import torch

    from siampolar_lib.paths import REPO_ROOT

    shipped = load_checkpoint(REPO_ROOT / "checkpoints" / "siampolar_lite0.pt")
    assert set(shipped["config"]) == {f.name for f in dataclasses.fields(LITE0)}, "the shipped file holds every field"
    first_stage = {k: v for k, v in shipped["model"].items() if not k.startswith("refiner.")}  # LITE0 has no stage
    old = dict(shipped, config="lite0", model=first_stage)
    path = tmp_path / "name_only.pt"
    torch.save(old, path)
    assert load_checkpoint(path)["config"] == "lite0"
    assert load_model(path).config == LITE0


def test_network_differences_ignore_training_only_fields():
    import dataclasses

    assert network_differences(QUICK, dataclasses.replace(QUICK, frozen_stages=4, bn_mode="train")) == []
    assert network_differences(QUICK, dataclasses.replace(QUICK, num_rays=24)) == ["num_rays"]
    assert "channels" in network_differences(QUICK, LITE0)
    with pytest.raises(CheckpointError, match="'quick' network, but --model is 'lite0'"):
        check_network({"config": QUICK.to_dict()}, "q.pt", LITE0)
    check_network({"config": "quick"}, "q.pt", dataclasses.replace(QUICK, frozen_stages=4))  # a name-only file


def _rows(steps) -> list[dict]:
    return [{"step": s, "loss": 1.0 / s, "cls": 0.1, "ctr": 0.2, "rays": 0.3, "lr": 0.01, "num_pos": 3,
             "pairs_per_s": 9.0} for s in steps]


def test_checkpoint_log_reads_the_checkpoint_else_the_csv(tmp_path):
    from siampolar_lib.training.log import write_log

    csv = tmp_path / "train_log.csv"
    assert checkpoint_log({"step": 3, "log": _rows([1, 2, 3, 4])}, "last.pt", csv) == _rows([1, 2, 3])
    assert checkpoint_log({"step": 0, "log": []}, "last.pt", csv) == []
    write_log(csv, _rows([1, 2]))
    assert checkpoint_log({"step": 2}, "last.pt", csv) == _rows([1, 2])  # no "log" entry: the CSV beside it
    with pytest.raises(CheckpointError, match="train_log.csv: the log holds 2 rows up to step 2.*at step 3"):
        checkpoint_log({"step": 3}, "last.pt", csv)  # the CSV stops short of the weights' step
    with pytest.raises(CheckpointError, match="last.pt: the log holds 2 rows"):
        checkpoint_log({"step": 3, "log": _rows([1, 3])}, "last.pt", csv)  # a gap
    with pytest.raises(CheckpointError, match="at step 2"):
        checkpoint_log({"step": 2}, "last.pt", tmp_path / "none.csv")  # no log anywhere
