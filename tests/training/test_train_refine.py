"""Training the refinement stage: RefineConfig's checks, a phase that trains only the stage, its log and checkpoints,
a resume that computes what one uninterrupted run computes, and the shipping script over its checkpoints."""
from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from siampolar_lib.commands import train_refine as train_refine_cmd
from siampolar_lib.errors import UserError
from siampolar_lib.models.config import get_config
from siampolar_lib.models.siampolar import SiamPolar
from siampolar_lib.training.checkpoint import load_checkpoint, load_model, save_checkpoint
from siampolar_lib.training.log import read_log
from siampolar_lib.training.train_refine import RefineConfig, train_refine

EXPORT_REFINED = Path(__file__).resolve().parents[2] / "data_scripts" / "export_refined.py"


@pytest.fixture(scope="module")
def first_sequence(synthetic_davis) -> str:
    """The sequence every run here keeps out of training (not of the validation fold: no fold scoring, fast)."""
    return sorted(p.name for p in (synthetic_davis / "JPEGImages" / "480p").iterdir())[0]


def comparable(rows: list[dict]) -> list[str]:
    """Log rows as text without the clock's column (samples_per_s); NaN (no fold score yet) equals NaN as text."""
    return [str({k: float(v) for k, v in r.items() if k != "samples_per_s"}) for r in rows]


def flags(ckpt, data, out, excluded: str, *more: str) -> list[str]:
    """A 4-step phase of 2 samples a step in fp32, a checkpoint every 2 steps and a log row every step."""
    return ["--init-from", str(ckpt), "--data", str(data), "--out", str(out), "--iters", "4", "--batch", "2",
            "--ckpt-every", "2", "--log-every", "1", "--workers", "0", "--no-progress", "--precision", "fp32",
            "--exclude-sequences", excluded, *more]


def test_train_refine_trains_only_the_stage(tmp_path, ckpt, synthetic_davis, first_sequence, capsys):
    out = tmp_path / "run"
    args = flags(ckpt, synthetic_davis, out, first_sequence)
    assert train_refine_cmd.main(args) == 0
    trained, start = load_model(out / "last.pt"), load_model(ckpt)
    assert trained.config.refine_iters == 2 and sorted(p.name for p in out.glob("step*.pt")) == ["step2.pt", "step4.pt"]
    for name, t in start.state_dict().items():
        assert torch.equal(t, trained.state_dict()[name]), f"{name}: the first stage must stay as it was"
    assert any(not torch.equal(p, torch.zeros_like(p)) for p in trained.refiner.ray_convs[-1].parameters())
    text = (out / "train_log.csv").read_text().splitlines()
    assert len(text) == 5 and text[0].startswith("step,samples,loss")
    rows = read_log(out / "train_log.csv")  # the trainer's own reader reads it: a copy of the checkpoint's rows
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert comparable(rows) == comparable(load_checkpoint(out / "last.pt")["log"])
    assert "optimizer" not in load_checkpoint(out / "step4.pt"), "step files are model-only"
    assert train_refine_cmd.main(args) == 2 and "already holds files" in capsys.readouterr().err
    check_export(out, ckpt, tmp_path)


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, ckpt, synthetic_davis, first_sequence, capsys):
    straight, parts = tmp_path / "straight", tmp_path / "parts"
    assert train_refine_cmd.main(flags(ckpt, synthetic_davis, straight, first_sequence)) == 0
    assert train_refine_cmd.main(flags(ckpt, synthetic_davis, parts, first_sequence, "--stop-at", "2")) == 0
    assert load_checkpoint(parts / "last.pt")["step"] == 2
    other = flags(ckpt, synthetic_davis, parts, first_sequence, "--resume", "--lr", "0.002")
    assert train_refine_cmd.main(other) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--lr" in err and "0.002" in err, err
    assert train_refine_cmd.main(flags(ckpt, synthetic_davis, parts, first_sequence, "--resume")) == 0
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(parts / "last.pt")
    assert a["step"] == b["step"] == 4
    for name, t in a["model"].items():
        assert torch.equal(t, b["model"][name]), f"{name}: the resumed run's weights differ"
    assert comparable(read_log(straight / "train_log.csv")) == comparable(read_log(parts / "train_log.csv"))


def test_resume_without_a_checkpoint_is_refused(tmp_path, ckpt, synthetic_davis, first_sequence, capsys):
    out = tmp_path / "none"
    assert train_refine_cmd.main(flags(ckpt, synthetic_davis, out, first_sequence, "--resume")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(out / "last.pt") in err and "no checkpoint to resume from" in err
    assert not out.exists(), "a refused run makes no --out"


def test_resume_from_a_model_only_file_is_refused(tmp_path, ckpt, synthetic_davis, first_sequence, capsys):
    out = tmp_path / "run"
    out.mkdir()
    save_checkpoint(out / "last.pt", load_model(ckpt))  # weights, but no optimiser, RNG or log
    assert train_refine_cmd.main(flags(ckpt, synthetic_davis, out, first_sequence, "--resume")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "training state" in err and "last.pt" in err


@pytest.mark.parametrize("field, value, words", [
    ("iters", 0, "--iters 0"), ("batch", 1.5, "--batch 1.5"), ("lr", float("nan"), "--lr nan"),
    ("refine_iters", 5, "--refine-iters 5"), ("refine_channels", 40, "a multiple of 16"),
    ("precision", "fp16", "--precision 'fp16'"), ("stop_at", 0, "--stop-at 0"), ("data", (), "no training data")])
def test_refine_config_refuses_a_bad_setting_in_one_line(field, value, words):
    base = RefineConfig(init_from="first.pt", data=("DAVIS",), out="runs/refine")
    with pytest.raises(UserError) as err:
        dataclasses.replace(base, **{field: value})
    assert words in str(err.value) and "\n" not in str(err.value)
    assert RefineConfig(init_from="a.pt", data=["DAVIS"], out="o").data == ("DAVIS",), "a list is taken as a tuple"


def test_a_refused_run_makes_no_out(tmp_path, synthetic_davis, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    cfg = RefineConfig(init_from=str(bad), data=(str(synthetic_davis),), out=str(tmp_path / "o"), iters=2, workers=0)
    assert train_refine_cmd.main(["--init-from", str(bad), "--data", str(synthetic_davis), "--out", cfg.out,
                                  "--iters", "2", "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.pt" in err and "not a readable torch checkpoint" in err
    with pytest.raises(Exception, match="not a readable torch checkpoint"):
        train_refine(cfg)  # the library call the command makes
    assert not (tmp_path / "o").exists(), "a refused run makes no --out"


def check_export(run, first, tmp_path) -> None:
    """export_refined.py: the stage with the first stage's step and lineage; inputs are never its --out."""
    cmd = [sys.executable, str(EXPORT_REFINED), "--stage", str(run / "step4.pt"), "--log", str(run / "train_log.csv"),
           "--first-stage", str(first)]
    done = subprocess.run(cmd + ["--out", str(tmp_path / "ship.pt")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    shipped = torch.load(tmp_path / "ship.pt", weights_only=True)
    assert shipped["meta"]["refine"]["steps"] == 4 and shipped["step"] == torch.load(first, weights_only=True)["step"]
    assert shipped["meta"]["refine"]["stage_sha256"] == hashlib.sha256((run / "step4.pt").read_bytes()).hexdigest()
    assert (tmp_path / "ship_refine_log.csv").read_text() == (run / "train_log.csv").read_text()
    refused = subprocess.run(cmd + ["--out", str(first)], capture_output=True, text=True)
    assert refused.returncode == 2 and "overwrite one of its inputs" in refused.stderr
    other = tmp_path / "other.pt"
    torch.manual_seed(1)  # another first stage: the stage was not trained from it
    save_checkpoint(other, SiamPolar(dataclasses.replace(get_config("quick"), refine_iters=2), pretrained=False))
    wrong = subprocess.run(cmd[:-1] + [str(other), "--out", str(tmp_path / "x.pt")], capture_output=True, text=True)
    assert wrong.returncode == 2 and "not trained from it" in wrong.stderr and not (tmp_path / "x.pt").exists()


def test_precision_auto_uses_bf16_only_where_the_hardware_has_it(monkeypatch):
    from siampolar_lib.training import train_refine as tr

    cpu = torch.device("cpu")
    assert tr.stage_dtype("fp32", cpu) is None and tr.stage_dtype("bf16", cpu) is torch.bfloat16
    for native in (True, False):  # an AVX-512 BF16 CPU, and an AVX2 one (where autocast emulates bf16, ~20x slower)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda native=native: native)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        assert tr.native_bf16(cpu) is native
        assert tr.stage_dtype("auto", cpu) is (torch.bfloat16 if native else None)
    assert RefineConfig(init_from="x", data=("d",), out="o").precision == "auto"
    with pytest.raises(UserError, match="--precision 'fp16': must be one of auto, fp32, bf16"):
        RefineConfig(init_from="x", data=("d",), out="o", precision="fp16")
