"""Track any video with a SiamPolar checkpoint: `siampolar-track --checkpoint CKPT --video V --box x,y,w,h --out OUT`
(or `python -m siampolar_lib.commands.track`).

OUT ending in .mp4 or .gif gets the overlaid video, and the masks go to a sibling folder `<stem>_masks/`;
any other OUT is a folder that gets `overlay.mp4` and `masks/`. One mask PNG per frame, named as its frame
(`<frame stem>.png` for a frame folder, `00000.png`, ... for a video file); frame 0's mask is the given box, as
the tracker starts from a box, not a mask: 0/255 for one `--box`; with several (`--box`
repeated) DAVIS-2017 palette PNGs, 0 background and k for the k-th box (overlaps go to the higher score), and
an overlay with a colour per object. `--engine onnxruntime` (the default) runs the network in ONNX Runtime
(exported once and cached, `tracking.onnx_export`); `--engine torch` in PyTorch.
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from siampolar_lib.device import pick_device
from siampolar_lib.errors import UserError
from siampolar_lib.geometry.boxes import check_box_size, validate_box
from siampolar_lib.io import write_label_png
from siampolar_lib.outputs import (
    check_output_apart,
    check_output_file,
    check_output_folder,
    is_empty_folder,
    owned_output,
)
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.engine import DEFAULT_ENGINE, make_engine
from siampolar_lib.tracking.loop import track_sequence
from siampolar_lib.tracking.multi import MultiTracker, label_map
from siampolar_lib.tracking.tracker import TrackResult
from siampolar_lib.training.checkpoint import load_model
from siampolar_lib.video import check_source, frame_names, iter_named_frames, video_fps
from siampolar_lib.video_writers import VIDEO_SUFFIXES, VideoSink, write_png
from siampolar_lib.viz import render_objects, render_track


def output_paths(out: str | os.PathLike) -> tuple[Path, Path]:
    """Where the overlaid video and the mask folder go for an --out value (see the module docstring)."""
    out = Path(out)
    if out.suffix.lower() in (".mp4", ".gif"):
        return out, out.with_name(out.stem + "_masks")
    if out.suffix:
        raise UserError(f"--out {out}: use a .mp4 or .gif file, or a folder name without a suffix")
    return out / "overlay.mp4", out / "masks"


def _not_from_track(video_path: Path, masks_dir: Path, folder: Path | None) -> list[Path]:
    """What is at the outputs that no track run writes: a video path that is not a file, anything in the mask
    folder but PNG files (named as their frames, so any name), and for a folder --out anything in it but the two."""
    found = [video_path] if video_path.exists() and not video_path.is_file() else []
    if masks_dir.is_dir():
        found += sorted(p for p in masks_dir.iterdir() if not (p.is_file() and p.suffix.lower() == ".png"))
    if folder is not None and folder.is_dir():
        found += sorted(p for p in folder.iterdir() if p.name not in (video_path.name, masks_dir.name))
    return found


def check_track_outputs(video: str | os.PathLike, out: str | os.PathLike, overwrite: bool | None = False,
                        checkpoint: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Validate --out before any work: writable, apart from the inputs, and not an earlier run unless overwrite.

    No output (the folder --out, or the video file and its mask folder) may be, contain or lie inside --video
    or --checkpoint (`outputs.check_output_apart`). overwrite False (the CLI's default): refuse any existing output;
    True: replace an earlier track run's outputs (the video, a mask folder of PNGs, and in a folder --out nothing
    else), refusing a folder that holds anything else, as replacing it would delete that; None (the library's): the
    same, and only where the mask folder is there (an earlier run left it).
    """
    video_path, masks_dir = output_paths(out)
    inputs = {"--video": video, "--checkpoint": checkpoint}
    check_output_apart(out, inputs)
    check_output_apart(masks_dir, inputs, "the mask folder of --out")
    folder = None if Path(out).suffix else Path(out)
    if folder is None:
        check_output_file(video_path)
        check_output_folder(masks_dir, "the mask folder of --out")
        taken = [p for p in (video_path, masks_dir) if p.exists() and not (p.is_dir() and is_empty_folder(p))]
    else:
        check_output_folder(out)
        taken = [folder] if not is_empty_folder(folder) else []
    if not taken:
        return video_path, masks_dir
    foreign = _not_from_track(video_path, masks_dir, folder)
    if overwrite and foreign:
        raise UserError(f"{foreign[0]}: --overwrite replaces only an earlier track run's outputs (the overlay video "
                        "and a folder of mask PNGs), and this is not one of them; move it away or choose another --out")
    if not (overwrite or (overwrite is None and masks_dir.is_dir() and not foreign)):
        raise UserError(f"{taken[0]}: already exists (an earlier run?); pass --overwrite to replace it, "
                        "or choose another --out")
    return video_path, masks_dir


def parse_box(text: str) -> np.ndarray:
    """'x,y,w,h' -> (4,) float box (x or y may be negative); ValueError naming the text otherwise."""
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        box = np.array([float(p) for p in parts])
    except ValueError:
        raise UserError(f"--box must be four numbers x,y,w,h, got {text!r}") from None
    if box.size != 4 or not np.all(np.isfinite(box)):
        raise UserError(f"--box must be four numbers x,y,w,h (all finite), got {text!r}")
    try:
        check_box_size(box, "--box")
    except ValueError as err:
        raise UserError(str(err)) from None
    return box


def _as_boxes(box_xywh) -> np.ndarray:
    """One box (4,) or "x,y,w,h", or several (N, 4) -> (N, 4) float64; UserError for any other shape."""
    boxes = parse_box(box_xywh) if isinstance(box_xywh, str) else np.asarray(box_xywh, dtype=np.float64)
    boxes = boxes[None] if boxes.ndim == 1 else boxes
    if boxes.ndim != 2 or boxes.shape[1] != 4 or len(boxes) == 0:
        raise UserError(f"boxes must be (4,) or (N, 4) x,y,w,h, got shape {boxes.shape}")
    return boxes


def _write_frame(mask_path: Path, sink: VideoSink, frame: np.ndarray, res: list[TrackResult], n: int) -> None:
    """Frame n's mask PNG (0/255 for one object, a palette label map for several) and its overlay frame."""
    if len(res) == 1:
        r = res[0]
        write_png(mask_path, r.mask.astype(np.uint8) * 255)
        sink.write(render_track(frame, r.mask, r.polygon, r.score, rays=True, label=f"{n}"))
    else:
        labels = label_map(res, frame.shape)
        write_label_png(mask_path, labels)
        sink.write(render_objects(frame, labels, [r.polygon for r in res], [r.score for r in res], label=f"{n}"))


def _track_stream(tracker: MultiTracker, video, boxes: np.ndarray, max_frames: int | None, masks_dir: Path,
                  sink: VideoSink, progress: bool) -> tuple[int, int]:
    """Track the video one frame at a time, writing each mask (named as its frame) and overlay at once.

    Returns (frames, lost object-frames).
    """
    named = iter(iter_named_frames(video, max_frames))
    first = next(named, None)
    if first is None:
        return 0, 0
    for k, b in enumerate(boxes):  # named for the command line before init checks them again
        name = f"--box {k + 1}" if len(boxes) > 1 else "--box"
        validate_box(b, first[1].shape[:2], name=f"{name} for {Path(video).name}")
    # Two views of one stream: the loop pulls frame n from one while frame n's name waits in the other (tee keeps
    # one frame at most).
    for_writer, for_tracker = itertools.tee(itertools.chain([first], named))
    results = track_sequence(tracker, (frame for _, frame in for_tracker), boxes)
    n, lost = 0, 0
    for (stem, frame), res in tqdm(zip(for_writer, results), desc="tracking", disable=not progress, unit="frame"):
        _write_frame(masks_dir / f"{stem}.png", sink, frame, res, n)
        lost += sum(bool(r.lost) for r in res)
        n += 1
    return n, lost


def track_video(checkpoint: str | os.PathLike, video: str | os.PathLike, box_xywh, out: str | os.PathLike, *,
                device: str = "auto", max_frames: int | None = None, progress: bool = True,
                overwrite: bool | None = None, engine: str = DEFAULT_ENGINE,
                tracker_cfg: TrackerConfig = TrackerConfig()) -> dict:
    """Track a video file or frame folder from first-frame boxes; write the overlay video and mask PNGs.

    box_xywh: one box (4,) or "x,y,w,h", or several (N, 4): one object each, palette PNGs (module docstring);
    the frame is decoded once and each object tracked with its own template. engine: "onnxruntime" or "torch"
    (`tracking.engine.make_engine`; torch, with a one-line message, when the network cannot be exported);
    tracker_cfg: every object's TrackerConfig.
    Streams: frames are read one at a time and each frame's mask and overlay are written at once, so memory
    does not grow with the video's length. Every argument (box, outputs, source, checkpoint) is checked
    before the first frame is read. Outputs are written to temporary names and renamed when the last frame
    is done (`outputs.owned_output`), so a failed run leaves the previous outputs as they were and no temp behind.
    An existing output is refused (overwrite False), replaced (True), or replaced only if an earlier track run
    wrote it (None, the library's default; the CLI passes --overwrite).
    Returns a summary dict: frames, objects, video (path), masks (folder), fps (tracker frames/s, all objects),
    lost (object-frames), engine (its name).
    Errors: UserError (box, --out, --max-frames), VideoError (an unreadable video or frame, naming it),
    CheckpointError, DeviceUnavailable -- each naming the file or argument.
    """
    boxes = _as_boxes(box_xywh)
    if max_frames is not None and max_frames < 1:
        raise UserError(f"--max-frames {max_frames}: track at least 1 frame")
    video_path, masks_dir = check_track_outputs(video, out, overwrite, checkpoint)
    check_source(video)
    frame_names(video, max_frames)  # a folder's frames: no broken link, no two with one name (one mask each)
    dev = pick_device(device)
    model = load_model(checkpoint, device=dev)  # the checkpoint is checked before any frame is read
    if Path(video).is_file():  # a video file's first frame decoded before the engine is built: one FFmpeg cannot
        next(iter_named_frames(video, 1))  # read is named at once, not after an ONNX export (tens of seconds, busy CPU)
    tracker = MultiTracker(make_engine(model, engine, dev), tracker_cfg)  # one engine
    folder_out = not Path(out).suffix
    target = Path(out) if folder_out else masks_dir
    # A file --out writes the video beside the mask folder, which r.gif and r.mp4 share: lock the folder and both
    # videos, so a killed run's VideoSink temp of either suffix (atomic_write's `.<stem>.<8 random>.tmp<suffix>`,
    # matched exactly so another output's temp is never taken) is stale, and its lock files go too.
    videos = [] if folder_out else sorted({video_path, *(video_path.with_suffix(s) for s in VIDEO_SUFFIXES)})
    stale = [f".{v.stem}.{'[!.]' * 8}.tmp{v.suffix}" for v in videos]
    with owned_output(target, stale, also=videos) as staging:
        check_track_outputs(video, out, overwrite, checkpoint)  # again, under the locks: a run may have ended meanwhile
        masks_tmp = staging / "masks" if folder_out else staging
        masks_tmp.mkdir(exist_ok=True)
        sink_path = staging / video_path.name if folder_out else video_path
        with VideoSink(sink_path, fps=min(video_fps(video), 25.0)) as sink:
            n, lost = _track_stream(tracker, video, boxes, max_frames, masks_tmp, sink, progress)
    return {"frames": n, "objects": len(boxes), "video": str(video_path), "masks": str(masks_dir),
            "fps": round(tracker.fps, 2), "lost": lost, "engine": tracker.engine.name}
