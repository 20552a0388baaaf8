"""Validation-fold J&F against training pairs seen, from a campaign's checkpoints: is more training still paying?

    python data_scripts/learning_curve.py --points campaign.json --checkpoints A.pt B.pt ... [--offset-pairs N]
        --label NAME --png checkpoints/learning_curve.png [--stage SHIPPED.pt]

Each checkpoint (a run's last.pt copies or model-only files) is tracked over the validation fold of train
sequences (`splits.VALIDATION_FOLD_SEQUENCES`, full-rate train sample; never a val sequence) with the tracker
defaults; pairs seen = offset + step x batch x world size (batch and world size from the checkpoint's meta).
With --stage, each checkpoint is scored with that network's refinement stage put on its first stage
(`checkpoint.with_stage`: the campaign's first stages share the stage's early backbone blocks), the system
as it ships. The points are added to the JSON file `--points` (kept across phases and sessions: it is the campaign's
record)
and the whole curve is drawn into `--png`.
"""
from __future__ import annotations

import json
from pathlib import Path

from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.data.davis import check_sequence_names
from siampolar_lib.errors import UserError
from siampolar_lib.evaluation.selection import fold_scores
from siampolar_lib.io import atomic_write, write_text
from siampolar_lib.outputs import check_output_apart, check_output_file, output_lock
from siampolar_lib.paths import davis_train_sample_root
from siampolar_lib.splits import VALIDATION_FOLD_SEQUENCES
from siampolar_lib.training.checkpoint import load_checkpoint, load_model, model_from_checkpoint, with_stage
from siampolar_lib.viz import draw_learning_curve


def pairs_seen(ckpt: dict, offset: int = 0) -> int:
    """Training pairs behind a checkpoint: offset + step x batch x world size (from its training config)."""
    meta = ckpt.get("meta", {})
    batch = int(meta.get("train_config", {}).get("batch", 0))
    if batch <= 0:
        raise UserError("checkpoint meta has no train_config.batch: pass a run's checkpoint or give --batch")
    return int(offset + int(ckpt.get("step", 0)) * batch * int(meta.get("world_size", 1)))


def plot(points: list[dict], path: Path, note: str = "") -> Path:
    """The learning curve into a PNG: J&F and F_M against pairs seen, one line per label (`viz.draw_learning_curve`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    draw_learning_curve(axes, points)
    fig.suptitle(f"Learning curve: validation fold of DAVIS-2016 train (dog-agility, motorbike, surf){note}",
                 fontsize=10)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def check_outputs(a, root: Path) -> Path:
    """--points and --png checked before any scoring: file paths (--png a .png) apart from every input (a checkpoint,
    --stage, --davis-root), and apart from each other. Returns --points as a Path."""
    inputs = [("--checkpoints", c) for c in a.checkpoints] + [("--stage", a.stage), ("--davis-root", root)]
    points_path = check_output_file(a.points, "--points")
    check_output_apart(points_path, inputs, "--points")
    if a.png:
        check_output_file(a.png, "--png")
        check_output_apart(a.png, [*inputs, ("--points", points_path)], "--png")
        if Path(a.png).suffix.lower() != ".png":
            raise UserError(f"{a.png}: --png must be a .png file name")
    return points_path


POINT_SCORES = ("JF_M", "J_M", "F_M")  # what a point holds and the figure draws (score_checkpoint writes them)
POINT_KEYS = {"pairs", "label", *POINT_SCORES}


def read_points(path: Path) -> list[dict]:
    """The campaign's points so far ([] for a missing file): a JSON list of {pairs, label, ...} rows; UserError
    naming the file for anything else."""
    if not path.is_file():
        return []
    try:
        points = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: --points is not a JSON file ({err})") from None
    if not isinstance(points, list) or not all(isinstance(p, dict) and POINT_KEYS <= set(p) for p in points):
        raise UserError(f"{path}: --points must be a JSON list of points, each with {', '.join(sorted(POINT_KEYS))} "
                        "(an earlier learning_curve.py run's file)")
    if not all(isinstance(p[k], (int, float)) and not isinstance(p[k], bool) for p in points for k in POINT_SCORES):
        raise UserError(f"{path}: --points: a point's {', '.join(POINT_SCORES)} must be numbers")
    return points


def score_checkpoint(path: str, stage, stage_path: str | None, root: Path, names: list[str], offset: int,
                     label: str) -> dict:
    """One point: the checkpoint's fold J&F, J_M, F_M (with `stage` on it when given) at its pairs seen; printed."""
    ckpt = load_checkpoint(path)
    model = model_from_checkpoint(ckpt, path, device="cpu")
    if stage is not None:
        try:
            model = with_stage(model, stage)
        except ValueError as err:
            raise UserError(f"{path}: cannot carry the stage of {stage_path}: {err}") from err
    scores = fold_scores(model, root, names)
    row = {"checkpoint": Path(path).name, "step": int(ckpt.get("step", 0)), "pairs": pairs_seen(ckpt, offset),
           "label": label, **{k: scores[k] for k in ("JF_M", "J_M", "F_M")}}
    print(f"{row['checkpoint']}: step {row['step']}, {row['pairs']} pairs: J&F {100 * row['JF_M']:.1f} "
          f"J_M {100 * row['J_M']:.1f} F_M {100 * row['F_M']:.1f}", flush=True)
    return row


@cli_main
def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    ap = ArgumentParser(prog="data_scripts/learning_curve.py", description=__doc__.splitlines()[0])
    ap.add_argument("--points", required=True, help="JSON file of the campaign's points (created if missing)")
    ap.add_argument("--checkpoints", nargs="*", default=[], help="checkpoints to score and add")
    ap.add_argument("--offset-pairs", type=int, default=0, help="pairs seen before these checkpoints' run began")
    ap.add_argument("--label", default="", help="a name for these points (e.g. the phase)")
    ap.add_argument("--png", default=None, help="draw the whole curve into this PNG")
    ap.add_argument("--stage", default=None, help="score with this checkpoint's refinement stage on each first stage")
    ap.add_argument("--davis-root", default=None, help="default: the DAVIS-2016 train sample")
    ap.add_argument("--sequences", default=",".join(VALIDATION_FOLD_SEQUENCES),
                    help="comma-separated train sequences (default: the validation fold)")
    a = ap.parse_args(argv)
    names = [n for n in a.sequences.split(",") if n.strip()]
    if not names:
        raise UserError(f"--sequences {a.sequences!r}: name at least one sequence")
    check_sequence_names(names, "--sequences")
    if a.offset_pairs < 0:
        raise UserError(f"--offset-pairs {a.offset_pairs}: pairs seen before the run cannot be negative")
    root = Path(a.davis_root) if a.davis_root else davis_train_sample_root()
    points_path = check_outputs(a, root)
    with output_lock(points_path, "--points"):  # two runs adding points at once would lose one's rows
        points = read_points(points_path)
        if a.png and not points and not a.checkpoints:
            raise UserError(f"{points_path}: no points to draw into --png {a.png} (the file is missing or empty): "
                            "give --checkpoints to score")
        stage = load_model(a.stage, device="cpu") if a.stage else None
        for path in a.checkpoints:
            row = score_checkpoint(path, stage, a.stage, root, names, a.offset_pairs, a.label)
            points = [p for p in points if (p["pairs"], p["label"]) != (row["pairs"], row["label"])] + [row]
            write_text(points_path, json.dumps(sorted(points, key=lambda p: p["pairs"]), indent=1) + "\n")
    if a.png:
        note = f", each first stage with the refinement stage of {Path(a.stage).name}" if a.stage else ""
        print(f"wrote {plot(points, Path(a.png), note)}")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
