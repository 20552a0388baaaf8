"""Track any video with a SiamPolar checkpoint: `python -m siampolar_lib.track --checkpoint CKPT --video V --box x,y,w,h --out OUT`.

OUT ending in .mp4 or .gif gets the overlaid video, and the masks go to a sibling folder `<stem>_masks/`;
any other OUT is a folder that gets `overlay.mp4` and `masks/`. One mask PNG per frame (frame 0's mask is
the given box, as the tracker starts from a box, not a mask): 0/255 for one `--box`; with several (`--box`
repeated, `--box=-10,5,40,40` for a negative x) DAVIS-2017 palette PNGs, 0 background and k for the k-th
box (overlaps go to the higher score), and an overlay with a colour per object. `--engine onnxruntime`
(the default) runs the network in ONNX Runtime (exported once and cached, siampolar_lib.export_onnx);
`--engine torch` in PyTorch.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from .checkpoint import CheckpointError, load_model
from .device import pick_device
from .engine import DEFAULT_ENGINE, ENGINES
from .geometry.boxes import validate_box
from .multi import MultiTracker, label_map, track_objects, write_label_png
from .video import VideoError, read_frames, video_fps, write_masks, write_video
from .viz import render_objects
# Moved to siampolar_lib.video_tracking; re-exported here for older imports (deprecated).
from .video_tracking import ScoreMapRecorder, box_result, render_results, track_frames  # noqa: F401


def parse_box(text: str) -> np.ndarray:
    """'x,y,w,h' -> (4,) float box; ValueError naming the text when it is not four numbers."""
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        box = np.array([float(p) for p in parts])
    except ValueError:
        raise ValueError(f"--box must be four numbers x,y,w,h, got {text!r}") from None
    if box.size != 4:
        raise ValueError(f"--box must be four numbers x,y,w,h, got {text!r}")
    return box


def output_paths(out: str | os.PathLike) -> tuple[Path, Path]:
    """Where the overlaid video and the mask folder go for an --out value (see the module docstring)."""
    out = Path(out)
    if out.suffix.lower() in (".mp4", ".gif"):
        return out, out.with_name(out.stem + "_masks")
    if out.suffix:
        raise ValueError(f"--out {out}: use a .mp4 or .gif file, or a folder name without a suffix")
    return out / "overlay.mp4", out / "masks"


def track_video(checkpoint: str | os.PathLike, video: str | os.PathLike, box_xywh, out: str | os.PathLike,
                device: str = "auto", max_frames: int | None = None, progress: bool = True,
                engine: str = DEFAULT_ENGINE) -> dict:
    """Track a video file or frame folder from first-frame boxes; write the overlay video and mask PNGs.

    box_xywh: one box (4,) or several (N, 4), frame pixels (several: palette PNGs, see the module docstring).
    engine: "onnxruntime" or "torch" (engine.make_engine; falls back to torch with a one-line message).
    Returns a summary dict: frames, video (path), masks (folder), fps (tracker frames/s), lost (frames).
    Errors: an unreadable video or empty folder (VideoError), a box outside the frame (ValueError), a bad
    checkpoint (CheckpointError) -- each naming the file or box.
    """
    boxes = np.asarray(box_xywh, dtype=np.float64)
    boxes = boxes[None] if boxes.ndim == 1 else boxes
    if boxes.ndim != 2 or boxes.shape[1] != 4 or len(boxes) == 0:
        raise ValueError(f"boxes must be (4,) or (N, 4) x,y,w,h, got shape {boxes.shape}")
    video_path, masks_dir = output_paths(out)
    src = Path(video).resolve()
    if video_path.resolve() == src or masks_dir.resolve() == src:
        raise ValueError(f"--out {out} would overwrite the input {video}")
    frames = read_frames(video, max_frames=max_frames)
    for k, b in enumerate(boxes):
        validate_box(b, frames[0].shape[:2], name=f"--box {k + 1} for {Path(video).name}")
    dev = pick_device(device)
    tracker = MultiTracker(load_model(checkpoint, device=dev), device=dev, engine=engine)
    per_frame = track_objects(tracker, frames, boxes, progress=progress)  # [frame][object]
    fps_in = video_fps(video)
    if len(boxes) == 1:
        results = [r[0] for r in per_frame]
        write_video(video_path, render_results(frames, results), fps=min(fps_in, 25.0))
        write_masks(masks_dir, [r.mask for r in results])
    else:
        masks_dir.mkdir(parents=True, exist_ok=True)
        images = []
        for i, (frame, res) in enumerate(zip(frames, per_frame)):
            labels = label_map(res, frame.shape)
            write_label_png(masks_dir / f"{i:05d}.png", labels)
            images.append(render_objects(frame, labels, [r.polygon for r in res], [r.score for r in res], f"{i}"))
        write_video(video_path, images, fps=min(fps_in, 25.0))
    return {"frames": len(frames), "objects": len(boxes), "video": str(video_path), "masks": str(masks_dir),
            "fps": round(tracker.fps, 2), "lost": int(sum(r.lost for res in per_frame for r in res)),
            "engine": tracker.engine.name}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for bad input, with a one-line message)."""
    ap = argparse.ArgumentParser(prog="python -m siampolar_lib.track", description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="a SiamPolar checkpoint (.pt)")
    ap.add_argument("--video", required=True, help="a video file (.mp4, .avi, .gif, ...) or a folder of frames")
    ap.add_argument("--box", required=True, action="append",
                    help="first-frame box x,y,w,h in pixels; repeat for several objects (--box=-10,5,40,40 for x < 0)")
    ap.add_argument("--out", required=True, help="result.mp4, result.gif, or a folder")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    ap.add_argument("--max-frames", type=int, default=None, help="track only the first N frames")
    ap.add_argument("--engine", default=DEFAULT_ENGINE, choices=ENGINES,
                    help=f"network runtime (default {DEFAULT_ENGINE}; torch is the fallback)")
    args = ap.parse_args(argv)
    try:
        boxes = np.stack([parse_box(b) for b in args.box])
        summary = track_video(args.checkpoint, args.video, boxes, args.out, device=args.device,
                              max_frames=args.max_frames, engine=args.engine)
    except (VideoError, CheckpointError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    objects = f", {summary['objects']} objects" if summary["objects"] > 1 else ""
    print(f"tracked {summary['frames']} frames{objects} at {summary['fps']} fps with {summary['engine']} "
          f"({summary['lost']} lost); "
          f"wrote {summary['video']} and {summary['masks']}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
