"""The capstone's job (`apps.capstone`): the whole recipe at a tiny size on synthetic data, trained and scored, its
record; the band, its verdicts and its file; and data_scripts/capstone_band.py's refusals, each one line before any
work, and its file written once (again only with --overwrite)."""
from __future__ import annotations

import dataclasses
import json

import pytest
from cli_helpers import refused, script

from siampolar_lib.apps.capstone import (
    BAND_FLOOR,
    band_record,
    band_verdict,
    expected_band,
    logged_speeds,
    read_band,
    recipe_minutes,
    run_capstone,
    shipped_committed_scores,
    shipped_val_summary,
    shipped_volume,
)
from siampolar_lib.errors import UserError
from siampolar_lib.paths import SHARED_DATA, checkpoints_dir
from siampolar_lib.training.capstone import CAPSTONE_RECIPE, CapstoneConfig

TINY = CapstoneConfig(model="quick", first_iters=2, first_batch=2, first_warmup=1, stage_iters=2, stage_batch=2,
                      stage_warmup=1, stage_channels=16, exclude_sequences=("synth02", "synth03"), seed=3)



def record(seed: int, fold: float, val: float) -> dict:
    """A run's record as run_capstone writes it, with only what a band reads."""
    part = lambda x: {"JF_M": x, "J_M": x + 0.05, "F_M": x - 0.05}
    return {"recipe": dataclasses.replace(TINY, seed=seed).to_dict(),
            "scores": {"fold_first_stage": part(fold - 0.2), "fold": part(fold), "val": part(val)}}


def test_the_whole_recipe_trains_and_scores(tmp_path, capstone_davis):
    out = tmp_path / "run"
    rec = run_capstone(TINY, [capstone_davis], out, fold_root=capstone_davis, fold_sequences=("synth02",),
                       val_root=capstone_davis, val_sequences=("synth03",), max_frames=4, workers=0)
    assert rec["imagenet"] and rec["first_stage"]["steps"] == 2 and rec["stage"]["steps"] == 2
    for part in ("fold_first_stage", "fold", "val"):
        s = rec["scores"][part]
        assert all(0.0 <= s[k] <= 1.0 for k in ("JF_M", "J_M", "F_M")) and s["max_frames"] == 4, part
    assert list(rec["scores"]["val"]["per_sequence_J_M"]) == ["synth03"]
    assert json.loads((out / "capstone.json").read_text()) == json.loads(json.dumps(rec))
    assert (out / "val" / "results.json").is_file() and (out / "stage" / "step2.pt").is_file()
    again = run_capstone(TINY, [capstone_davis], out, fold_root=capstone_davis, fold_sequences=("synth02",),
                         val_root=capstone_davis, val_sequences=("synth03",), max_frames=4, workers=0)
    assert again["checkpoint_sha256"] == rec["checkpoint_sha256"], "a finished run resumes to the same network"
    assert again["scores"] == rec["scores"]
    with pytest.raises(UserError, match="synth01: would be trained on and scored"):
        run_capstone(TINY, [capstone_davis], tmp_path / "leak", fold_root=capstone_davis, fold_sequences=("synth01",),
                     val_sequences=())
    assert not (tmp_path / "leak").exists(), "refused before any file is made"


def test_the_band_widens_the_seeds_range_by_their_spread():
    band = expected_band([record(0, 0.60, 0.55), record(1, 0.62, 0.551)])
    assert band["fold"]["JF_M"] == pytest.approx([0.58, 0.64])  # spread 0.02 on each side
    assert band["val"]["JF_M"] == pytest.approx([0.55 - BAND_FLOOR, 0.551 + BAND_FLOOR])  # spread below the floor
    assert set(band) == {"fold_first_stage", "fold", "val"}
    assert band_verdict(0.61, band["fold"]["JF_M"]) == "inside the band [58.0, 64.0]"
    assert band_verdict(0.65, band["fold"]["JF_M"]) == "above the band [58.0, 64.0] by 1.0 points"
    assert band_verdict(0.50, band["fold"]["JF_M"]).startswith("below the band [58.0, 64.0] by 8.0")
    with pytest.raises(UserError, match="at least two runs"):
        expected_band([record(0, 0.6, 0.5)])
    with pytest.raises(UserError, match="share one recipe"):
        band_record([record(0, 0.6, 0.5), {**record(1, 0.6, 0.5), "recipe": CAPSTONE_RECIPE.to_dict()}], "x")


def test_a_band_file_reads_back_or_says_it_is_missing(tmp_path):
    assert read_band(tmp_path / "none.json") is None
    path = tmp_path / "band.json"
    path.write_text(json.dumps(band_record([record(0, 0.6, 0.5), record(1, 0.62, 0.52)], "cmd")))
    band = read_band(path)
    assert band["seeds"] == [0, 1] and "seed" not in band["recipe"] and band["machine"]["cpu_count"] >= 1
    path.write_text("[1, 2]")
    with pytest.raises(UserError, match="not a capstone band"):
        read_band(path)


def test_the_shipped_model_s_numbers_read_from_its_files():
    if not (checkpoints_dir() / "val15_results.json").is_file():
        pytest.skip("no shipped val15_results.json")
    val = shipped_val_summary()
    assert len(val["per_sequence_J_M"]) == 15 and 0.5 < val["JF_M"] < 0.7
    committed = shipped_committed_scores()
    assert committed["val"] == val and committed["fold"]["JF_M"] > committed["fold_first_stage"]["JF_M"]
    volume = shipped_volume()
    assert volume["first_stage_pairs"] > volume["stage_samples"] > 0


def test_the_recipe_fits_30_minutes_at_the_logged_speeds(real_davis, real_davis_train):
    """The sizing notebook 09 prints: the full recipe, at the speeds of the committed logs, within its budget."""
    extra = SHARED_DATA / "davis_train_extra"
    if not (extra / "JPEGImages").is_dir():
        pytest.skip(f"no DAVIS-2016 train extra at {extra}")
    speeds = logged_speeds()
    assert 1.0 < speeds["cpu_factor"] < 10.0 and 0 < speeds["first_pairs_per_s"] < speeds["phase1_bf16_pairs_per_s"]
    plan = recipe_minutes(CAPSTONE_RECIPE, speeds, (real_davis_train, extra), val_root=real_davis)
    assert plan["frames"]["val"] == 1047 and plan["frames"]["train"] > 1000
    assert 20 < sum(plan["minutes"].values()) <= 30, plan["minutes"]
    longer = dataclasses.replace(CAPSTONE_RECIPE, first_iters=2 * CAPSTONE_RECIPE.first_iters)
    assert sum(recipe_minutes(longer, speeds, (real_davis_train, extra), val_root=real_davis)["minutes"].values()) > 30


# ------------------------------------------------------------------------- data_scripts/capstone_band.py

@pytest.fixture
def band_script(capstone_davis, monkeypatch):
    """The script with both train roots pointed at the synthetic set (its checks read them through paths)."""
    monkeypatch.setenv("SIAMPOLAR_DAVIS_TRAIN_ROOT", str(capstone_davis))
    monkeypatch.setenv("SIAMPOLAR_DAVIS_TRAIN_EXTRA_ROOT", str(capstone_davis))
    return script("capstone_band")


@pytest.mark.parametrize("seeds, needle", [("0", "at least two distinct seeds"), ("1,1", "two distinct"),
                                           ("0,x", "comma-separated integers"), ("0,-1", ">= 0")])
def test_the_script_refuses_a_band_of_fewer_than_two_seeds(band_script, tmp_path, capsys, seeds, needle):
    rc = band_script.main(["--seeds", seeds, "--work", str(tmp_path / "w"), "--out", str(tmp_path / "b.json")])
    refused(capsys, rc, "--seeds", needle)


def test_the_script_refuses_missing_inputs(band_script, capstone_davis, tmp_path, capsys, monkeypatch):
    args = ["--work", str(tmp_path / "w"), "--out", str(tmp_path / "b.json")]
    rc = band_script.main([*args, "--davis-root", str(tmp_path / "nowhere")])
    refused(capsys, rc, "nowhere", "not a DAVIS folder")
    monkeypatch.setenv("SIAMPOLAR_DAVIS_TRAIN_EXTRA_ROOT", str(tmp_path / "no_extra"))
    refused(capsys, band_script.main([*args, "--davis-root", str(capstone_davis)]), "no_extra", "train sequences")
    monkeypatch.setattr(band_script, "imagenet_missing", lambda model: "package efficientnet_lite0 is not installed")
    refused(capsys, band_script.main(args), "not installed", "not the recipe's")
    assert not (tmp_path / "w").exists() and not (tmp_path / "b.json").exists()


def test_the_script_refuses_an_out_inside_work_or_over_an_input(band_script, capstone_davis, tmp_path, capsys):
    root = ["--davis-root", str(capstone_davis)]
    rc = band_script.main([*root, "--work", str(tmp_path / "w"), "--out", str(tmp_path / "w" / "b.json")])
    refused(capsys, rc, "--out", "lies inside the input --work")
    rc = band_script.main([*root, "--work", str(capstone_davis / "w"), "--out", str(tmp_path / "b.json")])
    refused(capsys, rc, "--work", "lies inside the input --data")


def test_the_script_writes_the_band_once(band_script, capstone_davis, tmp_path, capsys, monkeypatch):
    """Its own plumbing, with a stand-in for the runs (the recipe itself is tested above)."""
    seen = []

    def fake_run(recipe, data, out, **kw):
        seen.append((recipe.seed, out.name))
        return {**record(recipe.seed, 0.6 + recipe.seed / 100, 0.5), "recipe": recipe.to_dict(),
                "first_stage": {"seconds": 60.0}, "stage": {"seconds": 30.0}, "score_seconds": 10.0}

    monkeypatch.setattr(band_script, "run_capstone", fake_run)
    out = tmp_path / "band.json"
    args = ["--davis-root", str(capstone_davis), "--work", str(tmp_path / "w"), "--out", str(out)]
    assert band_script.main(args) == 0
    assert seen == [(0, "seed0"), (1, "seed1")]
    band = read_band(out)
    assert band["seeds"] == [0, 1] and band["recipe"] == {k: v for k, v in CAPSTONE_RECIPE.to_dict().items()
                                                          if k != "seed"}
    assert band["band"]["fold"]["JF_M"] == pytest.approx([0.59, 0.62]) and "capstone_band.py" in band["command"]
    capsys.readouterr()
    refused(capsys, band_script.main(args), "already exists", "--overwrite")
    assert band_script.main([*args, "--overwrite"]) == 0 and len(seen) == 4
