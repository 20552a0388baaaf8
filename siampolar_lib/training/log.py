"""The training log: `train_log.csv` (one row per step) and `loss_curve.png`, both written atomically.

Its columns follow the registered loss terms (`losses.loss_terms`); a log written before a term was added still
reads (`read_log` needs only `step` and `loss`)."""
from __future__ import annotations

import csv
import os
from pathlib import Path

from siampolar_lib.io import atomic_write
from siampolar_lib.training.losses import loss_terms

REQUIRED = ("step", "loss")  # what every training log has, whatever its loss terms
INTEGER = ("step", "num_pos")


def log_columns() -> tuple[str, ...]:
    """A training log's columns: step, loss (the total), one per registered loss term, lr, num_pos, pairs_per_s."""
    return ("step", "loss", *loss_terms(), "lr", "num_pos", "pairs_per_s")


def write_log(path: str | os.PathLike, rows: list[dict], columns: tuple[str, ...] | None = None) -> None:
    """Write rows as CSV (columns: `log_columns()` unless given): temp file then rename."""
    columns = log_columns() if columns is None else columns
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow({k: r[k] for k in columns})


def read_log(path: str | os.PathLike) -> list[dict]:
    """Read a train_log.csv back (any loss terms): list of dicts, step/num_pos int, the rest float.

    An empty float cell is NaN, a value not measured at that row: older refinement-stage logs (such as
    checkpoints/campaign/refine_r2_train_log.csv) left the fold-sample columns empty between checkpoints."""
    path = Path(path)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not set(REQUIRED) <= set(reader.fieldnames):
            raise ValueError(f"{path}: not a training log (columns {reader.fieldnames}, needs {', '.join(REQUIRED)})")
        try:
            return [{k: (int(float(v)) if k in INTEGER else float(v or "nan")) for k, v in r.items()} for r in reader]
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: not a training log (a value is not a number: {err})") from None


def concat_logs(logs: list[list[dict]]) -> list[dict]:
    """Logs of consecutive runs (each numbered from step 1, e.g. a fine-tune after a run) -> one log, steps go on."""
    out, offset = [], 0
    for rows in logs:
        out.extend({**r, "step": r["step"] + offset} for r in rows)
        offset = out[-1]["step"] if out else offset
    return out


def smooth(values, window: int = 10) -> list[float]:
    """Trailing moving average over `window` values (same length as the input)."""
    out, acc = [], 0.0
    vals = list(values)
    for i, v in enumerate(vals):
        acc += v
        if i >= window:
            acc -= vals[i - window]
        out.append(acc / min(i + 1, window))
    return out


def plot_losses(rows: list[dict], ax=None, window: int = 10):
    """Plot total and per-term losses against step (raw faint, smoothed solid); returns the axis."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    steps = [r["step"] for r in rows]
    terms = [k for k in rows[0] if k not in ("step", "loss", "lr", "num_pos", "pairs_per_s")] if rows else []
    colors = ["k", "tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for key, color in zip(["loss", *terms], colors * 2):
        vals = [r[key] for r in rows]
        ax.plot(steps, vals, color=color, alpha=0.2, lw=0.8)
        ax.plot(steps, smooth(vals, window), color=color, lw=1.6, label="total" if key == "loss" else key)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def save_loss_curve(path: str | os.PathLike, rows: list[dict]) -> None:
    """Save `plot_losses(rows)` as a PNG: temp file then rename."""
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    fig = Figure(figsize=(7, 4))
    plot_losses(rows, fig.subplots())
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
