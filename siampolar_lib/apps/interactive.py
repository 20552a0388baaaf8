"""The interactive demo's logic, kept out of the notebook so tests can call every callback headless.

`DemoApp` holds the frames, the first-frame boxes (one or several objects), the tracking results and the display
state, and runs the network with the engine it is given ("torch" or "onnxruntime"). Its callbacks
(`on_box_drawn`, `on_track`, `on_frame_change`, `on_score_map_toggle`, `on_rays_toggle`) are plain methods: the
widgets built by `box_widget()` and `player()` only forward their events to them, and `render(i)` returns
the picture the player shows as an (H, W, 3) uint8 RGB array.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from siampolar_lib.geometry.boxes import validate_box
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.tracking.engine import make_engine
from siampolar_lib.tracking.loop import track_frames, track_sequence
from siampolar_lib.tracking.multi import MultiTracker, label_map
from siampolar_lib.tracking.tracker import Tracker
from siampolar_lib.video_writers import write_video
from siampolar_lib.viz import render_objects, render_results, render_track


def encode_image(image: np.ndarray, fmt: str = "jpeg") -> bytes:
    """(H, W, 3) uint8 RGB -> encoded JPEG or PNG bytes (what an ipywidgets.Image shows)."""
    ok, buf = cv2.imencode("." + ("jpg" if fmt == "jpeg" else fmt), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape} image as {fmt}")
    return buf.tobytes()


def bboxes_to_xywh(bboxes) -> np.ndarray:
    """jupyter-bbox-widget boxes (a list of {'x', 'y', 'width', 'height', ...}, or one) -> (N, 4) xywh in drawing
    order."""
    if isinstance(bboxes, dict):
        bboxes = [bboxes]
    if not bboxes:
        raise ValueError("no box has been drawn yet")
    return np.stack([bbox_to_xywh(b) for b in bboxes])


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
    """Track one video from one or several boxes and browse the result: frames ((H, W, 3) uint8 RGB), a network.

    engine: "torch" or "onnxruntime" (exported once per weights and cached; engine.make_engine); threads: ONNX
    Runtime's intra-op threads (None: its own choice, one per core; torch runs on torch.get_num_threads()). With
    several boxes every object is tracked with its own template and drawn in its own colour (`object_results`).
    """

    def __init__(self, model, frames: list[np.ndarray], box_xywh=None, tracker_cfg=None, device=None,
                 fps: float = 12.0, title: str = "", engine: str = "torch", threads: int | None = None):
        if not frames:
            raise ValueError("DemoApp needs at least one frame")
        self.model = model
        # built once: an ONNX export is not repeated per run
        self.engine = make_engine(model, engine, device, threads=threads)
        self.frames = frames
        self.tracker_cfg = tracker_cfg
        self.device = device
        self.fps = fps
        self.title = title
        self.boxes: list[np.ndarray] = []  # first-frame boxes, one per object
        self.results: list | None = None  # one TrackResult per frame after run() (the first object)
        self.object_results: list | None = None  # per frame, one TrackResult per object
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
    @property
    def box(self) -> np.ndarray | None:
        """The first object's box (x, y, w, h), or None before one is set."""
        return self.boxes[0] if self.boxes else None

    def set_box(self, box_xywh) -> np.ndarray:
        """Use box_xywh (x, y, w, h) frame-0 pixels as the only target; drops results of earlier boxes."""
        return self.set_boxes([box_xywh])[0]

    def set_boxes(self, boxes) -> list[np.ndarray]:
        """Track several targets, one (x, y, w, h) frame-0 box each; drops results of earlier boxes."""
        if len(boxes) == 0:
            raise ValueError("give at least one box")
        self.boxes = [validate_box(b, self.frames[0].shape[:2], name=f"first-frame box {k + 1}")
                      for k, b in enumerate(boxes)]
        self.results, self.object_results, self.score_maps = None, None, None
        if self._image is not None:  # the player shows the new boxes on frame 0 and "not tracked yet"
            self.refresh()
            self._status.value = self.summary()
        return self.boxes

    def on_box_drawn(self, bbox) -> list[np.ndarray]:
        """BBoxWidget callback: the widget's `bboxes` list (or one box dict, or a traitlets change) -> set_boxes.

        Every drawn box becomes a target, in drawing order.
        """
        if isinstance(bbox, dict) and "new" in bbox and "x" not in bbox:
            bbox = bbox["new"]
        return self.set_boxes(list(bboxes_to_xywh(bbox)))

    def on_track(self, _=None) -> str:
        """Track button callback: track every frame from the current boxes, refresh the player; returns summary()."""
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
        """Track all frames from the boxes (tqdm progress bar); returns the first object's TrackResults."""
        if not self.boxes:
            raise RuntimeError("draw or type a first-frame box before running the tracker")
        cfg = self.tracker_cfg or TrackerConfig()
        if len(self.boxes) == 1:
            tracker = Tracker(self.engine, cfg=cfg)
            maps: list = []
            self.results = track_frames(tracker, self.frames, self.box, progress=progress, score_maps=maps)
            self.object_results = [[r] for r in self.results]
            self.score_maps = maps
        else:
            tracker = MultiTracker(self.engine, cfg=cfg)
            self.object_results = list(tqdm(track_sequence(tracker, self.frames, self.boxes), total=len(self.frames),
                                            desc="tracking", disable=not progress, unit="frame"))
            self.results = [r[0] for r in self.object_results]
            self.score_maps = None
        self.tracker_fps = tracker.fps
        self.refresh()
        return self.results

    def render(self, i: int | None = None) -> np.ndarray:
        """Frame i with mask overlay, contour + rays, score and (if toggled) score map: (H, W, 3) uint8 RGB."""
        i = self.frame_index if i is None else int(i)
        frame = self.frames[i]
        label = f"{self.title} {i}".strip()
        if self.results is None:
            img = frame
            for b in self.boxes[1:] if i == 0 else []:
                img = render_track(img, box_xywh=b)
            return render_track(img, box_xywh=self.box if i == 0 else None, label=label)
        if len(self.boxes) > 1:
            res = self.object_results[i]
            return render_objects(frame, label_map(res, frame.shape), [r.polygon for r in res],
                                  [r.score for r in res], label=label)
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
        if len(self.boxes) > 1:
            parts = [f"{k}: score {r.score:.2f}, {int(r.mask.sum())} px" + (" lost" if r.lost else "")
                     for k, r in enumerate(self.object_results[i], start=1)]
            return f"frame {i}/{len(self.frames) - 1}: " + "; ".join(parts)
        r = self.results[i]
        return (f"frame {i}/{len(self.frames) - 1}: score {r.score:.2f}, mask {int(r.mask.sum())} px"
                + (", lost" if r.lost else ""))

    def summary(self) -> str:
        """One line about the last run: frames, the boxes it started from, mean score, lost frames (first object)."""
        if self.results is None:
            return "not tracked yet: draw a box and press Track"
        boxes = ", ".join("({}, {}, {}, {})".format(*(int(round(v)) for v in b)) for b in self.boxes)
        scores = [r.score for r in self.results[1:]]
        mean = f"{np.mean(scores):.2f}" if scores else "n/a"
        what = "box" if len(self.boxes) == 1 else f"{len(self.boxes)} boxes"
        return (f"tracked {len(self.results)} frames from {what} {boxes}: mean score {mean}, "
                f"lost in {sum(r.lost for r in self.results)}")

    def export(self, path: str | os.PathLike, fps: float | None = None) -> Path:
        """Write the tracked video with overlays as .gif or .mp4 (chosen by suffix); returns the path."""
        if self.results is None:
            raise RuntimeError("run the tracker before exporting")
        if len(self.boxes) > 1:
            frames = [self.render(i) for i in range(len(self.frames))]
        else:
            frames = render_results(self.frames, self.results, rays=self.show_rays)
        return write_video(path, frames, fps=fps or self.fps)

    # --- widgets (thin: they only forward events to the callbacks above) ------------------------------
    def box_widget(self):
        """A jupyter-bbox-widget on frame 0: drawing boxes calls on_box_drawn with all of them (one target each)."""
        boxes = []
        for b in self.boxes:
            x, y, w, h = (float(v) for v in b)
            boxes.append({"x": x, "y": y, "width": w, "height": h, "label": "target"})
        wid = _target_box_widget_class()(image_bytes=encode_image(self.frames[0]), classes=["target"], bboxes=boxes,
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


@functools.cache
def _target_box_widget_class():
    """jupyter-bbox-widget's BBoxWidget with a repr that says what it holds (the default shows a memory address)."""
    from jupyter_bbox_widget import BBoxWidget

    class TargetBoxWidget(BBoxWidget):
        def __repr__(self) -> str:
            return f"TargetBoxWidget({len(self.bboxes)} target box(es) on frame 0)"

    return TargetBoxWidget
