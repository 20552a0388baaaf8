"""Cross-validation of refinement-stage recipes: each fold's stage never trains on the fold it is scored on, every
sequence is scored once per candidate, a second call resumes instead of retraining, the paired noise columns are
what their definition says, and bad candidates, folds and data are refused in one line."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from siampolar_lib.commands import crossval as crossval_cmd
from siampolar_lib.data.davis import folder_sequences
from siampolar_lib.data.first_stage_cache import FirstStageCache, read_first_stage_cache, write_first_stage_cache
from siampolar_lib.data.refine_samples import inner_point
from siampolar_lib.data.sources import videos_from_davis
from siampolar_lib.errors import UserError
from siampolar_lib.evaluation.crossval import (
    SHIPPED_RECIPE,
    CrossvalConfig,
    bootstrap_sd,
    format_table,
    parse_candidate,
    recipe,
    recorded_settings,
    run_crossval,
    summarise,
)
from siampolar_lib.io import sha256
from siampolar_lib.paths import REPO_ROOT
from siampolar_lib.training.checkpoint import first_stage_sha256, load_checkpoint, load_model

TINY = (("iters", 2), ("batch", 2))  # a 2-step stage: plumbing, not accuracy


@pytest.fixture(scope="module")
def folds(tiny_davis) -> tuple[tuple[str, ...], ...]:
    """Two folds of one synthetic sequence each."""
    names = folder_sequences(tiny_davis)
    return (names[0],), (names[1],)


@pytest.fixture(scope="module")
def done(tmp_path_factory, ckpt, tiny_davis, folds):
    """A whole cross-validation of two candidates over the two folds, run once for the module."""
    cfg = CrossvalConfig(init_from=str(ckpt), data=(str(tiny_davis),), out=str(tmp_path_factory.mktemp("cv") / "cv"),
                         candidates=(("a", TINY), ("b", TINY + (("seed", 5),))), folds=folds, workers=0,
                         device="cpu", progress=False)
    return cfg, run_crossval(cfg)


def test_each_fold_is_scored_by_a_stage_that_never_saw_it(done, folds):
    cfg, result = done
    for name in ("a", "b"):
        for k, fold in enumerate(folds):
            folder = os.path.join(cfg.out, name, f"fold{k}")
            saved = load_checkpoint(os.path.join(folder, "run", "last.pt"))["meta"]["refine_config"]
            assert saved["exclude_sequences"] == list(fold) and saved["iters"] == 2
            record = json.load(open(os.path.join(folder, "scores.json")))
            assert sorted(record["rows"]) == sorted(fold)
    table = {e["candidate"]: e for e in result["table"]}
    assert [e["candidate"] for e in result["table"]] == ["a", "b"]
    assert all(e["sequences"] == 2 and e["folds_scored"] == 2 for e in table.values())
    assert table["b"]["settings"]["seed"] == 5 and table["a"]["settings"]["seed"] == 2
    assert table["a"]["diff_vs_first"] == 0.0 and table["a"]["sd_diff_vs_first"] == 0.0
    assert "| a | iters=2, batch=2 | 2 |" in open(os.path.join(cfg.out, "crossval.md")).read()
    assert json.load(open(os.path.join(cfg.out, "crossval.json")))["table"] == json.loads(json.dumps(result["table"]))


def test_a_second_call_reads_back_instead_of_retraining(done):
    cfg, result = done
    scores = os.path.join(cfg.out, "a", "fold0", "scores.json")
    before = os.stat(scores).st_mtime_ns
    assert run_crossval(cfg)["table"] == result["table"]
    assert os.stat(scores).st_mtime_ns == before


def test_a_name_reused_with_other_settings_is_refused(done):
    cfg, _ = done
    other = CrossvalConfig(init_from=cfg.init_from, data=cfg.data, out=cfg.out, folds=cfg.folds, workers=0,
                           candidates=(("a", TINY + (("lr", 0.01),)),), device="cpu", progress=False)
    with pytest.raises(UserError, match="scored with other settings"):
        run_crossval(other)


def test_scores_written_before_a_recipe_key_existed_read_back_as_its_default(done):
    """A fold scored before real_first_p and real_first_cache existed is the same candidate: it is read back."""
    cfg, result = done
    scores = os.path.join(cfg.out, "a", "fold1", "scores.json")
    record = json.load(open(scores))
    for key in ("real_first_p", "real_first_cache"):
        del record["settings"][key]
    with open(scores, "w") as f:
        json.dump(record, f)
    before = os.stat(scores).st_mtime_ns
    assert run_crossval(cfg)["table"] == result["table"]
    assert os.stat(scores).st_mtime_ns == before


def test_a_candidate_changing_only_the_tracker_scores_its_home_s_stages(done):
    """`tracker.` settings change the tracker, not the stage: the first candidate with the same recipe trained it."""
    cfg, _ = done
    two = CrossvalConfig(init_from=cfg.init_from, data=cfg.data, out=cfg.out, folds=cfg.folds, workers=0,
                         candidates=(("a", TINY), parse_candidate("a2:iters=2,batch=2,tracker.refine_passes=2")),
                         device="cpu", progress=False)
    table = {e["candidate"]: e for e in run_crossval(two)["table"]}
    for k in range(2):
        record = json.load(open(os.path.join(cfg.out, "a2", f"fold{k}", "scores.json")))
        assert record["tracker"] == {"refine_passes": 2}
        assert record["stage"] == os.path.join(cfg.out, "a", f"fold{k}", "run", "step2.pt")
        assert not os.path.exists(os.path.join(cfg.out, "a2", f"fold{k}", "run"))  # nothing trained for it
    assert table["a2"]["tracker"] == {"refine_passes": 2} and table["a"]["tracker"] == {}
    assert "| a2 | iters=2, batch=2, tracker.refine_passes=2 | 2 |" in open(os.path.join(cfg.out, "crossval.md")).read()
    other = CrossvalConfig(init_from=cfg.init_from, data=cfg.data, out=cfg.out, folds=cfg.folds, workers=0,
                           candidates=(parse_candidate("a2:iters=2,batch=2,tracker.refine_passes=3"),),
                           device="cpu", progress=False)
    with pytest.raises(UserError, match="scored with other settings"):
        run_crossval(other)


def test_tracker_settings_are_typed_and_checked_by_the_tracker_config():
    assert parse_candidate("p:tracker.refine-passes=2,tracker.refine=false,tracker.ray_scale=1.1") == \
        ("p", (("tracker.refine_passes", 2), ("tracker.refine", False), ("tracker.ray_scale", 1.1)))
    for text, message in (("p:tracker.bogus=1", "TrackerConfig field"), ("p:tracker.refine=maybe", "true or false"),
                          ("p:tracker.refine_passes=two", "not a int")):
        with pytest.raises(UserError, match=message):
            parse_candidate(text)
    with pytest.raises(UserError, match="refine_passes"):
        CrossvalConfig(init_from="-", data=("-",), out="-", candidates=(parse_candidate("p:tracker.refine_passes=9"),))


def test_the_committed_cross_validation_reads_back_as_its_candidate():
    """checkpoints/campaign/crossval/base (candidate base:iters=500) resumes under today's recipe keys."""
    folds = sorted((REPO_ROOT / "checkpoints" / "campaign" / "crossval" / "base").glob("fold*/scores.json"))
    assert len(folds) == 5
    for path in folds:
        record = json.loads(path.read_text())
        assert set(record["settings"]) < set(SHIPPED_RECIPE), "written before the newest keys"
        assert recorded_settings(record) == recipe({"iters": 500}), path


def test_a_candidate_s_first_stage_cache_is_checked_before_any_work(tmp_path, ckpt, tiny_davis, folds):
    assert parse_candidate("real:real_first_p=0.5,real_first_cache=c.npz") == \
        ("real", (("real_first_p", 0.5), ("real_first_cache", "c.npz")))
    with pytest.raises(UserError, match="nowhere.npz: --real-first-cache: no such first-stage cache"):
        recipe({"real_first_p": 0.5, "real_first_cache": str(tmp_path / "nowhere.npz")})
    other = write_first_stage_cache(tmp_path / "other.npz", FirstStageCache(
        ["x"], [1], [[1.0, 1.0]], [[4.0] * 36], {"checkpoint": "another.pt", "first_stage_sha256": "0" * 64}))
    cfg = CrossvalConfig(init_from=str(ckpt), data=(str(tiny_davis),), out=str(tmp_path / "o"), folds=folds,
                         candidates=(("real", (("real_first_p", 0.5), ("real_first_cache", str(other)))),))
    with pytest.raises(UserError, match="other.npz: --real-first-cache was recorded from another first stage"):
        run_crossval(cfg)
    assert not (tmp_path / "o").exists()


def test_a_candidate_on_real_first_rays_reads_back_only_with_its_cache(tmp_path, ckpt, tiny_davis, folds):
    """A fold trained on a first-stage cache records the cache's sha256; the cache rebuilt, the fold is refused."""
    videos = videos_from_davis(tiny_davis)
    rows = [(v.name, r.frame_index, inner_point(v.decode_mask(r))) for v in videos for r in v.frames[1:] if r.mask_rle]
    cache = write_first_stage_cache(tmp_path / "first.npz", FirstStageCache(
        [n for n, _, _ in rows], [t for _, t, _ in rows], [c for _, _, c in rows], np.full((len(rows), 36), 9.0),
        {"first_stage_sha256": first_stage_sha256(load_model(ckpt))}))
    cfg = CrossvalConfig(init_from=str(ckpt), data=(str(tiny_davis),), out=str(tmp_path / "cv"), folds=folds,
                         candidates=(("real", TINY + (("real_first_p", 1.0), ("real_first_cache", str(cache)))),),
                         only_folds=(0,), workers=0, device="cpu", progress=False)
    run_crossval(cfg)
    record = json.load(open(tmp_path / "cv" / "real" / "fold0" / "scores.json"))
    assert record["real_first_cache_sha256"] == sha256(cache) and record["settings"]["real_first_p"] == 1.0
    before = os.stat(tmp_path / "cv" / "real" / "fold0" / "scores.json").st_mtime_ns
    run_crossval(cfg)  # read back, not retrained
    assert os.stat(tmp_path / "cv" / "real" / "fold0" / "scores.json").st_mtime_ns == before
    rebuilt = read_first_stage_cache(cache)
    write_first_stage_cache(cache, FirstStageCache(rebuilt.sequences, rebuilt.frames, rebuilt.centres,
                                                   rebuilt.rays * 0.5, rebuilt.meta))
    with pytest.raises(UserError, match="its stage was trained on another .*first.npz"):
        run_crossval(cfg)


def test_summary_noise_columns_follow_their_definition():
    rows = {f"s{i}": {"JF_M": 0.5 + 0.01 * i, "J_M": 0.6, "F_M": 0.4, "fps": 10.0} for i in range(6)}
    shifted = {n: r | {"JF_M": r["JF_M"] + 0.02} for n, r in rows.items()}
    rec = [{"settings": {"seed": 2}, "rows": dict(list(rows.items())[:3])},
           {"settings": {"seed": 2}, "rows": dict(list(rows.items())[3:])}]
    rec2 = [{"settings": {"seed": 3}, "rows": dict(list(shifted.items())[:3])},
            {"settings": {"seed": 3}, "rows": dict(list(shifted.items())[3:])}]
    a, b = summarise({"a": rec, "b": rec2})
    assert a["JF_M"] == pytest.approx(0.525) and a["per_fold_JF_M"] == pytest.approx([0.51, 0.54])
    assert b["diff_vs_first"] == pytest.approx(0.02) and b["sd_diff_vs_first"] == pytest.approx(0.0, abs=1e-12)
    assert 0 < a["sd_JF_M"] < np.std([r["JF_M"] for r in rows.values()])  # the mean's spread, not a sequence's
    assert "+2.0 (0.0)" in format_table([a, b])


def test_bootstrap_sd_shrinks_with_the_square_root_of_the_count():
    values = np.random.default_rng(1).normal(size=400)
    assert bootstrap_sd(values) == pytest.approx(values.std() / 20, rel=0.1)


@pytest.mark.parametrize("text, message", [
    ("x:size=3", "expected name:key=value"), ("x:refine_size=abc", "is not a int"),
    ("x:iters", "expected name:key=value")])
def test_bad_candidate_text_is_one_line(text, message):
    with pytest.raises(UserError, match=message):
        parse_candidate(text)


def test_candidate_values_are_checked_by_the_stage_config():
    assert parse_candidate("big:refine-size=192,seed=4") == ("big", (("refine_size", 192), ("seed", 4)))
    with pytest.raises(UserError, match="--refine-size 100"):
        recipe({"refine_size": 100})
    with pytest.raises(UserError, match="unknown setting 'bogus'"):
        recipe({"bogus": 1})


def test_val_sequences_are_refused_as_folds_and_as_training_data(tmp_path, ckpt, tiny_davis):
    with pytest.raises(UserError, match="blackswan are DAVIS-2016 val sequences"):
        CrossvalConfig(init_from=str(ckpt), data=(str(tiny_davis),), out=str(tmp_path / "o"), folds=(("blackswan",),))
    leaky = tmp_path / "leaky"
    (leaky / "JPEGImages" / "480p" / "blackswan").mkdir(parents=True)
    cfg = CrossvalConfig(init_from=str(ckpt), data=(str(leaky),), out=str(tmp_path / "o"), folds=(("x",),))
    with pytest.raises(UserError, match="blackswan in .*leaky: a DAVIS-2016 val sequence would be trained on"):
        run_crossval(cfg)
    assert not (tmp_path / "o").exists()


def test_missing_fold_sequence_and_bad_fold_index_are_refused(tmp_path, ckpt, tiny_davis):
    cfg = CrossvalConfig(init_from=str(ckpt), data=(str(tiny_davis),), out=str(tmp_path / "o"), folds=(("nosuch",),))
    with pytest.raises(UserError, match="no root holds the fold sequence nosuch"):
        run_crossval(cfg)
    with pytest.raises(UserError, match=r"--folds \[7\]"):
        CrossvalConfig(init_from=str(ckpt), data=(str(tiny_davis),), out=str(tmp_path / "o"), only_folds=(7,))
    with pytest.raises(UserError, match="distinct name"):
        CrossvalConfig(init_from=str(ckpt), data=(str(tiny_davis),), out=str(tmp_path / "o"),
                       candidates=(("a", ()), ("a", ())))


def test_command_refuses_bad_flags_in_one_line(tmp_path, capsys):
    assert crossval_cmd.main(["--init-from", "x.pt", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                              "--folds", "one"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--folds 'one'" in err
