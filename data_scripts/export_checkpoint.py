"""Export a trained network for shipping: model-only checkpoint + the whole training log and loss curve.

    python data_scripts/export_checkpoint.py --runs runs/a runs/b ... --out checkpoints/siampolar_lite0.pt

--runs are run folders (each with last.pt and train_log.csv) in training order: the first trained from
ImageNet weights, each later one resumed or fine-tuned (`--init-from`) from the one before. A folder may also hold
an earlier export (its model-only .pt as last.pt, its `_train_log.csv` as train_log.csv): its own list of phases is
kept, so a campaign's lineage survives the machine its run folders were on. The last run's
network is written to --out without optimiser state (loads with `torch.load(..., weights_only=True)`); its
step is the total over all runs and its meta lists every run's training configuration. Beside it:
`<stem>_train_log.csv` (the runs' logs one after another, steps running on) and `<stem>_loss_curve.png`.
Prints the file's size and sha256. Every file is written to a temporary name and renamed. An earlier export's files
are replaced only with --overwrite, and no output may be, contain or lie inside a --runs folder.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.errors import UserError
from siampolar_lib.io import sha256
from siampolar_lib.outputs import check_output_apart, check_output_file
from siampolar_lib.training.checkpoint import checkpoint_log, export_weights, load_checkpoint
from siampolar_lib.training.log import concat_logs, save_loss_curve, write_log


def export_runs(runs: list[Path], out: Path, overwrite: bool = False) -> dict:
    """Export runs[-1]/last.pt to out with the concatenated log and curve (earlier ones replaced only if overwrite).

    Returns {"checkpoint", "log", "curve": Path, "steps": int (total), "phases": [(run folder, steps), ...]}.
    """
    check_export_outputs(runs, out, overwrite)
    phases, logs, before = [], [], None
    for run in runs:
        ckpt_path, log_path = run / "last.pt", run / "train_log.csv"
        if not run.is_dir():
            raise FileNotFoundError(f"{run}: no such run folder (each --runs folder needs last.pt and train_log.csv)")
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"{ckpt_path}: missing (each --runs folder needs last.pt and train_log.csv)")
        ckpt = load_checkpoint(ckpt_path)
        if before is not None:
            check_continues(run, ckpt, *before)
        before = (run, ckpt)
        if "log" not in ckpt and not log_path.is_file():
            raise FileNotFoundError(f"{log_path}: missing (each --runs folder needs last.pt and train_log.csv)")
        meta = ckpt.get("meta") or {}
        rows = checkpoint_log(ckpt, ckpt_path, log_path)  # steps 1..the checkpoint's, each once
        if meta.get("phases"):  # an earlier export: keep its phases, whose steps add up to its log
            if sum(int(ph["steps"]) for ph in meta["phases"]) != len(rows):
                raise UserError(f"{ckpt_path}: its meta phases cover {sum(int(ph['steps']) for ph in meta['phases'])} "
                                f"steps but its log {len(rows)}")
            phases.extend(meta["phases"])
        else:
            phases.append({"run": str(run), "steps": len(rows), "train_config": meta.get("train_config", {})})
        logs.append(rows)
    rows = concat_logs(logs)
    source = runs[-1] / "last.pt"
    meta = {"phases": phases, "exported_from": f"{source} (model weights only; optimiser state dropped)"}
    path = export_weights(source, out, step=rows[-1]["step"], meta=meta)
    log_out, curve_out = out.with_name(out.stem + "_train_log.csv"), out.with_name(out.stem + "_loss_curve.png")
    write_log(log_out, rows)
    save_loss_curve(curve_out, rows)
    return {"checkpoint": path, "log": log_out, "curve": curve_out, "steps": rows[-1]["step"],
            "phases": [(p["run"], p["steps"]) for p in phases]}


def check_continues(run: Path, ckpt: dict, before: Path, before_ckpt: dict) -> None:
    """Refuse a run that does not go on from the one before it (their logs would be joined into a false lineage):
    the same folder twice, a run trained without --init-from, or one whose --init-from holds other weights than the
    earlier run's last.pt. An --init-from no longer on this machine must at least lie in a folder named as `before`.
    """
    if run.resolve() == before.resolve():
        raise UserError(f"--runs {run}: given twice; name each run of the lineage once, in training order")
    init = ((ckpt.get("meta") or {}).get("train_config") or {}).get("init_from")
    if not init:
        raise UserError(f"--runs {run}: its last.pt was not trained from another checkpoint (no --init-from in its "
                        f"training configuration), so it does not go on from {before}; give one lineage, in order")
    init = Path(init)
    if init.is_file():
        weights, earlier = load_checkpoint(init)["model"], before_ckpt["model"]
        shared = weights.keys() & earlier.keys()
        same = bool(shared) and all(torch.equal(weights[k], earlier[k]) for k in shared)
    else:
        same = init.parent.name == before.name
    if not same:
        raise UserError(f"--runs {run}: it was trained from {init}, which does not hold the weights of "
                        f"{before / 'last.pt'}; give one lineage, each run trained from the one before it")


def check_export_outputs(runs: list[Path], out: Path, overwrite: bool = False) -> None:
    """Validate --out before anything is read: a .pt file path (not a folder), apart from every --runs folder
    (`outputs.check_output_apart`), and its three files not an earlier export's unless overwrite."""
    check_output_file(out)
    if out.suffix != ".pt":
        raise UserError(f"{out}: --out must be a .pt file name")
    outputs = (out, out.with_name(out.stem + "_train_log.csv"), out.with_name(out.stem + "_loss_curve.png"))
    for path in outputs:
        check_output_file(path)
        for run in runs:
            check_output_apart(path, {"--runs": run})
    held = [str(p) for p in outputs if p.exists() or p.is_symlink()]
    if held and not overwrite:
        raise UserError(f"{held[0]}: already exists (an earlier export?); pass --overwrite to replace "
                        f"{'it' if len(held) == 1 else 'them (' + ', '.join(Path(h).name for h in held) + ')'}, "
                        "or choose another --out")


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="export_checkpoint.py", description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True, type=Path, help="run folders, in training order")
    p.add_argument("--out", required=True, type=Path, help="the model-only checkpoint to write (.pt)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export's .pt, log and curve")
    a = p.parse_args(argv)
    done = export_runs(a.runs, a.out, a.overwrite)
    for run, steps in done["phases"]:
        print(f"{run}: {steps} steps")
    size = done["checkpoint"].stat().st_size / 2**20
    print(f"wrote {done['checkpoint']} ({size:.1f} MB, step {done['steps']}, sha256 {sha256(done['checkpoint'])})")
    print(f"wrote {done['log']} and {done['curve']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
