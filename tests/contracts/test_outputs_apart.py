"""No tool writes where it reads, and two runs sharing an output path never both run (issue 22, data loss 1, 2, 4).

The rule lives in one place, `outputs.check_output_apart`: an output may not be, contain or lie inside an input.
Each test fails on the code before the fix: there `track --out DIR --overwrite` swapped away the frames inside
DIR, `evaluate` and `demo` deleted or wrote into the DAVIS folder, and `track --out r.gif` removed the live
staging folder of a `track --out r.mp4` (both write `r_masks/`).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import refused

from siampolar_lib.commands import demo as demo_cmd
from siampolar_lib.commands import evaluate as evaluate_cmd
from siampolar_lib.commands import score as score_cmd
from siampolar_lib.commands import track as track_cmd
from siampolar_lib.errors import UserError
from siampolar_lib.evaluation import evaluate as benchmark
from siampolar_lib.outputs import (
    HOST,
    check_output_apart,
    clean_stale_temps,
    fresh_folder_beside,
    output_lock,
    owner_alive,
    temp_prefix,
)


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under folder (relative) -> its bytes (None for a folder): equal snapshots, byte-for-byte intact."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in folder.rglob("*")}


def dead_pid() -> int:
    """The id of a process that has just exited."""
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def master_davis(tmp_path_factory) -> Path:
    """2 synthetic sequences of 5 frames, 96x64 (copied per test, so a test may try to destroy its copy)."""
    from siampolar_lib.data.synthetic import make_synthetic_davis

    return make_synthetic_davis(tmp_path_factory.mktemp("d") / "DAVIS", sequences=2, frames=5, seed=0, size=(96, 64))


@pytest.fixture
def davis(master_davis, tmp_path) -> Path:
    """This test's own DAVIS folder, tmp_path/data/DAVIS (its parent holds nothing else)."""
    return Path(shutil.copytree(master_davis, tmp_path / "data" / "DAVIS"))


def write_frames(folder: Path, n: int = 3) -> Path:
    """A folder of n JPEG frames, 160x120, a bright disk moving right."""
    folder.mkdir(parents=True)
    bg = np.random.default_rng(0).integers(40, 120, (120, 160, 3), dtype=np.uint8)
    for i in range(n):
        f = bg.copy()
        cv2.circle(f, (50 + 5 * i, 60), 18, (240, 240, 240), -1)
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), f)
    return folder


def trk(ckpt, video, out, *extra) -> list[str]:
    return ["--checkpoint", str(ckpt), "--video", str(video), "--out", str(out), "--box", "30,40,40,40",
            "--engine", "torch", "--device", "cpu", "--no-progress", *extra]


# ------------------------------------------------------------------------------------- the one rule

def test_check_output_apart_is_contains_inside_and_apart(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    for out, rel in [(data, "is"), (data / "sub", "lies inside"), (data / "new" / "x", "lies inside"),
                     (tmp_path, "contains"), (data / "sub" / "..", "is")]:
        with pytest.raises(UserError, match=f"--out {out} {rel} the input --davis-root {data};"):
            check_output_apart(out, {"--davis-root": data})
    assert check_output_apart(tmp_path / "data2", {"--davis-root": data, "--checkpoint": None}) == tmp_path / "data2"


def test_check_output_apart_resolves_links(tmp_path):
    data = tmp_path / "a" / "data"
    data.mkdir(parents=True)
    (tmp_path / "b").mkdir()
    link = tmp_path / "b" / "link"
    link.symlink_to(data, target_is_directory=True)
    with pytest.raises(UserError, match="lies inside the input --davis-root"):
        check_output_apart(link / "results", {"--davis-root": data})  # out through a link into the input
    with pytest.raises(UserError, match="is the input --video"):
        check_output_apart(data, {"--video": link})  # the input through a link
    with pytest.raises(UserError, match="contains the input --video"):
        check_output_apart(tmp_path / "b", {"--video": link})  # replacing b would delete the link
    assert check_output_apart(tmp_path / "c", {"--video": link}) == tmp_path / "c"


# ------------------------------------------------------------------------------------------ track

@pytest.mark.parametrize("case", ["folder_out_contains_video", "mask_folder_contains_video", "out_contains_ckpt"])
def test_track_refuses_an_out_holding_an_input(tmp_path, capsys, ckpt, case):
    proj = tmp_path / "proj"
    video = write_frames(proj / ("r_masks" if case == "mask_folder_contains_video" else "") / "clip")
    flag, src, model, out = "--video", video, ckpt, proj
    if case == "mask_folder_contains_video":
        out = proj / "r.gif"  # its masks go to proj/r_masks, which holds the frames
    if case == "out_contains_ckpt":
        video = write_frames(tmp_path / "clips" / "clip")
        flag, src = "--checkpoint", proj / "m.pt"
        model = Path(shutil.copy(ckpt, src))
    before = snapshot(tmp_path)
    refused(capsys, track_cmd.main(trk(model, video, out, "--overwrite")), f"contains the input {flag} {src}")
    assert snapshot(tmp_path) == before  # the inputs and everything beside them survive


# ----------------------------------------------------------------------------------- evaluate, demo

WHERE = {"is": lambda root: root, "inside_gt": lambda root: sorted((root / "Annotations" / "480p").iterdir())[0],
         "inside_new": lambda root: root / "results", "contains": lambda root: root.parent}
RELATION = {"is": "is", "inside_gt": "lies inside", "inside_new": "lies inside", "contains": "contains"}


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("where", sorted(WHERE))
def test_evaluate_refuses_an_out_at_the_davis_root(davis, capsys, where, overwrite):
    out = WHERE[where](davis)
    if where == "inside_gt":
        assert out.is_dir()
    before = snapshot(davis.parent)
    rc = evaluate_cmd.main(["--davis-root", str(davis), "--baselines", "static", "--out", str(out), "--no-progress",
                         "--max-frames", "4"] + ["--overwrite"] * overwrite)
    refused(capsys, rc, f"--out {out} {RELATION[where]} the input --davis-root {davis}")
    assert snapshot(davis.parent) == before


def test_evaluate_library_refuses_too(davis):
    with pytest.raises(UserError, match="lies inside the input --davis-root"):
        benchmark.evaluate_tracker(None, davis, davis / "results", baselines=["static"], progress=False)
    assert not (davis / "results").exists()


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("where", sorted(WHERE))
def test_demo_refuses_an_out_at_the_davis_root(davis, capsys, ckpt, monkeypatch, where, overwrite):
    monkeypatch.setenv("SIAMPOLAR_DAVIS_ROOT", str(davis))
    out = WHERE[where](davis)
    before = snapshot(davis.parent)
    rc = demo_cmd.main(["--out", str(out), "--checkpoint", str(ckpt), "--sequences", "1", "--max-frames", "3",
                    "--baselines", "", "--engine", "torch", "--device", "cpu", "--no-progress"]
                   + ["--overwrite"] * overwrite)
    refused(capsys, rc, f"--out {out} {RELATION[where]} the input $SIAMPOLAR_DAVIS_ROOT {davis}")
    assert snapshot(davis.parent) == before


# ------------------------------------------------------------------------ locks and stale temps

@pytest.mark.parametrize("first, second", [("r.mp4", "r.gif"), ("r.gif", "r.mp4")])
def test_runs_sharing_the_mask_folder_exclude_each_other(tmp_path, capsys, ckpt, first, second):
    video = write_frames(tmp_path / "clips" / "clip")
    # The first run, as track holds it: locks on its video and mask folder, a live staging folder for the masks.
    with output_lock(tmp_path / first), output_lock(tmp_path / "r_masks"):
        staging = fresh_folder_beside(tmp_path / "r_masks")
        (staging / "00000.png").write_bytes(b"frame 0 of the first run")
        refused(capsys, track_cmd.main(trk(ckpt, video, tmp_path / second)), "r_masks", "another run is writing")
        assert (staging / "00000.png").is_file(), "the first run's staging folder is left alone"
    assert not (tmp_path / second).exists() and not (tmp_path / "r_masks").exists()


def test_only_temps_of_dead_owners_are_removed(tmp_path, capsys, ckpt):
    video = write_frames(tmp_path / "clips" / "clip")
    masks = tmp_path / "r_masks"
    dead = tmp_path / f"{temp_prefix(masks, 'partial', dead_pid())}abc123"
    live = tmp_path / f"{temp_prefix(masks, 'partial', os.getpid())}def456"  # this process: alive
    old = tmp_path / f"{temp_prefix(masks, 'old', dead_pid())}ghi789"
    for d in (dead, live, old):
        d.mkdir()
        (d / "00000.png").write_bytes(b"x")
    assert track_cmd.main(trk(ckpt, video, tmp_path / "r.gif")) == 0
    assert not dead.exists() and not old.exists() and (live / "00000.png").is_file()
    assert sorted(p.name for p in (tmp_path / "r_masks").iterdir()) == ["00000.png", "00001.png", "00002.png"]


def test_clean_stale_temps_keeps_a_live_owners_temp(tmp_path):
    pid = dead_pid()
    dead = tmp_path / f"{temp_prefix(tmp_path / 'o', 'partial', pid)}a1"
    live = tmp_path / f"{temp_prefix(tmp_path / 'o', 'partial')}b2"
    # the same dead pid on another machine sharing the folder: its process cannot be asked from here, so it stays
    elsewhere = tmp_path / f"{temp_prefix(tmp_path / 'o', 'partial', pid)}c3".replace(f"-{HOST}-", "-another.host-")
    ownerless = tmp_path / ".o.abcdefgh.tmp.mp4"  # atomic_write's temp: removed under the output's lock
    for d in (dead, live, elsewhere):
        d.mkdir()
    ownerless.write_bytes(b"half")
    removed = clean_stale_temps(tmp_path, [".o.partial-*", ".o.*.tmp.mp4"])
    assert sorted(removed) == sorted([dead, ownerless]) and live.is_dir() and elsewhere.is_dir()
    assert not owner_alive(dead.name) and owner_alive(live.name) and owner_alive(elsewhere.name)


def test_score_and_davis2coco_use_the_same_rule(davis, capsys):
    """Both refused an --out inside the dataset before; an --out containing it is refused now too."""
    import importlib.util


    spec = importlib.util.spec_from_file_location("davis2coco", Path(__file__).resolve().parents[2] / "data_scripts" /
                                                  "davis2coco.py")
    d2c = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(d2c)
    before, parent = snapshot(davis.parent), davis.parent
    refused(capsys, score_cmd.main(["--gt", str(davis), "--pred", str(davis / "Annotations" / "480p"), "--out",
                                  str(parent)]), f"--out {parent} contains the input --gt {davis}")
    refused(capsys, score_cmd.main(["--gt", str(davis), "--pred", str(davis / "Annotations" / "480p")]),
            "--out (default: --pred)", "lies inside the input --gt")
    refused(capsys, d2c.main(["--davis-root", str(davis), "--out", str(parent)]),
            f"--out {parent} contains the input --davis-root {davis}")
    assert snapshot(davis.parent) == before


# ------------------------------------------------------------------------ data scripts' result files (defect 2)

def _script_args(name: str, ckpt: Path, davis: Path, out_flag: str, out: Path) -> list[str]:
    """A quick run of a data script over one synthetic train sequence, its result file `out_flag out`."""
    common = ["--davis-root", str(davis), "--sequences", "synth00", out_flag, str(out)]
    if name == "select_model":
        return ["--checkpoints", str(ckpt), *common]
    if name == "tune_tracker":
        return ["--checkpoint", str(ckpt), "--max-frames", "3", "--thresholds", "0.2:0.1", "--penalty-k", "0.04",
                "--window-influence", "0.3", "--size-lr", "0.4", *common]
    return ["--points", str(davis.parent / "p.json"), "--checkpoints", str(ckpt), *common]


@pytest.mark.parametrize("name, flag", [("select_model", "--json"), ("tune_tracker", "--json"),
                                        ("learning_curve", "--png"), ("learning_curve", "--points")])
def test_data_scripts_refuse_a_result_file_over_the_checkpoint(davis, capsys, ckpt, name, flag):
    """select_model/tune_tracker --json CKPT (and learning_curve --png/--points CKPT) overwrote the checkpoint."""
    from cli_helpers import script

    model = Path(shutil.copy(ckpt, davis.parent / "model.pt"))
    args = _script_args(name, model, davis, flag, model)
    if flag == "--points":
        args = args[:args.index("--points")] + args[args.index("--points") + 2:]
    before = snapshot(davis.parent)
    refused(capsys, script(name).main(args), f"{flag} {model} is the input --checkpoint")
    assert snapshot(davis.parent) == before


@pytest.mark.parametrize("name", ["select_model", "tune_tracker"])
def test_data_scripts_refuse_a_json_inside_the_data_or_an_earlier_one(davis, capsys, ckpt, name):
    from cli_helpers import script

    inside = davis / "Annotations" / "scores.json"
    before = snapshot(davis.parent)
    refused(capsys, script(name).main(_script_args(name, ckpt, davis, "--json", inside)),
            f"--json {inside} lies inside the input --davis-root {davis}")
    earlier = davis.parent / "earlier.json"
    earlier.write_text('{"an earlier run": 1}')
    before = snapshot(davis.parent)
    refused(capsys, script(name).main(_script_args(name, ckpt, davis, "--json", earlier)),
            f"{earlier}: --json already exists", "--overwrite")
    assert snapshot(davis.parent) == before


# ------------------------------------------------------- a run finishing while another loads its model (defect 4)

def _finish_a_run_meanwhile(monkeypatch, module, write_result) -> None:
    """Make `module.load_model` write another run's finished result first: a second run that checked the output
    while it was empty and finished while this one loaded its model (lock first, then check)."""
    real = module.load_model

    def load_then_find_a_result(*args, **kwargs):
        write_result()
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "load_model", load_then_find_a_result)


@pytest.mark.parametrize("out_name", ["result", "r.gif"])
def test_track_rechecks_its_output_under_the_lock(tmp_path, capsys, ckpt, monkeypatch, out_name):
    from siampolar_lib.apps import track_video

    video = write_frames(tmp_path / "clips" / "clip")
    out = tmp_path / out_name
    masks = out / "masks" if out_name == "result" else tmp_path / "r_masks"

    def other_run():
        masks.mkdir(parents=True)
        (masks / "00000.png").write_bytes(b"the other run's mask")

    _finish_a_run_meanwhile(monkeypatch, track_video, other_run)
    refused(capsys, track_cmd.main(trk(ckpt, video, out)), "already exists", "--overwrite")
    assert (masks / "00000.png").read_bytes() == b"the other run's mask" and len(list(masks.iterdir())) == 1


def test_demo_rechecks_its_output_under_the_lock(davis, capsys, ckpt, monkeypatch):
    from siampolar_lib.apps import demo

    monkeypatch.setenv("SIAMPOLAR_DAVIS_ROOT", str(davis))
    out = davis.parent.parent / "demo"

    def other_run():
        out.mkdir()
        (out / "results.json").write_text("the other run's results")

    _finish_a_run_meanwhile(monkeypatch, demo, other_run)
    rc = demo_cmd.main(["--out", str(out), "--checkpoint", str(ckpt), "--sequences", "1", "--max-frames", "3",
                        "--baselines", "", "--engine", "torch", "--device", "cpu", "--no-progress"])
    refused(capsys, rc, f"{out}: the output folder is not empty", "--overwrite")
    assert snapshot(out) == {"results.json": b"the other run's results"}


# ------------------------------------------------- --overwrite replaces a track run's outputs, nothing else (defect 7)

@pytest.mark.parametrize("out_name, foreign", [("result", "notes.txt"), ("result", "photos/a.jpg"),
                                               ("result", "masks/notes.txt"), ("r.mp4", "r_masks/notes.txt"),
                                               ("r.gif", "r_masks/sub/00000.png")])
def test_track_overwrite_refuses_an_out_holding_other_files(tmp_path, capsys, ckpt, out_name, foreign):
    video = write_frames(tmp_path / "clips" / "clip")
    out = tmp_path / out_name
    if not foreign.startswith("r_masks"):
        (out / "masks").mkdir(parents=True)
        (out / "masks" / "00000.png").write_bytes(b"an earlier run's mask")
    (tmp_path / foreign if foreign.startswith("r_masks") else out / foreign).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / foreign if foreign.startswith("r_masks") else out / foreign).write_bytes(b"the user's")
    before = snapshot(tmp_path)
    refused(capsys, track_cmd.main(trk(ckpt, video, out, "--overwrite")), "--overwrite replaces only",
            "choose another --out")
    assert snapshot(tmp_path) == before


def test_track_overwrite_replaces_an_earlier_run_named_by_its_frames(tmp_path, capsys, ckpt):
    """A frame folder's masks are named as its frames (a.png, b.png): still an earlier track run's outputs."""
    video = write_frames(tmp_path / "clips" / "clip")
    for i, name in enumerate(["a", "b", "c"]):
        (video / f"{i:05d}.jpg").rename(video / f"{name}.jpg")
    out = tmp_path / "result"
    assert track_cmd.main(trk(ckpt, video, out)) == 0
    assert track_cmd.main(trk(ckpt, video, out, "--overwrite", "--max-frames", "2")) == 0
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["a.png", "b.png"]


# ------------------------------------------- a killed run's litter goes with the next run, either suffix (defect 23)

KILLED_MID_VIDEO = """
import os, signal, sys
import numpy as np
from pathlib import Path
from siampolar_lib.outputs import fresh_folder_beside, output_lock
from siampolar_lib.video_writers import VideoSink
out = Path(sys.argv[1])
masks = out.with_name(out.stem + "_masks")
with output_lock(out), output_lock(masks):
    fresh_folder_beside(masks)
    sink = VideoSink(out, fps=5)
    sink.write(np.zeros((64, 96, 3), np.uint8))
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("killed, following", [("r.gif", "r.mp4"), ("r.mp4", "r.gif"), ("r.gif", "r.gif")])
def test_the_next_run_clears_a_killed_runs_temp_video_and_locks(tmp_path, ckpt, killed, following):
    """A track run killed mid-video leaves its half video, its staging folder and its lock files; the next run into
    the same mask folder removed only those of its own suffix before, so a killed r.gif's stayed beside r.mp4."""
    video = write_frames(tmp_path / "clips" / "clip")
    proc = subprocess.run([sys.executable, "-c", KILLED_MID_VIDEO, str(tmp_path / killed)], capture_output=True)
    assert proc.returncode == -9, proc.stderr
    litter = sorted(p.name for p in tmp_path.glob(".*"))
    assert any(".tmp" in n for n in litter) and any(n.endswith("siampolar-lock") for n in litter), litter
    assert track_cmd.main(trk(ckpt, video, tmp_path / following)) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["clips", following, "r_masks"])
