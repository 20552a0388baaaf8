"""Training the refinement stage on the first stage's real output (`--real-first-p`, `--real-first-cache`): the cache is
checked before any work (missing, damaged, of another first stage), the run records which cache it read, a resume
refuses a rebuilt one, and a run whose config predates these settings still resumes."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from siampolar_lib.commands import train_refine as train_refine_cmd
from siampolar_lib.data.first_stage_cache import FirstStageCache, write_first_stage_cache
from siampolar_lib.data.refine_samples import inner_point
from siampolar_lib.data.sources import videos_from_davis
from siampolar_lib.errors import UserError
from siampolar_lib.geometry.polar import mask_to_rays
from siampolar_lib.io import sha256
from siampolar_lib.training.checkpoint import first_stage_sha256, load_checkpoint, load_model
from siampolar_lib.training.log import read_log
from siampolar_lib.training.train_refine import RefineConfig


def hand_cache(path, davis, first_stage: str, grow: float = 1.3):
    """A cache of every later frame showing the object: a centre inside it, its true rays x grow; tagged first_stage."""
    seqs, frames, centres, rays = [], [], [], []
    for video in videos_from_davis(davis):
        for rec in video.frames[1:]:
            if rec.mask_rle is not None:
                c = inner_point(video.decode_mask(rec))
                seqs.append(video.name)
                frames.append(rec.frame_index)
                centres.append(c)
                rays.append(np.maximum(mask_to_rays(video.decode_mask(rec), c), 1.0) * grow)
    meta = {"checkpoint": "by hand", "first_stage_sha256": first_stage}
    return write_first_stage_cache(path, FirstStageCache(seqs, frames, centres, rays, meta))


def flags(ckpt, data, out, *more: str) -> list[str]:
    """A 4-step phase of 2 samples a step in fp32, a checkpoint every 2 steps and a log row every step."""
    return ["--init-from", str(ckpt), "--data", str(data), "--out", str(out), "--iters", "4", "--batch", "2",
            "--ckpt-every", "2", "--log-every", "1", "--workers", "0", "--no-progress", "--precision", "fp32",
            "--exclude-sequences", "synth00", *more]


def test_a_run_on_real_first_rays_records_its_cache_and_resumes_only_with_it(tmp_path, ckpt, synthetic_davis, capsys):
    cache = hand_cache(tmp_path / "first.npz", synthetic_davis, first_stage_sha256(load_model(ckpt)))
    real, plain = tmp_path / "real", tmp_path / "plain"
    more = ("--real-first-p", "1", "--real-first-cache", str(cache))
    assert train_refine_cmd.main(flags(ckpt, synthetic_davis, real, *more, "--stop-at", "2")) == 0
    assert train_refine_cmd.main(flags(ckpt, synthetic_davis, plain, "--stop-at", "2")) == 0
    meta = load_checkpoint(real / "last.pt")["meta"]
    assert meta["real_first_cache_sha256"] == sha256(cache) and meta["refine_config"]["real_first_p"] == 1.0
    assert load_checkpoint(plain / "last.pt")["meta"]["real_first_cache_sha256"] is None
    first_iou = [read_log(f / "train_log.csv")[0]["iou_first"] for f in (real, plain)]
    assert first_iou[0] != first_iou[1], "the real run's first rays are the cache's, not blurred truths"
    kept = cache.read_bytes()
    hand_cache(cache, synthetic_davis, first_stage_sha256(load_model(ckpt)), grow=0.8)  # rebuilt in place
    assert train_refine_cmd.main(flags(ckpt, synthetic_davis, real, *more, "--resume")) == 2
    err = capsys.readouterr().err
    assert "not the file the run" in err and str(cache) in err and err.count("\n") == 1, err
    cache.write_bytes(kept)
    assert train_refine_cmd.main(flags(ckpt, synthetic_davis, real, *more, "--resume")) == 0
    assert load_checkpoint(real / "last.pt")["step"] == 4


def test_a_cache_of_another_first_stage_is_refused_before_any_work(tmp_path, ckpt, synthetic_davis, capsys):
    cache = hand_cache(tmp_path / "other.npz", synthetic_davis, "0" * 64)
    out = tmp_path / "run"
    args = flags(ckpt, synthetic_davis, out, "--real-first-p", "0.5", "--real-first-cache", str(cache))
    assert train_refine_cmd.main(args) == 2
    err = capsys.readouterr().err
    assert "other.npz: --real-first-cache was recorded from another first stage" in err and err.count("\n") == 1
    assert not out.exists(), "a refused run makes no --out"


@pytest.mark.parametrize("field, value, words", [
    ("real_first_p", 1.5, "--real-first-p 1.5: must be a probability"),
    ("real_first_p", 0.5, "--real-first-p 0.5: needs --real-first-cache"),
    ("real_first_cache", "nowhere/first.npz", "nowhere/first.npz: --real-first-cache: no such first-stage cache")])
def test_real_first_settings_are_checked_in_one_line(field, value, words):
    base = RefineConfig(init_from="first.pt", data=("DAVIS",), out="runs/refine")
    with pytest.raises(UserError) as err:
        dataclasses.replace(base, **{field: value})
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_run_whose_config_predates_the_real_first_settings_resumes(tmp_path, ckpt, synthetic_davis):
    out = tmp_path / "old"
    assert train_refine_cmd.main(flags(ckpt, synthetic_davis, out, "--stop-at", "2")) == 0
    ckpt_dict = torch.load(out / "last.pt", weights_only=True)
    for key in ("real_first_p", "real_first_cache"):  # as a run started before they existed saved it
        del ckpt_dict["meta"]["refine_config"][key]
    del ckpt_dict["meta"]["real_first_cache_sha256"]
    torch.save(ckpt_dict, out / "last.pt")
    assert train_refine_cmd.main(flags(ckpt, synthetic_davis, out, "--resume")) == 0
    assert load_checkpoint(out / "last.pt")["step"] == 4
