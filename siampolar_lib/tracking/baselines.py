"""Reference points for the tracker, with its `init(frame, box_xywh)` / `track(frame)` API.

- StaticBox: the first box as the mask, never moved (what doing nothing scores).
- OracleBox: the true box of each frame, filled (needs the ground truth; the best a box tracker can do).
- PolarBound: each true mask fitted with 36 rays at its mass centre (the target-encoding bound: how much of
  the mask 36 rays keep; docs/design.md section 4).
- GridBound: what a network that reproduced its training targets exactly would output: on the search crop
  centred on the true box at its true scale, the positive location with the highest centerness target (a
  perfect cls x ctr) and its target rays. The targets are cast from grid locations, up to half a stride from
  the mass centre, so this is the bound a perfect network of that grid reaches (the grid-snapped bound).
- CSRT: OpenCV's CSRT correlation-filter tracker (opencv-contrib); its box becomes a filled ellipse.
The ground-truth baselines read frame k's mask from `gt_masks[k]` (frame 0 is the `init` frame). `init` returns
frame 0's result (the box), as the tracker's does (`tracking.loop`).
"""
from __future__ import annotations

from typing import Callable, Sequence

import cv2
import numpy as np

from siampolar_lib.errors import UserError
from siampolar_lib.geometry.boxes import box_centre, box_mask, mask_to_box, polygon_box, validate_box
from siampolar_lib.geometry.crops import crop_square, search_side
from siampolar_lib.geometry.polar import (
    NUM_RAYS,
    mask_to_rays,
    mass_centre,
    polygon_to_mask,
    ray_angles,
    rays_to_polygon,
)
from siampolar_lib.models.config import LITE0, ModelConfig
from siampolar_lib.tracking.tracker import TrackResult, box_result
from siampolar_lib.training.targets import build_targets, config_points

# A baseline factory: (gt_masks or None, model config) -> an object with the tracker's `init(frame, box_xywh)` ->
# TrackResult and `track(frame)` -> TrackResult. A new baseline is one register_baseline call here; every command's
# --baselines and evaluate_tracker accept it by name.
BASELINES: dict[str, tuple[Callable, bool]] = {}  # name -> (factory, needs the ground truth)


def register_baseline(name: str, factory: Callable, needs_truth: bool = False) -> None:
    """Add a baseline under `name`: factory(gt_masks, config) -> a tracker-like object."""
    BASELINES[name] = (factory, needs_truth)


def box_polygon(box_xywh, n: int = NUM_RAYS) -> np.ndarray:
    """The box's inscribed ellipse sampled at n ray angles: (n, 2) frame pixels (for drawing)."""
    x, y, w, h = (float(v) for v in box_xywh)
    th = ray_angles(n)
    return np.stack([x + w / 2 + w / 2 * np.cos(th), y + h / 2 + h / 2 * np.sin(th)], axis=1)


def ellipse_mask(box_xywh, shape: tuple[int, int]) -> np.ndarray:
    """The filled ellipse inscribed in a box (x, y, w, h): (H, W) bool."""
    return polygon_to_mask(box_polygon(box_xywh, 72), shape)


class _Baseline:
    """Shared bookkeeping: frame size checks and the frame counter (frame 0 = the init frame)."""

    def __init__(self):
        self.frame_shape: tuple[int, int] | None = None
        self.index = 0

    def _start(self, frame: np.ndarray, box_xywh) -> np.ndarray:
        box = validate_box(box_xywh, frame.shape[:2], name="init box")
        self.frame_shape = tuple(frame.shape[:2])
        self.index = 0
        return box

    def _next(self, frame: np.ndarray) -> None:
        if self.frame_shape is None:
            raise RuntimeError(f"{type(self).__name__}.track called before init(frame, box_xywh)")
        if frame.shape[:2] != self.frame_shape:
            raise ValueError(f"frame size changed from {self.frame_shape} to {frame.shape[:2]} within a video")
        self.index += 1


class StaticBox(_Baseline):
    """The first box as the mask in every frame."""

    def init(self, frame: np.ndarray, box_xywh) -> TrackResult:
        """Remember the first box; returns frame 0's result (the box)."""
        self.box = self._start(frame, box_xywh)
        return box_result(frame.shape, self.box)

    def track(self, frame: np.ndarray) -> TrackResult:
        """The first box, filled."""
        self._next(frame)
        return TrackResult(box_mask(self.box, self.frame_shape), box_polygon(self.box), self.box.copy(), 1.0, False)


class _GroundTruth(_Baseline):
    def __init__(self, gt_masks: Sequence[np.ndarray]):
        super().__init__()
        self.gt_masks = gt_masks

    def init(self, frame: np.ndarray, box_xywh) -> TrackResult:
        """Start a video (the box is checked, the answers come from the ground truth); returns frame 0's result."""
        return box_result(frame.shape, self._start(frame, box_xywh))

    def _gt(self) -> np.ndarray:
        if self.index >= len(self.gt_masks):
            raise IndexError(f"{type(self).__name__}: frame {self.index} has no ground-truth mask "
                             f"({len(self.gt_masks)} given)")
        return np.asarray(self.gt_masks[self.index], bool)


class OracleBox(_GroundTruth):
    """The true box of each frame, filled; an empty true mask gives an empty mask (lost)."""

    def track(self, frame: np.ndarray) -> TrackResult:
        """The tight box of this frame's true mask."""
        self._next(frame)
        box = mask_to_box(self._gt())
        if box is None:
            return TrackResult(np.zeros(self.frame_shape, bool), np.zeros((NUM_RAYS, 2)), np.zeros(4), 0.0, True)
        return TrackResult(box_mask(box, self.frame_shape), box_polygon(box), box, 1.0, False)


class PolarBound(_GroundTruth):
    """Each true mask as its 36-ray polygon at the mass centre (exact ray casting)."""

    def __init__(self, gt_masks: Sequence[np.ndarray], n_rays: int = NUM_RAYS):
        super().__init__(gt_masks)
        self.n_rays = n_rays

    def track(self, frame: np.ndarray) -> TrackResult:
        """The polar fit of this frame's true mask."""
        self._next(frame)
        gt = self._gt()
        if not gt.any():
            return TrackResult(np.zeros(self.frame_shape, bool), np.zeros((self.n_rays, 2)), np.zeros(4), 0.0, True)
        c = mass_centre(gt)
        poly = rays_to_polygon(c, mask_to_rays(gt, c, self.n_rays))
        return TrackResult(polygon_to_mask(poly, self.frame_shape), poly, polygon_box(poly), 1.0, False)


class GridBound(_GroundTruth):
    """Each true mask as a perfect network of `config`'s grid would output it (module docstring)."""

    def __init__(self, gt_masks: Sequence[np.ndarray], config: ModelConfig = LITE0):
        super().__init__(gt_masks)
        self.config = config
        self.points = config_points(config)  # per level (H, W, 2) crop pixels

    def track(self, frame: np.ndarray) -> TrackResult:
        """The target polygon of the best positive on the truth-centred search crop, in frame pixels."""
        self._next(frame)
        gt, cfg = self._gt(), self.config
        box = mask_to_box(gt)
        if box is None:
            return TrackResult(np.zeros(self.frame_shape, bool), np.zeros((cfg.num_rays, 2)), np.zeros(4), 0.0, True)
        side = search_side(box[2], box[3], cfg.context, cfg.template_size, cfg.search_size)
        crop, tf = crop_square(gt.astype(np.uint8), box_centre(box), side, cfg.search_size, pad_value=0,
                               interpolation=cv2.INTER_NEAREST)
        levels = build_targets(crop[None] > 0, self.points, cfg.strides, cfg.regress_ranges, cfg.centre_radius,
                               cfg.num_rays)
        score = [(t["labels"][0] * t["centerness"][0]).numpy() for t in levels]
        level = int(np.argmax([s.max() for s in score]))
        if score[level].max() <= 0:  # the object vanished in the crop (a sliver): no positive to read
            return TrackResult(np.zeros(self.frame_shape, bool), np.zeros((cfg.num_rays, 2)), np.zeros(4), 0.0, True)
        i, j = np.unravel_index(int(np.argmax(score[level])), score[level].shape)
        poly = tf.to_frame(rays_to_polygon(self.points[level][i, j].numpy(), levels[level]["rays"][0, i, j].numpy()))
        return TrackResult(polygon_to_mask(poly, self.frame_shape), poly, polygon_box(poly), float(score[level].max()),
                           False)


class CSRT(_Baseline):
    """OpenCV CSRT (discriminative correlation filter); frames go to cv2 as BGR, its box becomes an ellipse."""

    def __init__(self):
        super().__init__()
        if not hasattr(cv2, "TrackerCSRT"):  # opencv-python (no contrib modules) installed over the contrib build
            raise UserError(f"the csrt baseline needs OpenCV's contrib modules, which this cv2 {cv2.__version__} "
                            "lacks: pip uninstall -y opencv-python opencv-python-headless && "
                            "pip install --force-reinstall opencv-contrib-python-headless")

    def init(self, frame: np.ndarray, box_xywh) -> TrackResult:
        """Start CSRT on the first frame and box; returns frame 0's result (the box)."""
        box = self._start(frame, box_xywh)
        self.tracker = cv2.TrackerCSRT.create()
        self.box = box
        self.tracker.init(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), tuple(int(round(v)) for v in box))
        return box_result(frame.shape, box)

    def track(self, frame: np.ndarray) -> TrackResult:
        """CSRT's box as a filled ellipse; when CSRT reports failure the last box is kept and the mask is empty."""
        self._next(frame)
        ok, box = self.tracker.update(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        if not ok:
            return TrackResult(np.zeros(self.frame_shape, bool), box_polygon(self.box), self.box.copy(), 0.0, True)
        self.box = np.asarray(box, dtype=np.float64)
        return TrackResult(ellipse_mask(self.box, self.frame_shape), box_polygon(self.box), self.box.copy(), 1.0,
                           False)


def make_baseline(name: str, gt_masks: Sequence[np.ndarray] | None = None, config: ModelConfig = LITE0):
    """Build a registered baseline by name (static, oracle_box, polar_bound, grid_bound, csrt, ...).

    gt_masks: the truth (T, H, W), which the ground-truth baselines need; config: the network whose grid
    grid_bound snaps to (the shipped lite0 by default).
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}: choose from {', '.join(BASELINES)}")
    factory, needs_truth = BASELINES[name]
    if needs_truth and gt_masks is None:
        raise ValueError(f"baseline {name!r} needs the ground-truth masks (gt_masks)")
    return factory(gt_masks, config)


register_baseline("static", lambda gt, cfg: StaticBox())
register_baseline("oracle_box", lambda gt, cfg: OracleBox(gt), needs_truth=True)
register_baseline("polar_bound", lambda gt, cfg: PolarBound(gt), needs_truth=True)
register_baseline("grid_bound", lambda gt, cfg: GridBound(gt, cfg), needs_truth=True)
register_baseline("csrt", lambda gt, cfg: CSRT())
