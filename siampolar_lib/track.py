"""Track any video with a SiamPolar checkpoint: `python -m siampolar_lib.track --checkpoint CKPT --video V --box x,y,w,h --out OUT`.

OUT ending in .mp4 or .gif gets the overlaid video, and the masks go to a sibling folder `<stem>_masks/`;
any other OUT is a folder that gets `overlay.mp4` and `masks/`. Masks are 0/255 PNGs, one per frame
(frame 0's mask is the given box, as the tracker starts from a box, not a mask).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from .checkpoint import CheckpointError, load_model
from .device import pick_device
from .geometry.boxes import validate_box
from .tracker import Tracker
from .video import VideoError, read_frames, video_fps, write_masks, write_video
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
                device: str = "auto", max_frames: int | None = None, progress: bool = True) -> dict:
    """Track a video file or frame folder from a first-frame box; write the overlay video and mask PNGs.

    Returns a summary dict: frames, video (path), masks (folder), fps (tracker frames/s), lost (frames).
    Errors: an unreadable video or empty folder (VideoError), a box outside the frame (ValueError), a bad
    checkpoint (CheckpointError) -- each naming the file or box.
    """
    video_path, masks_dir = output_paths(out)
    src = Path(video).resolve()
    if video_path.resolve() == src or masks_dir.resolve() == src:
        raise ValueError(f"--out {out} would overwrite the input {video}")
    frames = read_frames(video, max_frames=max_frames)
    box = validate_box(box_xywh, frames[0].shape[:2], name=f"--box for {Path(video).name}")
    dev = pick_device(device)
    tracker = Tracker(load_model(checkpoint, device=dev), device=dev)
    results = track_frames(tracker, frames, box, progress=progress)
    fps_in = video_fps(video)
    write_video(video_path, render_results(frames, results), fps=min(fps_in, 25.0))
    write_masks(masks_dir, [r.mask for r in results])
    return {"frames": len(frames), "video": str(video_path), "masks": str(masks_dir),
            "fps": round(tracker.fps, 2), "lost": int(sum(r.lost for r in results))}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for bad input, with a one-line message)."""
    ap = argparse.ArgumentParser(prog="python -m siampolar_lib.track", description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="a SiamPolar checkpoint (.pt)")
    ap.add_argument("--video", required=True, help="a video file (.mp4, .avi, .gif, ...) or a folder of frames")
    ap.add_argument("--box", required=True, help="first-frame box x,y,w,h in pixels")
    ap.add_argument("--out", required=True, help="result.mp4, result.gif, or a folder")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    ap.add_argument("--max-frames", type=int, default=None, help="track only the first N frames")
    args = ap.parse_args(argv)
    try:
        summary = track_video(args.checkpoint, args.video, parse_box(args.box), args.out, device=args.device,
                              max_frames=args.max_frames)
    except (VideoError, CheckpointError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"tracked {summary['frames']} frames at {summary['fps']} fps ({summary['lost']} lost); "
          f"wrote {summary['video']} and {summary['masks']}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
