"""Ship a network with a trained refinement stage: the stage's run checkpoint + the first stage's lineage.

    python data_scripts/export_refined.py --stage runs/refine/step1000.pt --log runs/refine/train_log.csv \
        --first-stage FIRST.pt --out checkpoints/siampolar_lite0.pt

--stage is a `siampolar_lib.training.train_refine` checkpoint; --first-stage the checkpoint it was trained from (its
--init-from). The export checks that the first stage's weights are unchanged in --stage, then writes --out
(model-only, loads with weights_only=True) with the first stage's step and meta (its training phases) plus a
"refine" entry (the stage's steps, samples, log, its file's sha256 and the first stage's), and the stage's log beside
it as
`<stem>_refine_log.csv`. The first stage's own `<stem>_train_log.csv` is left as it is. Every file is written to
a temporary name and renamed; --out may not be, contain or lie inside an input, and an earlier export's files are
replaced only with --overwrite.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch

from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.errors import CheckpointError, UserError, one_line
from siampolar_lib.io import atomic_write, sha256
from siampolar_lib.outputs import check_output_apart, check_output_file
from siampolar_lib.training.checkpoint import checkpoint_log, load_checkpoint, model_from_checkpoint, save_checkpoint


def export_refined(stage: Path, log: Path, first: Path, out: Path, overwrite: bool = False) -> dict:
    """Write out (+ its _refine_log.csv) from the stage checkpoint and the first stage's; returns {checkpoint, log}.

    Refused before anything is read: an output that is, contains or lies inside an input, or that exists already
    (an earlier export) unless overwrite.
    """
    check_output_file(out)
    log_out = out.with_name(out.stem + "_refine_log.csv")
    inputs = {p.resolve() for p in (stage, log, first)}
    for path in (out, log_out):
        if path.resolve() in inputs:
            raise UserError(f"{path}: the export would overwrite one of its inputs; choose another --out")
        check_output_apart(path, {"--stage": stage, "--log": log, "--first-stage": first})
    held = [p for p in (out, log_out) if p.exists() or p.is_symlink()]
    if held and not overwrite:
        raise UserError(f"{held[0]}: already exists (an earlier export?); pass --overwrite to replace "
                        f"{', '.join(p.name for p in held)}, or choose another --out")
    if not log.is_file():
        raise UserError(f"{log}: no such training log")
    s_ckpt, f_ckpt = load_checkpoint(stage), load_checkpoint(first)
    try:  # the stage's own log: a training log (step, loss, ...) holding each of its steps 1..N once
        checkpoint_log({"step": int(s_ckpt["step"])}, stage, log)
    except (ValueError, CheckpointError) as err:  # UnicodeDecodeError (random bytes) is a ValueError
        raise UserError(f"{log}: --log is not the training log of {stage.name} ({one_line(err)})") from None
    model = model_from_checkpoint(s_ckpt, stage)
    if model.refiner is None:
        raise UserError(f"{stage}: has no refinement stage (config refine_iters is 0)")
    for name, t in f_ckpt["model"].items():
        if name not in s_ckpt["model"] or not torch.equal(t, s_ckpt["model"][name]):
            raise UserError(f"{stage}: its first stage differs from {first} ({name}); it was not trained from it")
    meta = dict(f_ckpt["meta"])
    meta["refine"] = {"steps": int(s_ckpt["step"]), "samples": int(s_ckpt["meta"].get("samples", 0)),
                      "stage_checkpoint": stage.name, "stage_sha256": sha256(stage), "log": log_out.name,
                      "first_stage_sha256": sha256(first)}
    save_checkpoint(out, model, step=int(f_ckpt["step"]), meta=meta)
    with atomic_write(log_out) as tmp:
        shutil.copyfile(log, tmp)
    return {"checkpoint": out, "log": log_out}


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="export_refined.py", description=__doc__.splitlines()[0])
    p.add_argument("--stage", required=True, type=Path, help="a train_refine checkpoint (step*.pt or last.pt)")
    p.add_argument("--log", required=True, type=Path, help="that run's train_log.csv")
    p.add_argument("--first-stage", required=True, type=Path, help="the checkpoint the stage was trained from")
    p.add_argument("--out", required=True, type=Path, help="the model-only checkpoint to write (.pt)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export's .pt and _refine_log.csv")
    a = p.parse_args(argv)
    done = export_refined(a.stage, a.log, a.first_stage, a.out, a.overwrite)
    size = done["checkpoint"].stat().st_size / 2**20
    print(f"wrote {done['checkpoint']} ({size:.1f} MB, sha256 {sha256(done['checkpoint'])}) and {done['log']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
