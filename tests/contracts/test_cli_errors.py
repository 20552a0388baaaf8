"""Every tool refuses bad input in one line (exit 2, no traceback), never mixes or loses runs (issue 10).

Each test names the defect it pins down; each fails on the code before the fix. Tools run in-process
(`main(argv)`, fast) with tiny synthetic data, plus a few real subprocesses for the exit status and stderr.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from cli_helpers import refused, script

from siampolar_lib.apps import track_video as track
from siampolar_lib.commands import demo as demo_cmd
from siampolar_lib.commands import evaluate as evaluate_cmd
from siampolar_lib.commands import score as score_cmd
from siampolar_lib.commands import track as track_cmd
from siampolar_lib.commands import train as train_cmd
from siampolar_lib.outputs import output_lock
from siampolar_lib.training import train as train_mod
from siampolar_lib.training.checkpoint import check_resume
from siampolar_lib.training.config import TrainConfig
from siampolar_lib.training.log import read_log

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


# ------------------------------------------------------------------------------------------- helpers

def truncated_copy(src: Path, dst: Path, broken: str) -> Path:
    """Copy a frame folder and cut `broken` to half its bytes (libjpeg decodes the rest as grey)."""
    dst.mkdir()
    for p in sorted(src.iterdir()):
        data = p.read_bytes()
        (dst / p.name).write_bytes(data[: len(data) // 2] if p.name == broken else data)
    return dst


def trk(ckpt, video, out, *extra) -> list[str]:
    return ["--checkpoint", str(ckpt), "--video", str(video), "--out", str(out), "--no-progress", *extra]


# ------------------------------------------------------------------------- 1. train into an existing run

def test_1_train_refuses_an_existing_run_without_resume_or_overwrite(tiny_davis, tmp_path, capsys):
    run = tmp_path / "x"
    run.mkdir()
    (run / "last.pt").write_bytes(b"a 30-step run")
    (run / "train_log.csv").write_text("step\n")
    rc = train_cmd.main(["--data", str(tiny_davis), "--out", str(run), "--iters", "3", "--device", "cpu"])
    refused(capsys, rc, str(run), "--resume", "--overwrite")
    assert (run / "last.pt").read_bytes() == b"a 30-step run"  # nothing destroyed
    rc = train_cmd.main(["--data", str(tiny_davis), "--out", str(run), "--iters", "3", "--resume", "--overwrite"])
    refused(capsys, rc, "contradict")


# ----------------------------------------------------------------------------------- 2. runs mix

def test_2_evaluate_refuses_a_used_out_and_overwrite_replaces_it_whole(tiny_davis, tmp_path, capsys, ckpt):
    out = tmp_path / "eval"
    args = ["--davis-root", str(tiny_davis), "--baselines", "static", "--out", str(out), "--no-progress",
            "--checkpoint", str(ckpt), "--max-frames", "4"]
    assert evaluate_cmd.main(args) == 0
    capsys.readouterr()
    (out / "static" / "stale_from_another_run.png").write_bytes(b"x")
    refused(capsys, evaluate_cmd.main(args), str(out), "not empty", "--overwrite")
    assert (out / "static" / "stale_from_another_run.png").exists()
    assert evaluate_cmd.main(args + ["--overwrite"]) == 0
    assert not (out / "static" / "stale_from_another_run.png").exists()  # replaced whole: nothing mixed
    doc = json.loads((out / "results.json").read_text())
    run = doc["run"]
    assert run["method"] == "siampolar" and run["mode"] == "search" and run["checkpoint"] == str(ckpt)
    assert run["checkpoint_sha256"] == __import__("hashlib").sha256(ckpt.read_bytes()).hexdigest()
    assert run["sequences"] == sorted(run["frames"]) and set(run["frames"].values()) == {4}
    assert run["tracker"]["mode"] == "search" and run["tracker"]["state_grid"] > 0  # the settings that scored it
    assert run["version"] and json.loads((out / "static" / "results.json").read_text())["run"]["method"] == "static"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")], "no temp or lock left beside out"


def test_2_a_concurrent_run_into_the_same_out_is_refused(tiny_davis, tmp_path, capsys, frames_dir, ckpt):
    out = tmp_path / "busy"
    with output_lock(out):  # another run holds it
        rc = evaluate_cmd.main(["--davis-root", str(tiny_davis), "--baselines", "static", "--out", str(out),
                            "--no-progress"])
        refused(capsys, rc, str(out), "another run is writing")
        refused(capsys, track_cmd.main(trk(ckpt, frames_dir, out, "--box", "30,40,40,40")), "another run is writing")
    assert not out.exists()


def test_2_track_refuses_an_earlier_run(tmp_path, capsys, frames_dir, ckpt):
    out = tmp_path / "t.gif"
    assert track_cmd.main(trk(ckpt, frames_dir, out, "--box", "30,40,40,40")) == 0
    capsys.readouterr()
    refused(capsys, track_cmd.main(trk(ckpt, frames_dir, out, "--box", "30,40,40,40")), "t.gif", "--overwrite")
    assert track_cmd.main(trk(ckpt, frames_dir, out, "--box", "30,40,40,40", "--max-frames", "2", "--overwrite")) == 0
    assert sorted(p.name for p in (tmp_path / "t_masks").iterdir()) == ["00000.png", "00001.png"]  # not 4
    # The library (notebooks rerun their cells) replaces an earlier track run as a whole, nothing else.
    track.track_video(ckpt, frames_dir, (30, 40, 40, 40), out, max_frames=3, progress=False)
    assert len(list((tmp_path / "t_masks").iterdir())) == 3
    (tmp_path / "t_masks" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="already exists"):
        track.track_video(ckpt, frames_dir, (30, 40, 40, 40), out, max_frames=3, progress=False)


# ----------------------------------------------------------------------------- 3. too few frames

@pytest.mark.parametrize("n", ["-1", "0", "1", "2"])
def test_3_demo_refuses_fewer_than_three_frames(tmp_path, capsys, ckpt, n):
    rc = demo_cmd.main(["--out", str(tmp_path / "demo"), "--checkpoint", str(ckpt), "--max-frames", n, "--no-progress"])
    refused(capsys, rc, f"--max-frames {n}", "at least 3 frames")
    assert not (tmp_path / "demo").exists()


# ---------------------------------------------------------------------- 4. one frame reader for all

def test_4_track_names_a_truncated_jpeg(tmp_path, capsys, frames_dir, ckpt):
    bad = truncated_copy(frames_dir, tmp_path / "bad", "00002.jpg")
    out = tmp_path / "o.gif"
    refused(capsys, track_cmd.main(trk(ckpt, bad, out, "--box", "30,40,40,40")), "00002.jpg", "truncated JPEG")
    assert not out.exists() and not (tmp_path / "o_masks").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temp left on a handled error"


def test_4_evaluate_and_track_read_frames_with_the_same_rule(tmp_path, frames_dir):
    from siampolar_lib.data.davis import DavisError, read_frame
    from siampolar_lib.video import VideoError, read_image

    bad = truncated_copy(frames_dir, tmp_path / "bad", "00001.jpg") / "00001.jpg"
    with pytest.raises(VideoError) as a:
        read_image(bad)
    with pytest.raises(DavisError) as b:
        read_frame(bad)
    assert str(a.value) == str(b.value) == f"{bad}: truncated JPEG (no end-of-image marker)"


# ------------------------------------------------------------------------------------- 5. metrics

def test_5_metrics_errors_are_one_line(tiny_davis, tmp_path, capsys):
    gt = tiny_davis / "Annotations" / "480p"
    seq = sorted(p.name for p in gt.iterdir())[0]
    pred = tmp_path / "pred"
    import shutil

    shutil.copytree(gt, pred)
    args = ["--gt", str(tiny_davis), "--pred", str(pred), "--out", str(tmp_path / "m"), "--processes", "1"]
    assert score_cmd.main(args) == 0
    capsys.readouterr()
    args.append("--overwrite")  # the refusals below are the inputs', not the earlier results' (issue 29, 6)
    (pred / seq / "00003.png").unlink()
    refused(capsys, score_cmd.main(args), f"{seq}/00003.png", "missing prediction")
    cv2.imwrite(str(pred / seq / "00003.png"), np.zeros((10, 10), np.uint8))
    refused(capsys, score_cmd.main(args), f"{seq}/00003.png", "size mismatch")
    data = (gt / seq / "00003.png").read_bytes()
    (pred / seq / "00003.png").write_bytes(data[: len(data) // 2])
    refused(capsys, score_cmd.main(args), f"{seq}/00003.png", "not a readable mask image")
    refused(capsys, score_cmd.main(["--gt", str(tiny_davis), "--pred", str(tmp_path / "nope")]), "nope", "not found")
    refused(capsys, score_cmd.main(["--gt", str(tmp_path / "nogt"), "--pred", str(pred)]), "nogt", "not found")


# ------------------------------------------------------------------------------------ 6. train errors

def test_6_train_errors_are_one_line(tiny_davis, tmp_path, capsys, ckpt):
    base = ["--data", str(tiny_davis), "--iters", "2", "--batch", "1", "--device", "cpu", "--no-progress"]
    refused(capsys, train_cmd.main(base + ["--out", str(tmp_path / "r0"), "--resume"]), "last.pt", "no checkpoint")
    refused(capsys, train_cmd.main(["--data", str(tmp_path / "nodata"), "--out", str(tmp_path / "r1"),
                                    "--iters", "2"]), "nodata", "no such training data")
    refused(capsys, train_cmd.main(["--out", str(tmp_path / "r1"), "--iters", "2"]), "--data")
    (tmp_path / "afile").write_text("x")
    refused(capsys, train_cmd.main(base + ["--out", str(tmp_path / "afile")]), "afile", "is a file")
    corrupt = tmp_path / "r2"
    corrupt.mkdir()
    (corrupt / "last.pt").write_bytes(b"PK\x03\x04 half a zip")
    refused(capsys, train_cmd.main(base + ["--out", str(corrupt), "--resume"]), "last.pt", "not a readable")
    other = tmp_path / "r3"
    other.mkdir()
    import shutil

    shutil.copy(ckpt, other / "last.pt")
    refused(capsys, train_cmd.main(base + ["--out", str(other), "--resume", "--config", "lite0"]),
            "'quick' network, but --model is 'lite0'")
    refused(capsys, train_cmd.main(base + ["--out", str(tmp_path / "r4"), "--iters", "0"]), "--iters")
    if not torch.cuda.is_available():
        refused(capsys, train_cmd.main(base + ["--out", str(tmp_path / "r5"), "--device", "cuda"]), "cuda")


# ------------------------------------------------- 7. checkpoint and log in one step; 8. stale temps

def _cfg(data, out, **kw) -> TrainConfig:
    from siampolar_lib.models.config import get_config
    from siampolar_lib.training.config import OptimConfig

    base = dict(model=get_config("quick"), data=(str(data),), out=str(out), iters=4, batch=2,
                optim=OptimConfig(lr=0.01, warmup=2), ckpt_every=1, device="cpu", seed=3, progress=False,
                pretrained=False)
    return TrainConfig(**{**base, **kw})


@pytest.mark.slow
def test_7_a_crash_between_checkpoint_and_csv_loses_no_log_row(synthetic_davis, tmp_path, monkeypatch, capsys):
    """Killed after last.pt (step 2) was written but before train_log.csv: the resumed run's log holds 1..4 once,
    and export_checkpoint labels the weights with their true step."""
    real, calls = train_mod.write_log, []

    def crash_on_second(path, rows):
        calls.append(len(rows))
        if len(calls) == 2:
            raise KeyboardInterrupt("killed between the checkpoint and the log")
        real(path, rows)

    monkeypatch.setattr(train_mod, "write_log", crash_on_second)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_mod.train(_cfg(synthetic_davis, run))
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 2
    assert [r["step"] for r in read_log(run / "train_log.csv")] == [1]  # the CSV lags one step behind
    exporter = script("export_checkpoint")
    assert exporter.main(["--runs", str(run), "--out", str(tmp_path / "ship.pt")]) == 0
    assert torch.load(tmp_path / "ship.pt", weights_only=True)["step"] == 2  # not "step 1"
    monkeypatch.setattr(train_mod, "write_log", real)
    (run / "last.pt.stale123.tmp").write_bytes(b"half")  # 8: a killed save's temp file
    train_mod.train(_cfg(synthetic_davis, run, resume=True))
    rows = read_log(run / "train_log.csv")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    ck = torch.load(run / "last.pt", weights_only=True)
    assert ck["step"] == 4 and [r["step"] for r in ck["log"]] == [1, 2, 3, 4]
    assert not list(run.glob("*.tmp")) and not list(run.glob(".*tmp*"))


@pytest.mark.slow
def test_7_random_kills_then_resume_keep_every_step_once(synthetic_davis, tmp_path):
    """Real SIGKILLs at random moments of a quick run (checkpoint every step); resumed until done."""
    import random
    import signal
    import time

    rng = random.Random(10)
    straight = train_mod.train(_cfg(synthetic_davis, tmp_path / "straight", iters=6))
    run = tmp_path / "killed"
    cmd = [sys.executable, "-m", "siampolar_lib.commands.train", "--config", "quick", "--data", str(synthetic_davis),
           "--out", str(run), "--iters", "6", "--batch", "2", "--lr", "0.01", "--warmup", "2", "--ckpt-every", "1",
           "--device", "cpu", "--seed", "3", "--no-pretrained", "--no-progress"]
    kills = 0
    for attempt in range(12):
        resume = ["--resume"] if (run / "last.pt").exists() else []
        # as many threads as `straight` had (their summation order, so their weights, are then the same)
        proc = subprocess.Popen(cmd + resume, env={**ENV, "OMP_NUM_THREADS": str(torch.get_num_threads())},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if kills < 3:
            before = (run / "last.pt").stat().st_mtime_ns if (run / "last.pt").exists() else 0
            t_end = time.time() + 600
            while proc.poll() is None and time.time() < t_end:  # wait for the next checkpoint, then a bit
                if (run / "last.pt").exists() and (run / "last.pt").stat().st_mtime_ns != before:
                    break
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 1.5))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
        _, err = proc.communicate(timeout=900)
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, err
    assert kills >= 1 and proc.returncode == 0
    ck = torch.load(run / "last.pt", weights_only=True)
    ref = torch.load(straight["checkpoint"], weights_only=True)
    assert ck["step"] == 6 and [r["step"] for r in read_log(run / "train_log.csv")] == [1, 2, 3, 4, 5, 6]
    assert all(torch.equal(ck["model"][k], ref["model"][k]) for k in ref["model"])  # the step matches its weights
    assert not list(run.glob("*.tmp"))


def test_8_davis2coco_cleans_stale_temps_and_refuses_a_file_out(tiny_davis, tmp_path, capsys):
    d2c = script("davis2coco")
    out = tmp_path / "coco"
    out.mkdir()
    stale = out / ".480p_val.json.abc123"
    stale.write_text("{half")
    assert d2c.main(["--davis-root", str(tiny_davis), "--out", str(out)]) == 0
    assert not stale.exists() and (out / "480p_val.json").is_file()
    capsys.readouterr()
    (tmp_path / "f.json").write_text("{}")
    refused(capsys, d2c.main(["--davis-root", str(tiny_davis), "--out", str(tmp_path / "f.json")]),
            "f.json", "is a file")


# ----------------------------------------------------------------------------------- 9. streaming

def test_9_track_checks_the_checkpoint_before_reading_a_frame(tmp_path, capsys, frames_dir, monkeypatch):
    from siampolar_lib import video

    reads = []
    real = video.read_image
    monkeypatch.setattr(video, "read_image", lambda p: reads.append(p) or real(p))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    refused(capsys, track_cmd.main(trk(tmp_path / "bad.pt", frames_dir, tmp_path / "o", "--box", "30,40,40,40")),
            "bad.pt")
    assert reads == [] and not (tmp_path / "o").exists()


def test_9_track_streams_frames_one_at_a_time(tmp_path, frames_dir, ckpt, monkeypatch):
    """When frame k is tracked, only frames 0..k have been read and masks 0..k-1 are already on disk."""
    from siampolar_lib import video
    from siampolar_lib.tracking.tracker import Tracker

    reads, seen = [], []
    real_read, real_track = video.read_image, Tracker.track
    monkeypatch.setattr(video, "read_image", lambda p: reads.append(p) or real_read(p))

    def spy(self, frame):
        staged = [p for p in tmp_path.glob(".o.partial-*/masks/*.png")]
        seen.append((len(reads), len(staged)))
        return real_track(self, frame)

    monkeypatch.setattr(Tracker, "track", spy)
    track.track_video(ckpt, frames_dir, (30, 40, 40, 40), tmp_path / "o", device="cpu", progress=False)
    assert seen == [(2, 1), (3, 2), (4, 3)]
    assert len(list((tmp_path / "o" / "masks").glob("*.png"))) == 4 and (tmp_path / "o" / "overlay.mp4").is_file()


def test_9_streamed_gif_holds_every_frame(tmp_path):
    from siampolar_lib.video import read_frames
    from siampolar_lib.video_writers import VideoSink

    frames = [np.full((24, 32, 3), (40 * i, 255 - 40 * i, 90), np.uint8) for i in range(5)]
    with VideoSink(tmp_path / "a.gif", fps=10) as sink:
        for f in frames:
            sink.write(f)
    back = read_frames(tmp_path / "a.gif")
    assert len(back) == 5
    assert all(np.abs(b.astype(int) - f).max() <= 8 for b, f in zip(back, frames))  # each its own palette


# ------------------------------------------------------------------------------ 10. output paths first

def test_10_bad_output_paths_fail_before_any_work(tiny_davis, tmp_path, capsys, frames_dir, ckpt):
    afile = tmp_path / "afile"
    afile.write_text("x")
    refused(capsys, track_cmd.main(trk(ckpt, frames_dir, afile, "--box", "30,40,40,40")), "afile", "is a file")
    pub = script("polar_upper_bound")
    refused(capsys, pub.main(["--davis-root", str(tiny_davis), "--json", str(tmp_path)]), "--json is a folder")
    refused(capsys, pub.main(["--davis-root", str(tiny_davis), "--json", str(afile / "x.json")]), "under a file")
    assert pub.main(["--davis-root", str(tiny_davis), "--json", str(tmp_path / "new" / "b.json"), "--rays", "8",
                     "--centres", "mass", "--workers", "1"]) == 0
    bound = json.loads((tmp_path / "new" / "b.json").read_text())
    assert bound["masks"] + bound["empty"] == 5 and bound["masks"] > 0  # the val sequence's 5 masks
    capsys.readouterr()
    exp = script("export_checkpoint")
    refused(capsys, exp.main(["--runs", str(tmp_path), "--out", str(tmp_path)]), "is a folder")
    refused(capsys, script("make_synthetic_davis").main(["--out", str(afile)]), "afile", "is a file")
    refused(capsys, script("make_synthetic_davis").main(["--out", str(tmp_path / "s"), "--frames", "2"]),
            "at least 1 sequence of 3 frames")


# -------------------------------------------------------------------------------------- 11. boxes

def test_11_box_edge_cases(tmp_path, capsys, frames_dir, ckpt):
    out = tmp_path / "neg"
    assert track_cmd.main(trk(ckpt, frames_dir, out, "--box", "-10,40,50,40", "--max-frames", "2")) == 0  # no "="
    assert track_cmd.main(trk(ckpt, frames_dir, tmp_path / "neg2", "--box=-10,40,50,40", "--max-frames", "2")) == 0
    first = cv2.imread(str(out / "masks" / "00000.png"), cv2.IMREAD_GRAYSCALE) > 0
    assert first[40:80, 0:40].all() and first.sum() == 40 * 40  # clipped to the frame
    capsys.readouterr()
    line = refused(capsys, track_cmd.main(trk(ckpt, frames_dir, tmp_path / "a", "--box", "500.5,10,20,20")),
                   "(500.5, 10, 20, 20)", "outside the 160x120 image")
    assert "np." not in line
    refused(capsys, track_cmd.main(trk(ckpt, frames_dir, tmp_path / "b", "--box", "10,10,0.5,0.5")),
            "at least 2 px a side")
    refused(capsys, track_cmd.main(trk(ckpt, frames_dir, tmp_path / "c", "--box", "-30,10,31,20")),
            "only 1x20 px of it lie inside")


# ------------------------------------------------------------------ 12. demo --sequences 0, --data drift

@pytest.mark.parametrize("value", ["0", "-2"])
def test_12_demo_refuses_no_sequences(tmp_path, capsys, ckpt, value):
    rc = demo_cmd.main(["--out", str(tmp_path / "d"), "--checkpoint", str(ckpt), f"--sequences={value}",
                        "--no-progress"])
    refused(capsys, rc, f"--sequences {value}", "at least 1 sequence")


def test_12_resume_with_other_data_warns(tmp_path, capsys):
    saved = {"meta": {"train_config": {"data": ["/data/a"], "batch": 2}}, "config": "quick",
             "optimizer": {}, "scheduler": {}, "scaler": {}, "rng": {}}
    cfg = TrainConfig(data=("/data/b",), batch=2)
    check_resume(saved, Path("last.pt"), cfg)
    err = capsys.readouterr().err
    assert "warning: resuming with --data ['/data/b'], the run used ['/data/a']" in err
    check_resume(saved, Path("last.pt"), TrainConfig(data=("/data/a",), batch=2))
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------------ real processes, every tool

@pytest.mark.slow  # ten interpreter starts, each importing torch
@pytest.mark.parametrize("argv, needle", [
    (["-m", "siampolar_lib.commands.train", "--data", "/nonexistent/d", "--out", "{tmp}/r", "--iters", "2"],
     "/nonexistent/d"),
    (["-m", "siampolar_lib.commands.evaluate", "--baselines", "static", "--max-frames", "1", "--out", "{tmp}/e"],
     "--max-frames 1"),
    (["-m", "siampolar_lib.commands.track", "--checkpoint", "{tmp}/none.pt", "--video", "{tmp}", "--box", "-1,2,3",
      "--out", "{tmp}/t"], "four numbers"),
    (["-m", "siampolar_lib.commands.score", "--gt", "{tmp}/nogt", "--pred", "{tmp}"], "nogt"),
    (["-m", "siampolar_lib.commands.demo", "--sequences", "0", "--out", "{tmp}/d"], "--sequences 0"),
    (["data_scripts/davis2coco.py", "--davis-root", "{tmp}/nodavis", "--out", "{tmp}/c"], "nodavis"),
    (["data_scripts/export_checkpoint.py", "--runs", "{tmp}/norun", "--out", "{tmp}/m.pt"], "norun"),
    (["data_scripts/polar_upper_bound.py", "--davis-root", "{tmp}/nodavis"], "nodavis"),
    (["data_scripts/make_synthetic_davis.py", "--out", "{tmp}/s", "--size", "10"], "854x480"),
    (["-m", "siampolar_lib.commands.evaluate", "--bogus-flag", "--out", "{tmp}/e"], "--bogus-flag"),
])
def test_every_cli_in_a_real_process(tmp_path, argv, needle):
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, env=ENV, timeout=600)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr
    assert not [p for p in tmp_path.iterdir()], "nothing written on refusal"


def test_empty_sequence_lists_and_a_split_that_is_a_path_are_refused(capsys, synthetic_davis, tmp_path):
    """issue 22: `--sequences ","` evaluated everything; `--split ../../x` wrote both CSVs into one file elsewhere."""
    gt = str(synthetic_davis)
    refused(capsys, score_cmd.main(["--gt", gt, "--pred", gt + "/Annotations/480p", "--out", str(tmp_path / "o"),
                                  "--split", "../../x"]), "--split")
    refused(capsys, score_cmd.main(["--gt", gt, "--pred", gt + "/Annotations/480p", "--out", str(tmp_path / "o"),
                                  "--sequences", ","]), "--sequences")
    refused(capsys, evaluate_cmd.main(["--davis-root", gt, "--out", str(tmp_path / "e"), "--baselines", "static",
                                    "--sequences", " , "]), "--sequences")
    assert not (tmp_path / "o").exists() and not (tmp_path / "e").exists()


def test_the_selection_scripts_are_one_line_too(capsys, tmp_path):
    """issue 22: select_model.py and tune_tracker.py printed argparse's usage block (and a SystemExit string)."""
    select, tune = script("select_model"), script("tune_tracker")
    refused(capsys, select.main(["--checkpoints", "a.pt", "--bogus"]), "--bogus")
    refused(capsys, select.main(["--checkpoints", "a.pt", "--sequences", "blackswan"]), "--sequences",
            "val sequences")
    refused(capsys, tune.main(["--checkpoint", "a.pt", "--bogus"]), "--bogus")
    refused(capsys, tune.main(["--checkpoint", str(tmp_path / "none.pt")]), "none.pt")


# ------------------------------------------------------- issue 29, section 4: hangs (19) and ignored data (22)

def test_19_a_fifo_is_refused_not_read_forever(tmp_path):
    """`siampolar-track --video <FIFO>` blocked forever in the decoder's open."""
    from siampolar_lib.errors import VideoError
    from siampolar_lib.video import check_source, read_frames

    fifo = tmp_path / "clip.mp4"
    os.mkfifo(fifo)
    for read in (check_source, read_frames):
        with pytest.raises(VideoError, match="clip.mp4: not a video file or a frame folder"):
            read(fifo)


@pytest.mark.parametrize("tool", ["demo", "export_onnx"])
def test_22_a_davis_root_variable_naming_no_davis_folder_is_refused(tmp_path, capsys, ckpt, monkeypatch, tool):
    """With SIAMPOLAR_DAVIS_ROOT=/nonsense the demo ran on synthetic data and export-onnx checked a synthetic frame."""
    from siampolar_lib.commands import export_onnx as export_cmd

    nonsense = tmp_path / "nonsense"
    monkeypatch.setenv("SIAMPOLAR_DAVIS_ROOT", str(nonsense))
    out = tmp_path / "out"
    if tool == "demo":
        rc = demo_cmd.main(["--out", str(out), "--checkpoint", str(ckpt), "--sequences", "1", "--max-frames", "3",
                            "--baselines", "", "--engine", "torch", "--device", "cpu", "--no-progress"])
    else:
        rc = export_cmd.main(["--checkpoint", str(ckpt), "--out", str(out)])
    refused(capsys, rc, f"$SIAMPOLAR_DAVIS_ROOT {nonsense}: not a DAVIS folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_21_make_synthetic_davis_seed_names_the_flag(tmp_path, capsys):
    """`make_synthetic_davis --seed -1` said only "expected non-negative integer"."""
    refused(capsys, script("make_synthetic_davis").main(["--out", str(tmp_path / "s"), "--seed", "-1"]), "--seed -1")
    assert not (tmp_path / "s").exists()


# ------------------------------------------------- issue 29, section 4: long names and raw errors (18)

@pytest.mark.parametrize("flag", ["--out", "--video", "--checkpoint"])
def test_18_a_path_component_over_255_bytes_is_one_line(tmp_path, capsys, frames_dir, ckpt, flag):
    """Any path component over 255 bytes (an --out, --video or --checkpoint) was an OSError traceback."""
    long = tmp_path / ("n" * 300)
    args = {"--out": tmp_path / "o", "--video": frames_dir, "--checkpoint": ckpt} | {flag: long}
    rc = track_cmd.main(trk(args["--checkpoint"], args["--video"], args["--out"], "--box", "30,40,40,40"))
    line = refused(capsys, rc, "a path component of 300 bytes", "255")
    assert len(line) < 200 and long.name not in os.listdir(tmp_path)


def test_18_a_long_out_for_evaluate_and_a_data_script(tiny_davis, tmp_path, capsys, ckpt):
    """The same for evaluate's --out (its _masks folder and lock are made beside it) and a data script's --out."""
    long = tmp_path / ("e" * 256)
    rc = evaluate_cmd.main(["--checkpoint", str(ckpt), "--davis-root", str(tiny_davis), "--out", str(long),
                            "--engine", "torch", "--no-progress"])
    refused(capsys, rc, "a path component of 256 bytes")
    refused(capsys, script("make_synthetic_davis").main(["--out", str(tmp_path / ("s" * 400))]),
            "a path component of 400 bytes")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_18_learning_curve_points_of_another_shape_name_the_file(tmp_path, capsys, ckpt):
    """`learning_curve.py --points` of another JSON shape was a TypeError."""
    for text in ('{"pairs": 1}', '[1, 2]', '[{"label": "x"}]', "not json"):
        points = tmp_path / "points.json"
        points.write_text(text)
        rc = script("learning_curve").main(["--points", str(points), "--checkpoints", str(ckpt), "--label", "x"])
        refused(capsys, rc, "points.json", "--points")
        assert points.read_text() == text


def test_18_tracker_without_a_network_or_with_an_absent_device_says_so(ckpt):
    """`Tracker(None)` and `Tracker(model, device="cuda")` without CUDA were raw errors from deep inside."""
    from siampolar_lib.errors import DeviceUnavailable
    from siampolar_lib.tracking.tracker import Tracker
    from siampolar_lib.training.checkpoint import load_model

    with pytest.raises(TypeError, match="needs a SiamPolar network or an Engine, got NoneType"):
        Tracker(None)
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailable, match="CUDA is not available"):
            Tracker(load_model(ckpt, device="cpu"), device="cuda")


# ----------------------------------------------- issue 29, section 4: not one line (20)

def test_20_an_mp4_without_its_index_is_one_line_of_ffmpegs_reason(tmp_path, capfd, ckpt):
    """FFmpeg's "moov atom not found" was printed twice before the error; then it went into the error beside
    OpenCV's time-stamped "[ WARN:0@6.6] ... can't be used to capture by name" and a `@ 0x55..` address."""
    clip = tmp_path / "clip.mp4"
    rng = np.random.default_rng(0)
    wr = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (160, 120))
    for _ in range(6):
        wr.write(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    wr.release()
    clip.write_bytes(clip.read_bytes()[:-2000])  # mp4v writes its index (the moov atom) last
    capfd.readouterr()
    rc = track_cmd.main(trk(ckpt, clip, tmp_path / "o", "--box", "30,40,40,40", "--engine", "torch"))
    line = refused(capfd, rc, "clip.mp4: not a readable video", "FFmpeg: ", "moov atom not found")
    assert "WARN" not in line and "@ 0x" not in line, line


@pytest.mark.parametrize("content, reason", [
    ("pickle", "the weights-only unpickler refused it: Unsupported operand"),
    ("random", "the weights-only unpickler refused it: Unsupported operand"),
    ("empty", "an empty file"),
])
def test_20_a_checkpoint_that_is_not_one_is_one_line_without_torchs_warning(tmp_path, capsys, frames_dir, content,
                                                                             reason):
    """A plain pickle as --checkpoint printed torch's two-line "Detected pickle protocol 4" warning before the error,
    and the error's words were torch's advice to load it with weights_only=False (running the file's code)."""
    import pickle
    import warnings

    bad = tmp_path / "model.pt"
    data = {"pickle": pickle.dumps({"model": [1, 2]}, protocol=4), "empty": b"",
            "random": np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()}[content]
    bad.write_bytes(data)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        rc = track_cmd.main(trk(bad, frames_dir, tmp_path / "o", "--box", "30,40,40,40"))
    line = refused(capsys, rc, "model.pt: not a readable torch checkpoint", reason)
    assert [str(w.message) for w in said] == [] and "`weights_only` set to `False`" not in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_20_polar_upper_bound_names_an_unreadable_mask_on_a_line_of_its_own(tmp_path, capsys):
    """An unreadable mask's error was glued to the "masks: 0%|" bar (printed again after it)."""
    from siampolar_lib.data.synthetic import make_synthetic_davis

    root = make_synthetic_davis(tmp_path / "DAVIS", sequences=1, frames=3, seed=0, size=(96, 64))
    mask = sorted((root / "Annotations" / "480p").glob("*/00001.png"))[0]
    mask.write_bytes(mask.read_bytes()[:30])
    rc = script("polar_upper_bound").main(["--davis-root", str(root), "--rays", "8", "--centres", "mass",
                                           "--workers", "1"])
    refused(capsys, rc, "00001.png: not a readable mask image")


def test_20_learning_curve_refuses_a_png_of_no_points(tmp_path, capsys):
    """`--png` with no points (a missing or empty --points, no --checkpoints) drew an empty figure, and matplotlib
    warned "No artists with labels found to put in legend"."""
    lc = script("learning_curve")
    for text in (None, "[]"):
        points = tmp_path / "points.json"
        if text is not None:
            points.write_text(text)
        rc = lc.main(["--points", str(points), "--png", str(tmp_path / "curve.png")])
        refused(capsys, rc, "points.json: no points to draw into --png", "curve.png", "--checkpoints")
        assert not (tmp_path / "curve.png").exists()


@pytest.mark.parametrize("point, problem", [
    ({"pairs": 100, "label": "a"}, "each with F_M, JF_M, J_M, label, pairs"),
    ({"pairs": 100, "label": "a", "JF_M": "0.5", "J_M": 0.5, "F_M": 0.5}, "JF_M, J_M, F_M must be numbers"),
])
def test_20_learning_curve_refuses_points_without_their_scores(tmp_path, capsys, point, problem):
    """Points without JF_M/F_M (or with a score as text) were accepted, then failed as a KeyError while plotting."""
    points = tmp_path / "points.json"
    points.write_text(json.dumps([point]))
    rc = script("learning_curve").main(["--points", str(points), "--png", str(tmp_path / "curve.png")])
    refused(capsys, rc, "points.json: --points", problem)
    assert not (tmp_path / "curve.png").exists()
