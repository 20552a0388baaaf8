"""The training log: `train_log.csv` (one row per step) and `loss_curve.png`, both written atomically."""
from __future__ import annotations

import csv
import os
from pathlib import Path

from siampolar_lib.io import atomic_write

LOG_COLUMNS = ("step", "loss", "cls", "ctr", "rays", "lr", "num_pos", "pairs_per_s")


def write_log(path: str | os.PathLike, rows: list[dict]) -> None:
    """Write rows (dicts with LOG_COLUMNS) as CSV: temp file then rename."""
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=LOG_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r[k] for k in LOG_COLUMNS})


def read_log(path: str | os.PathLike) -> list[dict]:
    """Read a train_log.csv back: list of dicts, step/num_pos int, the rest float."""
    path = Path(path)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or tuple(reader.fieldnames) != LOG_COLUMNS:
            raise ValueError(f"{path}: not a training log (columns {reader.fieldnames}, expected {LOG_COLUMNS})")
        return [{k: (int(float(v)) if k in ("step", "num_pos") else float(v)) for k, v in r.items()}
                for r in reader]


def concat_logs(logs: list[list[dict]]) -> list[dict]:
    """Logs of consecutive runs (each numbered from step 1, e.g. a fine-tune after a run) -> one log, steps running on."""
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
    for key, color in (("loss", "k"), ("cls", "tab:blue"), ("ctr", "tab:orange"), ("rays", "tab:green")):
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
