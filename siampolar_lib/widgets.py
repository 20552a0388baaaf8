"""The interactive demo's logic, kept out of the notebook so tests can call every callback headless.

`DemoApp` holds the frames, the first-frame box, the tracking results and the display state. Its callbacks
(`on_box_drawn`, `on_track`, `on_frame_change`, `on_score_map_toggle`, `on_rays_toggle`) are plain methods: the
widgets built by `box_widget()` and `player()` only forward their events to them, and `render(i)` returns
the picture the player shows as an (H, W, 3) uint8 RGB array.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .geometry.boxes import validate_box
from .tracker import Tracker, TrackerConfig
from .video import write_video
from .video_tracking import ScoreMapRecorder, render_results, track_frames
from .viz import render_track


def encode_image(image: np.ndarray, fmt: str = "jpeg") -> bytes:
    """(H, W, 3) uint8 RGB -> encoded JPEG or PNG bytes (what an ipywidgets.Image shows)."""
    ok, buf = cv2.imencode("." + ("jpg" if fmt == "jpeg" else fmt), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape} image as {fmt}")
    return buf.tobytes()


def bbox_to_xywh(bbox) -> np.ndarray:
    """A jupyter-bbox-widget box {'x', 'y', 'width', 'height', ...} (or a list of them: the last) -> (4,) xywh."""
    if isinstance(bbox, (list, tuple)):
        if not bbox:
            raise ValueError("no box has been drawn yet")
        bbox = bbox[-1]
    missing = {"x", "y", "width", "height"} - set(bbox)
    if missing:
        raise ValueError(f"a drawn box needs keys x, y, width, height; {sorted(missing)} missing in {bbox!r}")
    return np.array([bbox["x"], bbox["y"], bbox["width"], bbox["height"]], dtype=np.float64)


class DemoApp:
    """Track one video from a box and browse the result: frames (list of (H, W, 3) uint8 RGB), a network."""

    def __init__(self, model, frames: list[np.ndarray], box_xywh=None, tracker_cfg=None, device=None,
                 fps: float = 12.0, title: str = ""):
        if not frames:
            raise ValueError("DemoApp needs at least one frame")
        self.recorder = ScoreMapRecorder(model)
        self.frames = frames
        self.tracker_cfg = tracker_cfg
        self.device = device
        self.fps = fps
        self.title = title
        self.box: np.ndarray | None = None
        self.results: list | None = None  # one TrackResult per frame after run()
        self.score_maps: list | None = None  # one (h, w) score map per frame (None for frame 0)
        self.tracker_fps = float("nan")
        self.frame_index = 0
        self.show_rays = True
        self.show_score_map = False
        self._image = None  # the ipywidgets.Image of the player, once built
        self._info = None
        self._slider = None  # the player's frame slider, kept in step with on_frame_change
        self._status = None  # the player's status line (Track and export messages)
        if box_xywh is not None:
            self.set_box(box_xywh)

    # --- callbacks (plain methods, called by the widgets and by tests) -------------------------------
    def set_box(self, box_xywh) -> np.ndarray:
        """Use box_xywh (x, y, w, h) frame-0 pixels as the target; drops results of an earlier box."""
        self.box = validate_box(box_xywh, self.frames[0].shape[:2], name="first-frame box")
        self.results, self.score_maps = None, None
        if self._image is not None:  # the player shows the new box on frame 0 and "not tracked yet"
            self.refresh()
            self._status.value = self.summary()
        return self.box

    def on_box_drawn(self, bbox) -> np.ndarray:
        """BBoxWidget callback: a box dict (or the widget's `bboxes` list, or a traitlets change) -> set_box."""
        if isinstance(bbox, dict) and "new" in bbox and "x" not in bbox:
            bbox = bbox["new"]
        return self.set_box(bbox_to_xywh(bbox))

    def on_track(self, _=None) -> str:
        """Track button callback: track every frame from the current box, refresh the player; returns summary()."""
        self.run(progress=False)
        return self.summary()

    def on_frame_change(self, i) -> np.ndarray:
        """Slider callback: show frame i (an int or a traitlets change); returns the rendered image."""
        if isinstance(i, dict):
            i = i["new"]
        i = int(i)
        if not 0 <= i < len(self.frames):
            raise IndexError(f"frame {i} is outside 0..{len(self.frames) - 1}")
        self.frame_index = i
        if self._slider is not None and self._slider.value != i:
            self._slider.value = i  # its observer calls back here with the same i and stops there
        return self.refresh()

    def on_score_map_toggle(self, on) -> np.ndarray:
        """Checkbox callback: show or hide the score-map inset; returns the rendered image."""
        self.show_score_map = bool(on["new"] if isinstance(on, dict) else on)
        return self.refresh()

    def on_rays_toggle(self, on) -> np.ndarray:
        """Checkbox callback: show or hide the 36 rays; returns the rendered image."""
        self.show_rays = bool(on["new"] if isinstance(on, dict) else on)
        return self.refresh()

    # --- work ----------------------------------------------------------------------------------------
    def run(self, progress: bool = True) -> list:
        """Track all frames from the box with the network (tqdm progress bar); returns the TrackResults."""
        if self.box is None:
            raise RuntimeError("draw or type a first-frame box before running the tracker")
        tracker = Tracker(self.recorder, cfg=self.tracker_cfg or TrackerConfig(), device=self.device)
        maps: list = []
        self.results = track_frames(tracker, self.frames, self.box, progress=progress, score_maps=maps)
        self.score_maps = maps
        self.tracker_fps = tracker.fps
        self.refresh()
        return self.results

    def render(self, i: int | None = None) -> np.ndarray:
        """Frame i with mask overlay, contour + rays, score and (if toggled) score map: (H, W, 3) uint8 RGB."""
        i = self.frame_index if i is None else int(i)
        frame = self.frames[i]
        label = f"{self.title} {i}".strip()
        if self.results is None:
            return render_track(frame, box_xywh=self.box if i == 0 else None, label=label)
        r = self.results[i]
        smap = self.score_maps[i] if self.show_score_map and self.score_maps else None
        return render_track(frame, r.mask, r.polygon, r.score, box_xywh=self.box if i == 0 else None,
                            rays=self.show_rays, score_map=smap, label=label + (" lost" if r.lost else ""))

    def refresh(self) -> np.ndarray:
        """Render the current frame and push it to the player's image widget (when one is shown)."""
        img = self.render(self.frame_index)
        if self._image is not None:
            self._image.value = encode_image(img)
            self._info.value = self.info(self.frame_index)
        return img

    def info(self, i: int) -> str:
        """One line about frame i: score, lost flag, mask area."""
        if self.results is None:
            return f"frame {i}/{len(self.frames) - 1}: not tracked yet"
        r = self.results[i]
        return (f"frame {i}/{len(self.frames) - 1}: score {r.score:.2f}, mask {int(r.mask.sum())} px"
                + (", lost" if r.lost else ""))

    def summary(self) -> str:
        """One line about the last run: frames, the box it started from, mean score, lost frames."""
        if self.results is None:
            return "not tracked yet: draw a box and press Track"
        x, y, w, h = (int(round(v)) for v in self.box)
        scores = [r.score for r in self.results[1:]]
        mean = f"{np.mean(scores):.2f}" if scores else "n/a"
        return (f"tracked {len(self.results)} frames from box ({x}, {y}, {w}, {h}): mean score {mean}, "
                f"lost in {sum(r.lost for r in self.results)}")

    def export(self, path: str | os.PathLike, fps: float | None = None) -> Path:
        """Write the tracked video with overlays as .gif or .mp4 (chosen by suffix); returns the path."""
        if self.results is None:
            raise RuntimeError("run the tracker before exporting")
        frames = render_results(self.frames, self.results, rays=self.show_rays)
        return write_video(path, frames, fps=fps or self.fps)

    # --- widgets (thin: they only forward events to the callbacks above) ------------------------------
    def box_widget(self):
        """A jupyter-bbox-widget on frame 0: drawing a box calls on_box_drawn."""
        from jupyter_bbox_widget import BBoxWidget

        boxes = []
        if self.box is not None:
            x, y, w, h = (float(v) for v in self.box)
            boxes = [{"x": x, "y": y, "width": w, "height": h, "label": "target"}]
        wid = BBoxWidget(image_bytes=encode_image(self.frames[0]), classes=["target"], bboxes=boxes,
                         hide_buttons=True)
        wid.observe(lambda change: change["new"] and self.on_box_drawn(change["new"]), names=["bboxes"])
        return wid

    def player(self):
        """Slider + play, rays and score-map toggles, the frame image, an info line, Track and export buttons."""
        import ipywidgets as W

        n = len(self.frames)
        slider = W.IntSlider(value=self.frame_index, min=0, max=n - 1, description="frame",
                             continuous_update=True, layout=W.Layout(width="60%"))
        play = W.Play(value=self.frame_index, min=0, max=n - 1, interval=int(1000 / self.fps))
        W.jslink((play, "value"), (slider, "value"))
        rays = W.Checkbox(value=self.show_rays, description="rays", indent=False)
        smap = W.Checkbox(value=self.show_score_map, description="score map", indent=False)
        self._image = W.Image(format="jpeg", layout=W.Layout(max_width="100%"))
        self._info = W.Label()
        name = W.Text(value="demo.gif", description="export", layout=W.Layout(width="30%"))
        button = W.Button(description="Export GIF/MP4")
        track = W.Button(description="Track", button_style="primary", tooltip="track every frame from the drawn box")
        status = W.Label(value=self.summary())
        self._status = status
        slider.observe(self.on_frame_change, names=["value"])
        self._slider = slider
        rays.observe(self.on_rays_toggle, names=["value"])
        smap.observe(self.on_score_map_toggle, names=["value"])
        button.on_click(lambda _: self._report(lambda: f"wrote {self.export(name.value).name}"))

        def on_track_click(_) -> None:
            track.disabled = True
            status.value = "tracking..."
            try:
                self._report(self.on_track)
            finally:
                track.disabled = False

        track.on_click(on_track_click)
        self.refresh()
        return W.VBox([W.HBox([play, slider, rays, smap]), self._image, self._info,
                       W.HBox([track, name, button, status])])

    def _report(self, action) -> None:
        """Run a button's action and put its message, or its error (no box, nothing tracked), in the status line."""
        try:
            self._status.value = action()
        except (RuntimeError, ValueError) as e:
            self._status.value = f"error: {e}"

