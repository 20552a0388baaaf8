"""Training refuses bad input in one line and leaves no empty --out behind (issue 22; beside test_cli_errors.py).

Each test fails on the code before its fix: a --data JSON of the wrong shape was a KeyError/TypeError/AttributeError
traceback; pair and loss settings out of range failed mid-run ("high - low < 0") or trained on; a refusal after the
run folder was made left it behind, empty.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import refused

from siampolar_lib.commands import train as train_cmd
from siampolar_lib.errors import UserError


@pytest.fixture(scope="module")
def coco(tiny_davis) -> dict:
    """tiny_davis as the COCO dict davis2coco writes, its image root recorded in `info`."""
    from siampolar_lib.data.coco import davis_coco
    from siampolar_lib.data.davis import list_sequences

    data = davis_coco(tiny_davis, list_sequences(tiny_davis, "all"))
    data["info"]["image_root"] = str(tiny_davis)
    return data


def _args(data, out: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "--out", str(out), "--iters", "2", "--batch", "1", "--device", "cpu",
            "--no-progress", "--no-pretrained", *extra]


def _drop(d: dict, key: str) -> dict:
    return {k: v for k, v in d.items() if k != key}


# (name, how the valid dict is broken, words the one line must hold)
WRONG_SHAPES = [
    ("a_list", lambda c: [c], "not an object"),
    ("no_images", lambda c: _drop(c, "images"), "no 'images' key"),
    ("images_not_a_list", lambda c: {**c, "images": 5}, "'images' is"),
    ("image_not_an_object", lambda c: {**c, "images": ["00000.jpg"] + c["images"][1:]}, "images[0]"),
    ("image_without_sequence", lambda c: {**c, "images": [_drop(c["images"][0], "sequence")] + c["images"][1:]},
     "images[0] has no 'sequence'"),
    ("annotation_without_segmentation", lambda c: {**c, "annotations": [_drop(c["annotations"][0], "segmentation")]
                                                   + c["annotations"][1:]}, "annotations[0] has no 'segmentation'"),
    ("annotation_without_bbox", lambda c: {**c, "annotations": [_drop(c["annotations"][0], "bbox")]
                                           + c["annotations"][1:]}, "annotations[0] has no 'bbox'"),
    ("bbox_of_three", lambda c: {**c, "annotations": [{**c["annotations"][0], "bbox": [1, 2, 3]}]
                                 + c["annotations"][1:]}, "annotations[0] 'bbox'"),
]


@pytest.mark.parametrize("name, breaks, words", WRONG_SHAPES, ids=[w[0] for w in WRONG_SHAPES])
def test_a_data_json_of_the_wrong_shape_is_one_line_naming_the_file(coco, tmp_path, capsys, name, breaks, words):
    bad = tmp_path / f"{name}.json"
    bad.write_text(json.dumps(breaks(coco)))
    out = tmp_path / "run"
    refused(capsys, train_cmd.main(_args(bad, out)), str(bad), words)
    assert not out.exists(), "a refused run leaves no --out behind"


def test_a_data_file_that_is_not_json_names_the_file(tmp_path, capsys):
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    refused(capsys, train_cmd.main(_args(bad, tmp_path / "run")), str(bad), "not valid JSON")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flags, named", [
    (["--pairs.search-shift=-1"], "--pairs.search-shift"), (["--pairs.flip-p", "2"], "--pairs.flip-p"),
    (["--pairs.search-scale", "1.5"], "--pairs.search-scale"), (["--pairs.max-gap=-3"], "--pairs.max-gap"),
    (["--loss.cls-weight=-1"], "--loss.cls-weight"), (["--loss.eps", "0"], "--loss.eps"),
    (["--loss.focal-alpha", "nan"], "--loss.focal-alpha"),
])
def test_pair_and_loss_settings_out_of_range_name_their_flag_before_any_work(tiny_davis, tmp_path, flags, named):
    """Checked when the config is built (parse_args), so the run never starts: before, these trained or crashed."""
    with pytest.raises(UserError, match=named):
        train_cmd.parse_args(_args(tiny_davis, tmp_path / "run", *flags))
    assert not (tmp_path / "run").exists()


def test_a_refusal_found_late_leaves_no_empty_out(tiny_davis, tmp_path, capsys):
    """Refusals met once the run has begun (every sequence excluded; --init-from of another size) leave no --out."""
    from siampolar_lib import build_model
    from siampolar_lib.training.checkpoint import save_checkpoint

    out = tmp_path / "run"
    refused(capsys, train_cmd.main(_args(tiny_davis, out, "--exclude-sequences", "synth00,synth01")),
            "no training videos left")
    assert not out.exists()
    ckpt = save_checkpoint(tmp_path / "quick.pt", build_model("quick", pretrained=False))
    refused(capsys, train_cmd.main(_args(tiny_davis, out, "--init-from", str(ckpt), "--model", "lite0")),
            "'quick' network, but --model is 'lite0'")
    assert not out.exists()


def test_a_failed_overwrite_leaves_no_folders_it_made(tmp_path, tiny_davis, capsys):
    """A failed `train --overwrite` into a new nested --out left the folders above --out (made for its lock)."""
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    out = tmp_path / "runs" / "new" / "run"
    refused(capsys, train_cmd.main(_args(tiny_davis, out, "--overwrite", "--init-from", str(bad))), str(bad))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pt"]


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT", "SIGKILL"])
def test_a_training_killed_before_its_first_checkpoint_leaves_no_folder(tmp_path, tiny_davis, sig):
    """`kill PID` or Ctrl-C before the first checkpoint leaves nothing; a SIGKILL leaves only the (free) lock file.

    Before, the run folder was made at the start, and SIGTERM ended the process without its clean-up."""
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time

    out = tmp_path / "runs" / "run"
    lock = tmp_path / "runs" / ".run.siampolar-lock"
    args = [a for a in _args(tiny_davis, out, "--iters", "100000", "--ckpt-every", "0") if a != "--no-progress"]
    # SIGINT as Ctrl-C gives it in a terminal: a shell without job control starts background jobs (`make test &` in
    # a script) with SIGINT ignored, children inherit that, and Python then installs no KeyboardInterrupt handler.
    # (Only then a preexec_fn: Python code between fork and exec is best avoided in a process with threads.)
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    proc = subprocess.Popen([sys.executable, "-m", "siampolar_lib.commands.train", *args], stderr=subprocess.PIPE,
                            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) if ignored else None)
    err: list[bytes] = []

    def read_stderr() -> None:  # as it comes: the progress bar never ends its line
        while chunk := os.read(proc.stderr.fileno(), 4096):
            err.append(chunk)

    reader = threading.Thread(target=read_stderr)
    reader.start()
    try:
        # The bar appears when the loop starts: the set-up done, the run's lock held, long before step 100000.
        deadline = time.monotonic() + 600  # seconds on 2 idle cores; minutes on a slow, busy machine
        while b"train quick" not in b"".join(err) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None and b"train quick" in b"".join(err) and lock.exists(), \
            b"".join(err).decode(errors="replace")[-3000:]
        proc.send_signal(getattr(signal, sig))
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join()
    assert not out.exists()
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert left == (["runs", "runs/.run.siampolar-lock"] if sig == "SIGKILL" else []), left
