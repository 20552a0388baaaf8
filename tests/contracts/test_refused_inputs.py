"""Inputs refused, outputs kept (issue 29, section 4): each test fails on the code before its fix.

1: a sequence name that is a path read outside the DAVIS root and wrote predictions outside --out (over true
masks). 3: `siampolar-train --overwrite` deleted the earlier run before checking its inputs. 6, 8: score and the
data scripts replaced earlier outputs without --overwrite (and took an output inside an input). 10: tracking
started at the first non-empty mask. 11: 1-2 frame sequences scored on the given mask (J&F 100). 12: object ids
{1, 3} scored a phantom object 2. 13: a cut-off video's damaged last frame was tracked. 14: unpadded frame names
tracked 1, 10, 11, 2. 17: soft/NaN masks and NaN weights were taken. (9, the ONNX cache's planted refine.onnx, is in
test_onnx_cache.py.)
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from cli_helpers import refused, script

from siampolar_lib.commands import evaluate as evaluate_cmd
from siampolar_lib.commands import score as score_cmd
from siampolar_lib.commands import train as train_cmd
from siampolar_lib.data.davis import (
    DavisError,
    check_first_mask,
    check_sequence_names,
    first_box,
    list_sequences,
    load_sequence,
    split_lists,
)
from siampolar_lib.errors import USER_ERRORS, CheckpointError, UserError
from siampolar_lib.evaluation import metrics as M
from siampolar_lib.evaluation.folders import evaluate_folder, evaluate_sequence_objects
from siampolar_lib.geometry.boxes import mask_to_box
from siampolar_lib.io import write_label_png
from siampolar_lib.models.config import QUICK
from siampolar_lib.models.siampolar import SiamPolar
from siampolar_lib.training.checkpoint import load_model, save_checkpoint
from siampolar_lib.video import frame_names, list_frame_files, read_frames


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under a folder, {relative path: bytes} (what must not change)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def davis(tmp_path, tiny_davis) -> Path:
    """A writable copy of tiny_davis (synth00, synth01: 5 frames of 96x64)."""
    return Path(shutil.copytree(tiny_davis, tmp_path / "DAVIS"))


def outside_sequence(davis: Path, where: Path) -> Path:
    """A folder outside the root holding synth00's frames AND masks: what `--sequences /abs/X` would read
    (root/JPEGImages/480p//abs/X is /abs/X for both) and write its predictions over."""
    where.mkdir(parents=True)
    for sub in ("JPEGImages", "Annotations"):
        for f in (davis / sub / "480p" / "synth00").iterdir():
            shutil.copy(f, where / f.name)
    return where


# ------------------------------------------------------------------ 1. a sequence name is one folder name

BAD_NAMES = ["/abs/X", "../..", "..", ".", "a/b", "a\\b", "", "x\0y", "../DAVIS/JPEGImages/480p/synth00"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=["absolute", "up-up", "up", "dot", "slash", "backslash", "empty",
                                                 "nul", "up-and-back"])
def test_1_load_sequence_refuses_a_name_that_is_a_path(davis, name):
    with pytest.raises(UserError, match=r"sequence name .* is refused") as e:
        load_sequence(davis, name)
    assert str(davis / "JPEGImages" / "480p") in str(e.value) and repr(name) in str(e.value)
    with pytest.raises(UserError, match=r"^--sequences: sequence name"):
        check_sequence_names(["synth00", name])


def test_1_an_absolute_name_no_longer_loads_a_folder_outside_the_root(davis, tmp_path):
    outside = outside_sequence(davis, tmp_path / "elsewhere" / "X")
    with pytest.raises(UserError, match="absolute path"):
        load_sequence(davis, str(outside))  # before: loaded /elsewhere/X's frames and masks


@pytest.mark.parametrize("line", ["../outside", "/abs/outside", "a/b", ".."])
def test_1_a_split_list_line_that_is_a_path_names_file_and_line(davis, line):
    listing = davis / "ImageSets" / "2016" / "val.txt"
    listing.write_text(f"synth00\n\n{line}\n")
    with pytest.raises(DavisError, match=r"val\.txt: line 3: sequence name") as e:
        list_sequences(davis, "val")
    assert repr(line) in str(e.value)


def test_1_a_pairs_list_path_with_dot_dot_is_refused(tmp_path):
    (tmp_path / "ImageSets" / "480p").mkdir(parents=True)
    (tmp_path / "ImageSets" / "480p" / "val.txt").write_text(
        "/JPEGImages/480p/ok/00000.jpg /Annotations/480p/ok/00000.png\n"
        "/JPEGImages/480p/../00000.jpg /Annotations/480p/../00000.png\n")
    with pytest.raises(DavisError, match=r"val\.txt: line 2: sequence name '\.\.'"):
        split_lists(tmp_path)


def test_1_evaluate_never_writes_predictions_outside_out(davis, tmp_path, capsys):
    """The probe: `--sequences /abs/X` tracked /abs/X and wrote its PNGs over /abs/X's true masks."""
    outside = outside_sequence(davis, tmp_path / "elsewhere" / "X")
    before = snapshot(outside)
    rc = evaluate_cmd.main(["--davis-root", str(davis), "--out", str(tmp_path / "e"), "--baselines", "static",
                            "--sequences", str(outside), "--no-progress"])
    refused(capsys, rc, repr(str(outside)), "absolute path")
    assert snapshot(outside) == before and not (tmp_path / "e").exists()


def test_1_evaluate_refuses_a_split_list_that_names_a_path(davis, tmp_path, capsys):
    outside = outside_sequence(davis, tmp_path / "elsewhere" / "X")
    before = snapshot(outside)
    (davis / "ImageSets" / "2016" / "val.txt").write_text(f"{outside}\n")
    rc = evaluate_cmd.main(["--davis-root", str(davis), "--out", str(tmp_path / "e"), "--baselines", "static",
                            "--no-progress"])
    refused(capsys, rc, "val.txt: line 1", repr(str(outside)))
    assert snapshot(outside) == before


@pytest.mark.parametrize("kind", ["absolute", "dot-dot"])
def test_1_score_refuses_sequences_that_are_paths(davis, tmp_path, capsys, kind):
    gt = davis / "Annotations" / "480p"
    pred = Path(shutil.copytree(gt, tmp_path / "pred"))
    name = str(gt / "synth00") if kind == "absolute" else "../480p/synth00"
    rc = score_cmd.main(["--gt", str(davis), "--pred", str(pred), "--out", str(tmp_path / "o"), "--processes", "1",
                         "--sequences", name])
    refused(capsys, rc, "--sequences", repr(name))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("tool", ["error_split", "learning_curve"])
def test_1_other_sequence_flags_name_the_flag(tmp_path, capsys, tool):
    from siampolar_lib.commands import error_split as error_split_cmd

    main = error_split_cmd.main if tool == "error_split" else script("learning_curve").main
    first = ["--checkpoint", str(tmp_path / "x.pt")] if tool == "error_split" else ["--points", str(tmp_path / "p")]
    refused(capsys, main([*first, "--sequences", "bear,../../etc"]), "--sequences", "'../../etc'")


def test_1_polar_upper_bound_refuses_a_list_line_that_is_a_path(davis, tmp_path, capsys):
    (davis / "ImageSets" / "2016" / "val.txt").write_text("synth00\n../../../elsewhere\n")
    rc = script("polar_upper_bound").main(["--davis-root", str(davis), "--rays", "8", "--centres", "mass",
                                           "--workers", "1"])
    refused(capsys, rc, "val.txt: line 2", "'../../../elsewhere'")


# ------------------------------------------------------------------ 3. train --overwrite checks first

def _train_args(data, out: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "--out", str(out), "--iters", "1", "--batch", "1", "--device", "cpu",
            "--no-progress", "--no-pretrained", *extra]


@pytest.fixture(scope="module")
def earlier_run(tiny_davis, tmp_path_factory) -> Path:
    """A finished one-step quick run (last.pt, train_log.csv, loss_curve.png)."""
    out = tmp_path_factory.mktemp("runs") / "run"
    assert train_cmd.main(_train_args(tiny_davis, out)) == 0
    assert {p.name for p in out.iterdir()} >= {"last.pt", "train_log.csv", "loss_curve.png"}
    return out


@pytest.fixture
def run_copy(earlier_run, tmp_path) -> Path:
    return Path(shutil.copytree(earlier_run, tmp_path / "run"))


def test_3_overwrite_with_bad_data_keeps_the_earlier_run(run_copy, tmp_path, capsys):
    before = snapshot(run_copy)
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    refused(capsys, train_cmd.main(_train_args(bad, run_copy, "--overwrite")), str(bad), "not valid JSON")
    assert snapshot(run_copy) == before, "a failed start deleted the earlier run"


def test_3_overwrite_with_an_init_of_another_size_keeps_the_earlier_run(run_copy, tiny_davis, tmp_path, capsys):
    before = snapshot(run_copy)
    lite = save_checkpoint(tmp_path / "lite0.pt", SiamPolar(dataclasses.replace(QUICK, name="other", num_rays=18),
                                                            pretrained=False))
    refused(capsys, train_cmd.main(_train_args(tiny_davis, run_copy, "--overwrite", "--init-from", str(lite))),
            str(lite))
    assert snapshot(run_copy) == before


@pytest.mark.parametrize("flags", [["--overwrite"], []], ids=["overwrite", "plain"])
def test_3_an_init_from_inside_out_is_refused_and_kept(run_copy, tiny_davis, capsys, flags):
    """Before: --overwrite deleted out/last.pt, then said '--init-from checkpoint not found'."""
    before = snapshot(run_copy)
    init = run_copy / "last.pt"
    refused(capsys, train_cmd.main(_train_args(tiny_davis, run_copy, *flags, "--init-from", str(init))),
            "--init-from", str(init), "contains")
    assert snapshot(run_copy) == before


def test_3_a_data_folder_inside_out_is_refused(tiny_davis, tmp_path, capsys):
    data = Path(shutil.copytree(tiny_davis, tmp_path / "out" / "DAVIS"))
    refused(capsys, train_cmd.main(_train_args(data, tmp_path / "out")), "--data", "contains")


def test_3_overwrite_still_replaces_a_run_that_starts(run_copy, tiny_davis, capsys):
    old = (run_copy / "last.pt").read_bytes()
    assert train_cmd.main(_train_args(tiny_davis, run_copy, "--overwrite", "--seed", "7")) == 0
    ck = torch.load(run_copy / "last.pt", weights_only=True)
    assert (run_copy / "last.pt").read_bytes() != old and ck["step"] == 1
    assert ck["meta"]["train_config"]["seed"] == 7


# ------------------------------------------------------------------ 6. score owns its outputs

def _score_args(davis: Path, pred: Path, out: Path | None, *extra: str) -> list[str]:
    return ["--gt", str(davis), "--pred", str(pred), *(["--out", str(out)] if out else []), "--processes", "1",
            *extra]


@pytest.mark.parametrize("default_out", [False, True], ids=["out", "default-out"])
def test_6_score_refuses_to_replace_earlier_results(davis, tmp_path, capsys, default_out):
    pred = Path(shutil.copytree(davis / "Annotations" / "480p", tmp_path / "pred"))
    out = pred if default_out else tmp_path / "o"
    args = _score_args(davis, pred, None if default_out else out)
    assert score_cmd.main(args) == 0
    capsys.readouterr()
    files = ["results.json", "global_results-val.csv", "per-sequence_results-val.csv"]
    before = {f: (out / f).read_bytes() for f in files}
    refused(capsys, score_cmd.main(args), "results.json", "--overwrite")
    assert {f: (out / f).read_bytes() for f in files} == before
    (pred / "synth01" / "00002.png").unlink()  # a failed score with --overwrite changes nothing
    refused(capsys, score_cmd.main(args + ["--overwrite"]), "missing prediction")
    assert {f: (out / f).read_bytes() for f in files} == before
    shutil.copy(davis / "Annotations" / "480p" / "synth01" / "00002.png", pred / "synth01" / "00002.png")
    cv2.imwrite(str(pred / "synth01" / "00002.png"), np.zeros((64, 96), np.uint8))
    assert score_cmd.main(args + ["--overwrite"]) == 0
    assert json.loads((out / "results.json").read_text())["J_M"] < 1.0, "--overwrite replaced the results"
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no staging or lock left behind"


def test_6_each_earlier_file_counts(davis, tmp_path, capsys):
    pred = Path(shutil.copytree(davis / "Annotations" / "480p", tmp_path / "pred"))
    out = tmp_path / "o"
    out.mkdir()
    (out / "per-sequence_results-test.csv").write_text("mine\n")
    refused(capsys, score_cmd.main(_score_args(davis, pred, out, "--split", "test")), "per-sequence_results-test.csv")
    assert (out / "per-sequence_results-test.csv").read_text() == "mine\n"
    assert score_cmd.main(_score_args(davis, pred, out)) == 0, "other splits' files are not in the way"


# ------------------------------------------------------------------ 8. data scripts own their outputs

def test_8_davis2coco_refuses_an_earlier_conversion(davis, tmp_path, capsys):
    d2c, out = script("davis2coco"), tmp_path / "coco"
    assert d2c.main(["--davis-root", str(davis), "--out", str(out)]) == 0
    capsys.readouterr()
    before = snapshot(out)
    refused(capsys, d2c.main(["--davis-root", str(davis), "--out", str(out)]), "480p_val.json", "--overwrite")
    assert snapshot(out) == before
    (out / "480p_val.json").write_text("{}")
    assert d2c.main(["--davis-root", str(davis), "--out", str(out), "--overwrite"]) == 0
    assert json.loads((out / "480p_val.json").read_text())["images"]


def test_8_davis2coco_refuses_an_out_inside_the_root(davis, capsys):
    refused(capsys, script("davis2coco").main(["--davis-root", str(davis), "--out", str(davis / "coco")]),
            "lies inside the input --davis-root")
    assert not (davis / "coco").exists()


def test_8_export_checkpoint_refuses_earlier_files_and_an_out_inside_a_run(earlier_run, tmp_path, capsys):
    exp = script("export_checkpoint")
    out = tmp_path / "ship.pt"
    assert exp.main(["--runs", str(earlier_run), "--out", str(out)]) == 0
    capsys.readouterr()
    for name in ("ship.pt", "ship_train_log.csv", "ship_loss_curve.png"):  # each file of an earlier export counts
        kept = tmp_path / "one" / name
        kept.parent.mkdir(exist_ok=True)
        shutil.copy(tmp_path / name, kept)
        refused(capsys, exp.main(["--runs", str(earlier_run), "--out", str(tmp_path / "one" / "ship.pt")]),
                name, "--overwrite")
        assert kept.read_bytes() == (tmp_path / name).read_bytes()
        kept.unlink()
    assert exp.main(["--runs", str(earlier_run), "--out", str(out), "--overwrite"]) == 0
    before = snapshot(earlier_run)
    refused(capsys, exp.main(["--runs", str(earlier_run), "--out", str(earlier_run / "ship.pt")]),
            "lies inside the input --runs")
    assert snapshot(earlier_run) == before


def stage_and_first_stage(tmp_path) -> tuple:
    """A quick network's stage checkpoint (step 4) and its first stage alone (step 9), as export_refined takes them."""
    torch.manual_seed(0)
    staged = SiamPolar(dataclasses.replace(QUICK, refine_iters=2), pretrained=False)
    first = SiamPolar(QUICK, pretrained=False)
    first.load_state_dict({k: v for k, v in staged.state_dict().items() if not k.startswith("refiner.")})
    return save_checkpoint(tmp_path / "stage.pt", staged, step=4), save_checkpoint(tmp_path / "first.pt", first, step=9)


def test_8_export_refined_refuses_earlier_files(tmp_path, capsys):
    stage, first_pt = stage_and_first_stage(tmp_path)
    log = tmp_path / "train_log.csv"
    log.write_text("step,loss\n1,0.5\n2,0.4\n3,0.3\n4,0.2\n")  # the stage's steps 1..4
    exp = script("export_refined")
    args = ["--stage", str(stage), "--log", str(log), "--first-stage", str(first_pt), "--out", str(tmp_path / "s.pt")]
    assert exp.main(args) == 0
    capsys.readouterr()
    before = snapshot(tmp_path)
    refused(capsys, exp.main(args), "s.pt", "--overwrite")
    (tmp_path / "s.pt").unlink()
    refused(capsys, exp.main(args), "s_refine_log.csv", "--overwrite")
    assert snapshot(tmp_path) == {k: v for k, v in before.items() if k != "s.pt"}
    assert exp.main(args + ["--overwrite"]) == 0 and (tmp_path / "s.pt").is_file()


@pytest.mark.parametrize("text", [b"\x89\xff random bytes \x00\x13", b"not,a,log\n1,2,3\n", b"step,loss\n1,0.5\n",
                                  b"step,loss\n1,0.5\n1,0.5\n2,0.4\n3,0.3\n4,0.2\n", b""])
def test_15_export_refined_ships_only_the_stages_own_log(tmp_path, capsys, text):
    """Any file, random bytes included, was shipped as the stage's log; now: a training log of its steps 1..4."""
    stage, first_pt = stage_and_first_stage(tmp_path)
    log = tmp_path / "log.csv"
    log.write_bytes(text)
    rc = script("export_refined").main(["--stage", str(stage), "--log", str(log), "--first-stage", str(first_pt),
                                        "--out", str(tmp_path / "s.pt")])
    refused(capsys, rc, f"{log}: --log is not the training log of stage.pt")
    assert not (tmp_path / "s.pt").exists() and not (tmp_path / "s_refine_log.csv").exists()


def test_8_polar_upper_bound_json_is_not_replaced_or_put_in_the_root(davis, tmp_path, capsys):
    pub = script("polar_upper_bound")
    base = ["--davis-root", str(davis), "--rays", "8", "--centres", "mass", "--workers", "1"]
    out = tmp_path / "bound.json"
    out.write_text("mine")
    refused(capsys, pub.main(base + ["--json", str(out)]), "bound.json", "--overwrite")
    assert out.read_text() == "mine"
    assert pub.main(base + ["--json", str(out), "--overwrite"]) == 0 and json.loads(out.read_text())["masks"] > 0
    capsys.readouterr()
    refused(capsys, pub.main(base + ["--json", str(davis / "bound.json")]), "lies inside the input --davis-root")
    assert not (davis / "bound.json").exists()


# ------------------------------------------------------------------ 10. tracking starts at frame 0

def _empty_first_mask(davis: Path, name: str = "synth00") -> None:
    first = davis / "Annotations" / "480p" / name / "00000.png"
    cv2.imwrite(str(first), np.zeros(cv2.imread(str(first), cv2.IMREAD_GRAYSCALE).shape, np.uint8))


def test_10_first_box_refuses_an_empty_first_mask(davis):
    seq = load_sequence(davis, "synth00")
    box = first_box(seq)
    _empty_first_mask(davis)
    with pytest.raises(DavisError, match=r"00000\.png: the first mask of sequence 'synth00' is empty") as e:
        first_box(seq)  # before: the box of frame 1, used on frame 0
    assert "\n" not in str(e.value) and box is not None


def test_10_check_first_mask_variants():
    masks = np.zeros((4, 20, 30), bool)
    with pytest.raises(UserError, match="every mask of sequence 's' is empty"):
        check_first_mask(masks, "s")
    masks[3, 5:9, 6:12] = True  # the object only in the last frame: the probe's J&F 100
    with pytest.raises(UserError, match="first mask of sequence 's' is empty.*cannot be initialised"):
        check_first_mask(masks, "s")
    masks[0, 2:4, 3:5] = True
    np.testing.assert_array_equal(check_first_mask(masks, "s"), mask_to_box(masks[0]))


def test_10_evaluate_refuses_a_sequence_whose_first_mask_is_empty(davis, tmp_path, capsys):
    _empty_first_mask(davis)
    rc = evaluate_cmd.main(["--davis-root", str(davis), "--out", str(tmp_path / "e"), "--baselines", "static",
                            "--sequences", "synth00", "--no-progress"])
    refused(capsys, rc, "first mask of sequence 'synth00' is empty")


@pytest.mark.parametrize("rows, cols", [(slice(30, 31), slice(40, 41)), (slice(30, 31), slice(20, 60))])
def test_21_a_first_mask_too_small_to_track_names_the_sequence(davis, tmp_path, capsys, rows, cols):
    """A 1-pixel (or 1-pixel-high) first mask: the tracker's 'init box (40, 30, 1, 1) is 1x1 px' named no sequence."""
    first = davis / "Annotations" / "480p" / "synth00" / "00000.png"
    mask = np.zeros(cv2.imread(str(first), cv2.IMREAD_GRAYSCALE).shape, np.uint8)
    mask[rows, cols] = 255
    cv2.imwrite(str(first), mask)
    with pytest.raises(DavisError, match=r"00000\.png: the first mask of sequence 'synth00': its box .* px"):
        first_box(load_sequence(davis, "synth00"))
    with pytest.raises(UserError, match="the first mask of sequence 's': its box"):
        check_first_mask(mask[None] > 0, "s")
    for method in (["--model", "quick", "--engine", "torch", "--baselines", ""], ["--baselines", "static"]):
        rc = evaluate_cmd.main(["--davis-root", str(davis), "--out", str(tmp_path / "e"), "--sequences", "synth00",
                                "--no-progress", "--device", "cpu", *method])
        refused(capsys, rc, "the first mask of sequence 'synth00': its box", "at least 2 px a side")
    assert not (tmp_path / "e").exists()


# ------------------------------------------------------------------ 11 and 12. what siampolar-score scores

def label_davis(root: Path, labels: list[np.ndarray], name: str = "seq") -> Path:
    """A one-sequence DAVIS folder whose masks are palette PNGs of `labels` (frames: grey JPEGs)."""
    frames = root / "JPEGImages" / "480p" / name
    frames.mkdir(parents=True)
    for t, lab in enumerate(labels):
        cv2.imwrite(str(frames / f"{t:05d}.jpg"), np.full((*lab.shape, 3), 90, np.uint8))
        write_label_png(root / "Annotations" / "480p" / name / f"{t:05d}.png", lab.astype(np.uint8))
    return root


def two_objects(n: int, ids=(1, 3)) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        lab = np.zeros((40, 60), np.uint8)
        lab[5:15, 5:20] = ids[0]
        if len(ids) > 1:
            lab[20:35, 30:55] = ids[1]
        out.append(lab)
    return out


@pytest.mark.parametrize("n", [1, 2])
def test_11_score_refuses_a_sequence_too_short_to_score(tmp_path, capsys, n):
    gt = label_davis(tmp_path / "DAVIS", two_objects(n, ids=(1,)))
    pred = tmp_path / "pred" / "seq"
    pred.mkdir(parents=True)
    for t in range(n):
        write_label_png(pred / f"{t:05d}.png", np.zeros((40, 60), np.uint8))  # wrong everywhere
    rc = score_cmd.main(_score_args(gt, tmp_path / "pred", tmp_path / "o"))
    refused(capsys, rc, "seq", "nothing to score", "[1:-1]")  # before: J&F 100 from the given mask
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("n", [0, 1, 2])
def test_11_metrics_refuse_fewer_than_three_frames(n):
    gt = np.zeros((n, 10, 10), bool)
    gt[:, 2:5, 2:5] = True
    with pytest.raises((UserError, ValueError), match="nothing to score" if n else "T >= 1"):
        M.evaluate_sequence(gt, gt)
    if n:
        with pytest.raises(UserError, match=f"a sequence of {n} frame"):
            M.scored_slice(n)
    assert M.scored_slice(3) == slice(1, 2)


def test_12_score_counts_only_the_ids_present(tmp_path):
    labels = two_objects(4, ids=(1, 3))
    gt = label_davis(tmp_path / "DAVIS", labels)
    pred = tmp_path / "pred" / "seq"
    for t, lab in enumerate(labels):
        write_label_png(pred / f"{t:05d}.png", np.where(lab == 1, 1, 0).astype(np.uint8))  # object 3 missed
    res = evaluate_folder(gt, tmp_path / "pred", processes=1)
    assert sorted(res["sequences"]) == ["seq_1", "seq_3"]  # before: seq_2 too, a phantom scoring 1.0
    assert res["J_M"] == pytest.approx(0.5)


def test_12_one_object_of_any_id_is_the_one_object_case(tmp_path):
    labels = two_objects(4, ids=(2,))
    label_davis(tmp_path / "DAVIS", labels)
    rows = evaluate_sequence_objects(tmp_path / "DAVIS" / "Annotations" / "480p" / "seq",
                                     tmp_path / "DAVIS" / "Annotations" / "480p" / "seq")
    assert list(rows) == [1] and rows[1]["J_M"] == 1.0  # before: objects 1 (phantom) and 2


def test_12_an_empty_first_ground_truth_frame_is_refused(tmp_path):
    labels = two_objects(4, ids=(1, 3))
    labels[0][:] = 0
    label_davis(tmp_path / "DAVIS", labels)
    seq = tmp_path / "DAVIS" / "Annotations" / "480p" / "seq"
    with pytest.raises(UserError, match=r"00000\.png: the first mask of sequence 'seq' is empty"):
        evaluate_sequence_objects(seq, seq)


# ------------------------------------------------------------------ 13. a cut-off video

@pytest.mark.parametrize("out_name", ["r.mp4", "result"])
def test_13_track_refuses_a_cut_off_video_and_writes_nothing(tmp_path, capsys, ckpt, out_name):
    """The damaged last frame of a truncated AVI was tracked and written (FFmpeg only warned), exit 0."""
    from siampolar_lib.commands import track as track_cmd

    video = tmp_path / "clip.avi"
    rng = np.random.default_rng(0)
    wr = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    for _ in range(4):
        wr.write(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    wr.release()
    video.write_bytes(video.read_bytes()[:-3000])
    rc = track_cmd.main(["--checkpoint", str(ckpt), "--video", str(video), "--out", str(tmp_path / out_name),
                         "--box", "30,40,40,40", "--engine", "torch", "--device", "cpu", "--no-progress"])
    refused(capsys, rc, "clip.avi: frame 3 is damaged", "--max-frames 3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi"]


# ------------------------------------------------------------------ 14. frames in time order

@pytest.mark.parametrize("names", [
    [f"{i}.jpg" for i in (1, 2, 3, 10, 11)],
    [f"frame_{i}.png" for i in (9, 10, 100)],
    [f"{i:05d}.jpg" for i in range(12)],
], ids=["unpadded", "prefixed", "padded"])
def test_14_frames_are_read_in_number_order(tmp_path, names):
    folder = tmp_path / "clip"
    folder.mkdir()
    for k, name in enumerate(reversed(names)):  # written out of order, each frame's grey value its index
        i = len(names) - 1 - k
        cv2.imwrite(str(folder / name), np.full((8, 8, 3), 20 * i, np.uint8))
    assert [p.name for p in list_frame_files(folder)] == names  # before: 1, 10, 11, 2, 3
    assert frame_names(folder) == [Path(n).stem for n in names]
    values = [int(round(f.mean())) for f in read_frames(folder)]
    assert values == sorted(values), values


def test_14_a_davis_sequence_with_unpadded_names_is_in_order(davis):
    for sub, ext in (("JPEGImages", ".jpg"), ("Annotations", ".png")):
        for p in sorted((davis / sub / "480p" / "synth00").glob(f"*{ext}")):
            p.rename(p.with_name(f"{int(p.stem)}{ext}"))
    for p in (davis / "JPEGImages" / "480p" / "synth00").glob("*.jpg"):
        if p.stem in ("3", "4"):
            p.rename(p.with_name(f"1{p.stem}.jpg"))  # frames 0, 1, 2, 13, 14: '13' sorted before '2' as strings
            m = davis / "Annotations" / "480p" / "synth00" / f"{p.stem}.png"
            m.rename(m.with_name(f"1{p.stem}.png"))
    seq = load_sequence(davis, "synth00")
    assert [p.stem for p in seq.frame_paths] == ["0", "1", "2", "13", "14"]


# ------------------------------------------------------------------ 17. masks are masks, weights are numbers

@pytest.mark.parametrize("fn", [M.jaccard, M.f_measure], ids=["jaccard", "f_measure"])
def test_17_soft_or_nan_float_masks_are_refused(fn):
    gt = np.zeros((20, 20), bool)
    gt[5:12, 5:12] = True
    nan = np.where(gt, np.nan, 0.0)  # before: NaN on the object scored 1.0
    soft = gt * 0.4
    for bad in (nan, soft, np.where(gt, np.inf, 0.0)):
        with pytest.raises(UserError, match="not 0 or 1"):
            fn(bad, gt)
        with pytest.raises(UserError, match="ground-truth"):
            fn(gt, bad)
    assert fn(gt.astype(np.float32), gt) == 1.0  # a 0/1 float mask is a mask
    assert fn(gt.astype(np.uint8) * 3, gt) == 1.0  # an integer label mask: nonzero is the object
    with pytest.raises(USER_ERRORS, match="not 0 or 1"):
        M.batched_jaccard(np.stack([nan, nan]), np.stack([gt, gt]))


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_17_a_checkpoint_with_non_finite_weights_is_refused(tmp_path, value, tiny_davis, capsys):
    model = SiamPolar(QUICK, pretrained=False)
    name = next(k for k, v in model.state_dict().items() if v.is_floating_point() and k.startswith("head."))
    with torch.no_grad():
        model.state_dict()[name].view(-1)[0] = value
    path = save_checkpoint(tmp_path / "bad.pt", model)
    with pytest.raises(CheckpointError, match=rf"bad\.pt: weight {name} holds 1 non-finite value"):
        load_model(path)
    refused(capsys, train_cmd.main(_train_args(tiny_davis, tmp_path / "run", "--init-from", str(path))),
            "bad.pt", name, "non-finite")
    assert not (tmp_path / "run").exists()
