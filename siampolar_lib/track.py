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
import torch

from .geometry.boxes import clip_box, validate_box
from .geometry.polar import mask_to_rays, rays_to_polygon
from .video import VideoError, read_frames, video_fps, write_masks, write_video
from .viz import render_track


class ScoreMapRecorder(torch.nn.Module):
    """Wraps a SiamPolar network and keeps the last score map, sigmoid(cls) x sigmoid(ctr) of the finest level.

    Pass it to Tracker in place of the network: `template`, `track` and `forward` are passed through;
    `last_score_map` is (h, w) float32 in [0, 1] over the search crop (None before the first `track`).
    """

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.last_score_map: np.ndarray | None = None

    def template(self, z: torch.Tensor):
        """Cache the template features (the wrapped model's `template`)."""
        return self.model.template(z)

    def track(self, x: torch.Tensor) -> dict:
        """The wrapped model's `track(x)`; records the finest level's score map of the first crop."""
        out = self.model.track(x)
        score = torch.sigmoid(out["cls"][0][0, 0].float()) * torch.sigmoid(out["ctr"][0][0, 0].float())
        self.last_score_map = score.detach().cpu().numpy()
        return out

    def forward(self, template: torch.Tensor, search: torch.Tensor) -> dict:
        """The wrapped model's forward."""
        return self.model(template, search)


def box_result(frame_shape: tuple[int, int], box_xywh):
    """Frame 0's result: the given box as mask (H, W) bool and as a 36-ray polygon, score 1, not lost."""
    from .tracker import TrackResult

    H, W = frame_shape[:2]
    x, y, w, h = clip_box(box_xywh, (H, W))
    mask = np.zeros((H, W), bool)
    mask[int(round(y)):int(round(y + h)), int(round(x)):int(round(x + w))] = True
    centre = np.array([x + w / 2.0 - 0.5, y + h / 2.0 - 0.5])
    polygon = rays_to_polygon(centre, mask_to_rays(mask, centre)) if mask.any() else np.repeat(centre[None], 36, 0)
    return TrackResult(mask=mask, polygon=polygon, box=np.array([x, y, w, h]), score=1.0, lost=False)


def track_frames(tracker, frames: list[np.ndarray], box_xywh, progress: bool = False,
                 score_maps: list | None = None, desc: str = "tracking") -> list:
    """Run a Tracker over frames from a first-frame box: one TrackResult per frame (frame 0 = the box).

    frames: list of (H, W, 3) uint8 RGB; box_xywh (4,) frame pixels. When `score_maps` is a list and the
    tracker's model is a ScoreMapRecorder, each frame's score map is appended to it (None for frame 0).
    """
    from tqdm.auto import tqdm

    if not frames:
        raise ValueError("no frames to track")
    box = validate_box(box_xywh, frames[0].shape[:2], name="first-frame box")
    tracker.init(frames[0], box)
    results = [box_result(frames[0].shape, box)]
    recorder = tracker.model if isinstance(tracker.model, ScoreMapRecorder) else None
    if score_maps is not None:
        score_maps.append(None)
    for frame in tqdm(frames[1:], desc=desc, disable=not progress, unit="frame"):
        results.append(tracker.track(frame))
        if score_maps is not None:
            score_maps.append(None if recorder is None else recorder.last_score_map)
    return results


def render_results(frames, results, rays: bool = True) -> list[np.ndarray]:
    """Overlay every TrackResult on its frame (viz.render_track): list of (H, W, 3) uint8 RGB."""
    return [render_track(f, r.mask, r.polygon, r.score, rays=rays, label=f"{i}")
            for i, (f, r) in enumerate(zip(frames, results))]


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
    from .checkpoint import load_model
    from .device import pick_device
    from .tracker import Tracker

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
    from .checkpoint import CheckpointError

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
