"""Benchmark: the whole tracking loop against the backbone-only forward on the same 255 crop, side by side.

Targets (lite0, CPU, 2 threads): the tracker at >= 25 frames/s, and >= 0.85 of the backbone-only rate.

    SIAMPOLAR_DAVIS_ROOT=../shared/data/DAVIS python -m benchmarks.bench_tracker [--model lite0]
        [--checkpoint CKPT] [--frames 40] [--rounds 3] [--threads 2] [--device auto]

Three timings, interleaved in rounds on the same real frames (image reading excluded from all three):
  backbone  `model.backbone_features(x)` on the 255 search crop (crop cut once, outside the clock);
  network   `model.track(x)` on that crop (backbone + neck + xcorr + head);
  tracker   `Tracker.track(frame)`: crop, network, scores/penalties/window, polygon, mask, state update;
  overhead  the same Tracker around a zero-cost network (its first output replayed): the tracker's own work.
The best round of each is reported (least disturbed by other processes), with the ratio tracker / backbone.
"""
from __future__ import annotations

import argparse
import sys

import torch

from benchmarks.timing import items_per_second
from siampolar_lib import build_model
from siampolar_lib.data.davis import list_sequences, load_sequence, read_frame, sequence_masks
from siampolar_lib.device import describe_device, pick_device
from siampolar_lib.geometry.boxes import mask_to_box
from siampolar_lib.geometry.crops import context_side, crop_square
from siampolar_lib.paths import davis_available, davis_root
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.engine import to_tensor
from siampolar_lib.tracking.loop import track_sequence
from siampolar_lib.tracking.tracker import Tracker

TARGET_FPS = 25.0
TARGET_RATIO = 0.85


def timed(fn, items, device) -> float:
    """Frames per second of fn over items, device synchronised before and after."""
    return items_per_second(fn, items, device)


def loop_fps(tracker: Tracker, frames: list, box) -> float:
    """Frames per second of the tracking loop's `track` calls (tracking.loop; the tracker synchronises the device):
    init on frames[0], then frames[1:] and frames[0] again, so every frame is timed once."""
    times: list[float] = []
    for _ in track_sequence(tracker, frames + frames[:1], box, times):
        pass
    return (len(times) - 1) / sum(times[1:])  # times[0] is init


class Replay(torch.nn.Module):
    """Wraps a network; `track` returns the first output again, so a Tracker around it times only itself."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model, self.out = model, None
        self.config = model.config  # the tracker reads the crop geometry from it

    def template(self, z: torch.Tensor) -> None:
        self.model.template(z)

    def track(self, x: torch.Tensor) -> dict:
        if self.out is None:
            self.out = self.model.track(x)
        return self.out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", default="lite0", help="config name of an untrained network (speed is the same)")
    src.add_argument("--checkpoint", default=None, help="a trained checkpoint instead")
    p.add_argument("--davis-root", default=None)
    p.add_argument("--sequence", default=None, help="real sequence to read frames from (default: the first val one)")
    p.add_argument("--frames", type=int, default=40, help="frames per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--device", default="auto")
    p.add_argument("--mode", default="search", choices=["search", "full_frame"])
    a = p.parse_args(argv)
    root = davis_root(a.davis_root)
    if not davis_available(root):
        print(f"no DAVIS folder at {root}: set SIAMPOLAR_DAVIS_ROOT or pass --davis-root", file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    dev = pick_device(a.device)
    if a.checkpoint:
        from siampolar_lib.training.checkpoint import load_model

        model = load_model(a.checkpoint, device=dev)
    else:
        model = build_model(a.model, pretrained=True).to(dev).eval()
    name = a.sequence or list_sequences(root, "val")[0]
    seq = load_sequence(root, name)
    n = min(a.frames, len(seq))
    frames = [read_frame(f) for f in seq.frame_paths[:n]]
    box = mask_to_box(sequence_masks(seq)[0])
    # The same 255 search crops the tracker takes on its first frame, cut once, outside the clock.
    g = model.config
    side = context_side(box[2], box[3], g.context) * g.search_size / g.template_size
    centre = box[:2] + box[2:] / 2
    crops = [to_tensor(crop_square(f, centre, side, g.search_size)[0], dev) for f in frames]
    tracker = Tracker(model, TrackerConfig(mode=a.mode), device=dev)
    bare = Tracker(Replay(model), TrackerConfig(mode=a.mode), device=dev)

    best = {"backbone": 0.0, "network": 0.0, "tracker": 0.0, "overhead": 0.0}
    with torch.inference_mode():
        bare.init(frames[0], box)
        bare.track(frames[0])  # records the output it replays
        tracker.init(frames[0], box)  # also caches the template for model.track
        for _ in range(2):  # warm-up
            model.backbone_features(crops[0])
            model.track(crops[0])
            tracker.track(frames[0])
        for r in range(a.rounds):
            fps = {"backbone": timed(model.backbone_features, crops, dev),
                   "network": timed(model.track, crops, dev)}
            fps["tracker"] = loop_fps(tracker, frames, box)
            fps["overhead"] = loop_fps(bare, frames, box)
            print(f"round {r + 1}: " + ", ".join(f"{k} {v:.1f} fps" for k, v in fps.items()))
            best = {k: max(best[k], fps[k]) for k in best}
    ratio = best["tracker"] / best["backbone"]
    label = a.checkpoint or a.model
    print(f"\n{label} on {describe_device(dev)}, {name}, {n} frames {frames[0].shape[1]}x{frames[0].shape[0]}, "
          f"mode {a.mode}, best of {a.rounds} rounds")
    print(f"backbone only  {best['backbone']:7.1f} fps")
    print(f"network        {best['network']:7.1f} fps  ({best['network'] / best['backbone']:.2f} of backbone)")
    print(f"whole tracker  {best['tracker']:7.1f} fps  ({ratio:.2f} of backbone)")
    print(f"tracker's own work (zero-cost network): {1000 / best['overhead']:.1f} ms a frame")
    print(f"targets: tracker >= {TARGET_FPS:.0f} fps: {'met' if best['tracker'] >= TARGET_FPS else 'MISSED'}; "
          f"ratio >= {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
