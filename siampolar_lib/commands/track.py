"""Track any video with a SiamPolar checkpoint: `siampolar-track --checkpoint CKPT --video V --box x,y,w,h --out OUT`

The command line over `siampolar_lib.apps.track_video`: arguments, output checks, one call into the library."""
from __future__ import annotations

import numpy as np

from siampolar_lib.apps.track_video import parse_box, track_video
from siampolar_lib.commands.cli import ArgumentParser, cli_main, join_negative_values
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.engine import DEFAULT_ENGINE, ENGINES


@cli_main
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for bad input, with a one-line message)."""
    ap = ArgumentParser(prog="siampolar-track", description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="a SiamPolar checkpoint (.pt)")
    ap.add_argument("--video", required=True, help="a video file (.mp4, .avi, .gif, ...) or a folder of frames")
    ap.add_argument("--box", required=True, action="append",
                    help="first-frame box x,y,w,h in pixels (x, y may be negative); repeat it for several objects")
    ap.add_argument("--out", required=True, help="result.mp4, result.gif, or a folder")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    ap.add_argument("--max-frames", type=int, default=None, help="track only the first N frames")
    ap.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier run at --out")
    ap.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    ap.add_argument("--engine", default=DEFAULT_ENGINE, choices=ENGINES,
                    help=f"network runtime (default {DEFAULT_ENGINE}; torch is the fallback)")
    ap.add_argument("--tracker-config", default=None, metavar="FILE",
                    help="TrackerConfig as YAML (any subset of configs/tracker.yaml's keys; default: the defaults)")
    args = ap.parse_args(join_negative_values(argv, ["--box"]))
    boxes = np.stack([parse_box(b) for b in args.box])
    cfg = TrackerConfig.from_yaml(args.tracker_config) if args.tracker_config else TrackerConfig()
    summary = track_video(args.checkpoint, args.video, boxes, args.out, device=args.device,
                          max_frames=args.max_frames, progress=not args.no_progress, overwrite=args.overwrite,
                          engine=args.engine, tracker_cfg=cfg)
    objects = f", {summary['objects']} objects" if summary["objects"] > 1 else ""
    print(f"tracked {summary['frames']} frames{objects} at {summary['fps']} fps with {summary['engine']} "
          f"({summary['lost']} lost); "
          f"wrote {summary['video']} and {summary['masks']}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
