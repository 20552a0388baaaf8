"""The trainer: schedule, step-indexed data order, instant training, exact resume, log and checkpoint format."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from siampolar_lib.commands.train import parse_args
from siampolar_lib.device import rng_state, set_rng_state
from siampolar_lib.models.config import get_config
from siampolar_lib.training.config import OptimConfig, TrainConfig
from siampolar_lib.training.distributed import StepSampler, dist_info, init_distributed, wrap_ddp
from siampolar_lib.training.log import log_columns, read_log
from siampolar_lib.training.schedule import lr_factor
from siampolar_lib.training.train import train


def _cfg(tmp_path, data, name="run", model="quick", lr=0.01, warmup=2, frozen_stages=None, **kw) -> TrainConfig:
    """A tiny CPU run of the quick network."""
    mcfg = get_config(model)
    if frozen_stages is not None:
        mcfg = dataclasses.replace(mcfg, frozen_stages=frozen_stages)
    base = dict(model=mcfg, data=(str(data),), out=str(tmp_path / name), iters=4, batch=2,
                optim=OptimConfig(lr=lr, warmup=warmup), ckpt_every=2, device="cpu", seed=3, progress=False)
    base.update(kw)
    return TrainConfig(**base)


# ------------------------------------------------------------------------------------- schedule

def test_lr_factor_warmup_then_cosine():
    assert lr_factor(0, 100, warmup=10) == pytest.approx(1 / 3)
    assert lr_factor(5, 100, warmup=10) == pytest.approx(1 / 3 + (2 / 3) * 0.5)
    assert lr_factor(10, 100, warmup=10) == pytest.approx(1.0)
    assert lr_factor(100, 100, warmup=10) == pytest.approx(0.01)
    f = [lr_factor(s, 100, warmup=10) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(f, f[1:])), "cosine decay must not increase"


def test_lr_factor_step_schedule_drops_tenfold():
    assert lr_factor(0, 90, warmup=0, schedule="step") == 1.0
    assert lr_factor(59, 90, warmup=0, schedule="step") == 1.0
    assert lr_factor(60, 90, warmup=0, schedule="step") == pytest.approx(0.1)
    assert lr_factor(89, 90, warmup=0, schedule="step") == pytest.approx(0.01)
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_factor(0, 10, schedule="linear")


# ------------------------------------------------------------------------------------ data order

def test_step_sampler_is_a_function_of_step_and_rank():
    full = list(StepSampler(0, 5, batch=3))
    assert full == list(range(15))
    assert list(StepSampler(2, 5, batch=3)) == full[6:], "resuming at step 2 reads the same items"
    r0, r1 = list(StepSampler(1, 3, 2, rank=0, world=2)), list(StepSampler(1, 3, 2, rank=1, world=2))
    assert r0 == [4, 5, 8, 9] and r1 == [6, 7, 10, 11], "ranks read disjoint slices of each step"


def test_a_plain_run_is_rank_0_of_one(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert dist_info() == (0, 1, 0) and init_distributed("cpu") == (0, 1, torch.device("cpu"))
    model = torch.nn.Linear(2, 2)
    assert wrap_ddp(model, 1, torch.device("cpu")) is model
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert dist_info() == (3, 4, 1)


def test_rng_state_round_trips_through_weights_only(tmp_path):
    import random

    import numpy as np

    state = rng_state()
    torch.save(state, tmp_path / "rng.pt")
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_cli_parses_into_train_config():
    cfg = parse_args(["--config", "quick", "--data", "a.json", "--data", "b", "--out", "runs/x", "--iters", "7",
                      "--exclude-sequences", "cows,dog", "--optimizer", "adamw", "--resume"])
    assert cfg.data == ("a.json", "b") and cfg.iters == 7 and cfg.resume and cfg.optim.optimizer == "adamw"
    assert cfg.model == get_config("quick")
    assert cfg.exclude_sequences == ("cows", "dog")
    with pytest.raises(ValueError, match="--iters 0: must be an integer >= 1"):  # main prints it in one line
        parse_args(["--data", "a", "--out", "o", "--iters", "0"])


# -------------------------------------------------------------------------------------- training

@pytest.mark.slow  # ~1 s a step on 2 free cores; minutes when the machine is shared
def test_instant_training_loss_finite_and_falling(synthetic_davis, tmp_path):
    """Tens of steps of `quick` on the synthetic set: every loss finite, the last steps lower than the first."""
    cfg = _cfg(tmp_path, synthetic_davis, iters=20, batch=4, lr=0.01, warmup=5, ckpt_every=0)
    result = train(cfg)
    rows = read_log(result["log"])
    assert [r["step"] for r in rows] == list(range(1, 21))
    losses = [r["loss"] for r in rows]
    assert all(math.isfinite(x) for x in losses)
    first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8
    assert last < 0.9 * first, f"loss did not fall: first 8 steps {first:.3f}, last 8 {last:.3f}"
    assert result["curve"].is_file()


@pytest.mark.slow
def test_log_columns_and_checkpoint_loads_weights_only(synthetic_davis, tmp_path):
    result = train(_cfg(tmp_path, synthetic_davis, iters=3, ckpt_every=2))
    header = result["log"].read_text().splitlines()[0].split(",")
    assert tuple(header) == log_columns() == ("step", "loss", "cls", "ctr", "rays", "lr", "num_pos", "pairs_per_s")
    rows = read_log(result["log"])
    assert len(rows) == 3 and all(r["pairs_per_s"] > 0 and r["lr"] > 0 for r in rows)
    ck = torch.load(result["checkpoint"], map_location="cpu", weights_only=True)
    assert ck["format"] == "siampolar-checkpoint-v1" and ck["step"] == 3
    assert ck["config"] == get_config("quick").to_dict()
    for key in ("model", "optimizer", "scheduler", "scaler", "rng", "meta"):
        assert key in ck, key
    assert ck["meta"]["train_config"]["iters"] == 3
    assert not list(result["checkpoint"].parent.glob(".*tmp*")), "no temp files left behind"


def _states_equal(a: dict, b: dict) -> list[str]:
    return [k for k in a if not torch.equal(a[k], b[k])]


@pytest.mark.slow
@pytest.mark.parametrize("how,workers", [("killed", 0), ("extended", 0), ("killed", 2)])
def test_resume_is_exact(synthetic_davis, tmp_path, how, workers):
    """k steps, stop, resume to k+1 == k+1 uninterrupted steps, bitwise on CPU.

    killed: the first run stops at k with the k+1 schedule (--stop-at); extended: the first run is a k-step
    run (--iters k) and the resume raises --iters, the schedule is re-planned (warm-up covers both so the
    lrs agree). With DataLoader workers the pairs come from other processes and must still be the same.
    """
    k = 3
    straight = train(_cfg(tmp_path, synthetic_davis, "straight", iters=k + 1, warmup=8, workers=workers))
    first = (dict(iters=k + 1, stop_at=k) if how == "killed" else dict(iters=k))
    part = _cfg(tmp_path, synthetic_davis, "parts", warmup=8, workers=workers, **first)
    train(part)
    assert torch.load(tmp_path / "parts" / "last.pt", weights_only=True)["step"] == k
    resumed = train(dataclasses.replace(part, iters=k + 1, stop_at=None, resume=True))
    a = torch.load(straight["checkpoint"], weights_only=True)
    b = torch.load(resumed["checkpoint"], weights_only=True)
    assert b["step"] == k + 1
    assert _states_equal(a["model"], b["model"]) == []
    ra, rb = read_log(straight["log"]), read_log(resumed["log"])
    assert [r["step"] for r in rb] == [1, 2, 3, 4]
    assert [r["loss"] for r in ra] == [r["loss"] for r in rb]


def test_resume_refuses_another_architecture(synthetic_davis, tmp_path):
    from siampolar_lib import build_model
    from siampolar_lib.training.checkpoint import CheckpointError, save_checkpoint

    cfg = _cfg(tmp_path, synthetic_davis, model="lite0", iters=2, resume=True)
    save_checkpoint(tmp_path / "run" / "last.pt", build_model("quick", pretrained=False), step=1,
                    optimizer={}, scheduler={}, scaler={}, rng={})
    with pytest.raises(CheckpointError, match="'quick' network, but --model is 'lite0'"):
        train(cfg)


def test_resume_refuses_a_model_only_checkpoint(synthetic_davis, tmp_path):
    from siampolar_lib import build_model
    from siampolar_lib.training.checkpoint import CheckpointError, save_checkpoint

    save_checkpoint(tmp_path / "run" / "last.pt", build_model("quick", pretrained=False), step=1)
    with pytest.raises(CheckpointError, match="no training state"):
        train(_cfg(tmp_path, synthetic_davis, resume=True))


def test_resume_without_checkpoint_is_a_clear_error(synthetic_davis, tmp_path):
    with pytest.raises(FileNotFoundError, match="last.pt"):
        train(_cfg(tmp_path, synthetic_davis, resume=True))


def test_excluding_every_sequence_is_a_clear_error(synthetic_davis, tmp_path):
    from siampolar_lib.data.davis import folder_sequences

    names = tuple(folder_sequences(synthetic_davis))
    with pytest.raises(ValueError, match="no training videos"):
        train(_cfg(tmp_path, synthetic_davis, exclude_sequences=names))


def test_missing_data_path_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        train(_cfg(tmp_path, tmp_path / "nowhere"))


def test_init_from_fine_tunes_with_more_stages_frozen(synthetic_davis, tmp_path):
    """--init-from starts at step 0 from a checkpoint's weights; --frozen-stages keeps lower stages fixed."""
    from siampolar_lib import build_model
    from siampolar_lib.training.checkpoint import save_checkpoint

    start = build_model("quick", pretrained=False)
    save_checkpoint(tmp_path / "start.pt", start, step=123)
    init = {k: v.clone() for k, v in start.state_dict().items()}
    result = train(_cfg(tmp_path, synthetic_davis, iters=2, init_from=str(tmp_path / "start.pt"), frozen_stages=4))
    ck = torch.load(result["checkpoint"], weights_only=True)
    assert ck["step"] == 2
    changed = set(_states_equal(init, ck["model"]))
    assert not any(k.startswith(("backbone.blocks.3.", "backbone.blocks.2.", "backbone.conv_stem.")) for k in changed)
    assert any(k.startswith("backbone.blocks.4.") and k.endswith("weight") for k in changed), "stage 4 trains"
    assert any(k.startswith("head.") for k in changed)


def test_init_from_another_architecture_is_a_clear_error(synthetic_davis, tmp_path):
    from siampolar_lib import build_model
    from siampolar_lib.training.checkpoint import CheckpointError, save_checkpoint

    save_checkpoint(tmp_path / "lite.pt", build_model("lite0", pretrained=False), step=1)
    with pytest.raises(CheckpointError, match="'lite0' network, but --model is 'quick'"):
        train(_cfg(tmp_path, synthetic_davis, iters=1, init_from=str(tmp_path / "lite.pt")))


def test_cli_parses_fine_tuning_flags():
    cfg = parse_args(["--data", "d", "--out", "o", "--iters", "5", "--init-from", "a.pt", "--frozen-stages", "4"])
    assert cfg.init_from == "a.pt" and cfg.model.frozen_stages == 4


@pytest.mark.slow
def test_targets_in_workers_train_exactly_as_targets_in_the_step(synthetic_davis, tmp_path):
    """--workers 2 with targets from the DataLoader == targets built in the step (same losses, same weights)."""
    a = train(_cfg(tmp_path, synthetic_davis, "in_step", iters=3, worker_targets=False))
    b = train(_cfg(tmp_path, synthetic_davis, "in_workers", iters=3, workers=2, worker_targets=True))
    assert [r["loss"] for r in read_log(a["log"])] == [r["loss"] for r in read_log(b["log"])]
    wa = torch.load(a["checkpoint"], weights_only=True)["model"]
    wb = torch.load(b["checkpoint"], weights_only=True)["model"]
    assert _states_equal(wa, wb) == []


def test_scale_lr_is_linear_in_the_global_batch():
    from siampolar_lib.training.schedule import scale_lr

    assert scale_lr(0.005, 32, 128) == pytest.approx(0.02)
    assert scale_lr(0.01, 8, 2) == pytest.approx(0.0025)
    with pytest.raises(ValueError, match="batches"):
        scale_lr(0.01, 0, 8)


def test_read_log_takes_an_empty_float_cell_as_nan_and_refuses_a_word(tmp_path):
    """Older refinement-stage logs left the fold-sample columns empty between checkpoints (refine_r2's log)."""
    log = tmp_path / "train_log.csv"
    log.write_text("step,samples,loss,iou_first,iou_refined,lr,samples_per_s,val_iou_first,val_iou_refined\n"
                   "50,1600,0.19,0.75,0.82,0.00066,99.3,,\n100,3200,0.15,0.77,0.86,0.001,119.2,0.8,0.9\n")
    rows = read_log(log)
    assert np.isnan(rows[0]["val_iou_first"]) and rows[1]["val_iou_refined"] == 0.9 and rows[0]["step"] == 50
    log.write_text(log.read_text().replace("119.2", "fast"))
    with pytest.raises(ValueError, match="not a training log"):
        read_log(log)
