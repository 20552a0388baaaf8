"""Export a trained network for shipping: model-only checkpoint + the whole training log and loss curve.

    python data_scripts/export_checkpoint.py --runs runs/a runs/b ... --out checkpoints/siampolar_lite0.pt

--runs are run folders (each with last.pt and train_log.csv) in training order: the first trained from
ImageNet weights, each later one resumed or fine-tuned (`--init-from`) from the one before. The last run's
network is written to --out without optimiser state (loads with `torch.load(..., weights_only=True)`); its
step is the total over all runs and its meta lists every run's training configuration. Beside it:
`<stem>_train_log.csv` (the runs' logs one after another, steps running on) and `<stem>_loss_curve.png`.
Prints the file's size and sha256. Every file is written to a temporary name and renamed.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from siampolar_lib.checkpoint import CheckpointError, export_weights, load_checkpoint
from siampolar_lib.trainlog import concat_logs, read_log, save_loss_curve, write_log


def sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_runs(runs: list[Path], out: Path) -> dict:
    """Export runs[-1]/last.pt to out with the concatenated log and curve; returns what was written."""
    phases, logs = [], []
    for run in runs:
        ckpt_path, log_path = run / "last.pt", run / "train_log.csv"
        for need in (ckpt_path, log_path):
            if not need.is_file():
                raise FileNotFoundError(f"{need}: missing (each --runs folder needs last.pt and train_log.csv)")
        meta = load_checkpoint(ckpt_path).get("meta") or {}
        rows = read_log(log_path)
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True, type=Path, help="run folders, in training order")
    p.add_argument("--out", required=True, type=Path, help="the model-only checkpoint to write (.pt)")
    a = p.parse_args(argv)
    try:
        done = export_runs(a.runs, a.out)
    except (FileNotFoundError, CheckpointError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for run, steps in done["phases"]:
        print(f"{run}: {steps} steps")
    size = done["checkpoint"].stat().st_size / 2**20
    print(f"wrote {done['checkpoint']} ({size:.1f} MB, step {done['steps']}, sha256 {sha256(done['checkpoint'])})")
    print(f"wrote {done['log']} and {done['curve']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
