"""The main job, `python -m siampolar_lib.commands.demo --out runs/demo` (what `make demo` runs); nothing is downloaded.

It tracks the 15 DAVIS-2016 val sequences of ../shared/data/DAVIS (15 of the 20; none trained on) with the shipped
checkpoint when a DAVIS folder is found (`paths.davis_root()`), else a synthetic DAVIS set it generates under OUT;
scores the model and the baselines (static, oracle_box, polar_bound, csrt) with `evaluation.evaluate`, prints the
J&F tables, and writes under OUT: `results.json` (the model), `<method>/...` (masks and per-method results),
`summary.txt` (the J&F table of every method) and `<sequence>.gif` (one sequence with its overlays).
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import torch

from siampolar_lib.data.davis import first_box, list_sequences, load_sequence, read_frame
from siampolar_lib.data.synthetic import make_synthetic_davis
from siampolar_lib.device import describe_device, pick_device, seed_everything
from siampolar_lib.errors import UserError
from siampolar_lib.evaluation.evaluate import MODEL_METHODS, check_eval_output, evaluate_into
from siampolar_lib.evaluation.metrics import check_min_frames
from siampolar_lib.evaluation.report import format_table
from siampolar_lib.io import write_text
from siampolar_lib.outputs import owned_output
from siampolar_lib.paths import check_davis_env, davis_available, davis_root, default_checkpoint
from siampolar_lib.splits import REAL_VAL_SEQUENCES
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.engine import DEFAULT_ENGINE, make_engine
from siampolar_lib.tracking.loop import track_frames
from siampolar_lib.tracking.tracker import Tracker
from siampolar_lib.training.checkpoint import load_model
from siampolar_lib.video_writers import write_gif
from siampolar_lib.viz import render_results

DEMO_BASELINES = ("static", "oracle_box", "polar_bound", "csrt")


def demo_data(out: str | os.PathLike, sequences: int = 4, frames: int = 24) -> tuple[Path, list[str], bool]:
    """Where the demo's videos come from: (DAVIS root, sequence names, real?).

    Real: the DAVIS-2016 val sequences (splits.REAL_VAL_SEQUENCES) of the DAVIS folder. Otherwise a synthetic DAVIS
    set (seed 0) is generated once under out/synthetic_davis and its val split is used.
    """
    if davis_available():
        root = davis_root()
        present = set(list_sequences(root, "val"))
        names = [s for s in REAL_VAL_SEQUENCES if s in present]
        if names:
            return root, names, True
    root = Path(out) / "synthetic_davis"
    if not (root / "JPEGImages").is_dir():
        make_synthetic_davis(root, sequences=sequences, frames=frames, seed=0)
    return root, list_sequences(root, "val"), False


def _davis_input() -> dict[str, Path]:
    """The DAVIS folder the demo may read, as {its name: path} for `check_eval_output` ({} when there is none);
    UserError for a $SIAMPOLAR_DAVIS_ROOT that is no DAVIS folder (the demo would run on synthetic data)."""
    check_davis_env()
    if not davis_available():
        return {}
    return {"$SIAMPOLAR_DAVIS_ROOT" if os.environ.get("SIAMPOLAR_DAVIS_ROOT") else "DAVIS folder": davis_root()}


def sequence_gif(path: str | os.PathLike, model, root: str | os.PathLike, name: str,
                 max_frames: int | None = None, scale: float = 0.5, fps: float = 12.0, device=None,
                 cfg: TrackerConfig = TrackerConfig()) -> Path:
    """Track one DAVIS sequence from its first box and write the overlays (mask, contour, rays, score) as a GIF.

    scale shrinks the GIF's frames (0.5: 427 x 240 for DAVIS 480p) to keep the file small.
    """
    seq = load_sequence(root, name)
    frames = [read_frame(p) for p in seq.frame_paths[:max_frames]]
    results = track_frames(Tracker(model, cfg, device=device), frames, first_box(seq), progress=False)
    images = render_results(frames, results)
    if scale != 1.0:
        images = [cv2.resize(im, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for im in images]
    return write_gif(path, images, fps=fps)


def run_demo(out: str | os.PathLike = "runs/demo", *, checkpoint: str | os.PathLike | None = None,
             sequences: list[str] | int | None = None, max_frames: int | None = None,
             baselines=DEMO_BASELINES, device: str = "auto", progress: bool = True,
             overwrite: bool | None = None, engine: str = DEFAULT_ENGINE,
             tracker_cfg: TrackerConfig = TrackerConfig()) -> dict:
    """Evaluate the shipped model and the baselines on the demo data; write results and a GIF under `out`.

    sequences: names, or an int N >= 1 for the first N of the default list (DAVIS-2016 val or synthetic val).
    max_frames: at least 3 (the DAVIS protocol scores neither the first nor the last frame). The demo owns
    `out` like `evaluation.evaluate.evaluate_tracker` (see `check_eval_output` for overwrite): written into a
    fresh folder and swapped in when done; it may not be, contain or lie inside the DAVIS folder or the checkpoint
    (`outputs.check_output_apart`). engine: "onnxruntime" (exported once, cached; torch when it cannot)
    or "torch"; tracker_cfg: the tracker's settings for the evaluation and the GIF.
    Returns {"data": "real"|"synthetic", "sequences": [...], "methods": evaluate_tracker's dict, "gif": path}.
    """
    # Every argument is checked before any work.
    if isinstance(sequences, int) and sequences < 1:
        raise UserError(f"--sequences {sequences}: give at least 1 sequence (a number N >= 1, or names)")
    check_min_frames(max_frames)
    ckpt = Path(checkpoint) if checkpoint is not None else default_checkpoint()
    inputs = {"--checkpoint": ckpt, **_davis_input()}
    out = check_eval_output(out, overwrite, inputs)
    seed_everything(0)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    dev = pick_device(device)
    model = load_model(ckpt, device=dev)  # a bad checkpoint fails here, before any work
    model = make_engine(model, engine, dev)  # one export (or cache hit) for the evaluation and the GIF
    with owned_output(out) as staging:
        check_eval_output(out, overwrite, inputs)  # again, under the lock: another run may have ended meanwhile
        root, names, real = demo_data(staging)
        if isinstance(sequences, int):
            names = names[:sequences]
        elif sequences:
            names = list(sequences)
        data = "real DAVIS-2016 val" if real else "synthetic DAVIS"
        print(f"SiamPolar demo: checkpoint {ckpt.name}, {data} ({len(names)} sequence{'s' * (len(names) != 1)}: "
              f"{', '.join(names)}), device {describe_device(dev)}, engine {model.name}")
        methods = evaluate_into(model, root, staging, sequences=names, baselines=list(baselines), device=dev,
                                mode=tracker_cfg.mode, cfg=tracker_cfg, max_frames=max_frames, progress=progress,
                                verbose=False, checkpoint=ckpt)
        table = format_table({m: r["summary"] for m, r in methods.items()},
                             columns=("JF_M", "J_M", "J_O", "J_D", "F_M", "F_O", "F_D", "fps"))
        print("\nJ&F on", "DAVIS-2016 val" if real else "synthetic val", "(percent; fps = frames/s):")
        print(table)
        write_text(staging / "summary.txt", table + "\n")
        sequence_gif(staging / f"{names[0]}.gif", model, root, names[0], max_frames=max_frames, device=dev,
                     cfg=tracker_cfg)
    gif = out / f"{names[0]}.gif"
    model_method = MODEL_METHODS[tracker_cfg.mode]
    jf = methods[model_method]["summary"]["JF_M"]
    print(f"\n{model_method} J&F mean {100 * jf:.1f}; wrote {out}/results.json, {out}/summary.txt, {gif}")
    return {"data": "real" if real else "synthetic", "sequences": names, "methods": methods, "gif": gif}
