"""Plotting helpers shared by the notebooks (one home, never redefined in a notebook).

Frames are (H, W, 3) uint8 RGB; masks (H, W) bool; polygons (R, 2) float pixels (x, y).
"""
from __future__ import annotations

import inspect

import cv2
import numpy as np

from siampolar_lib.geometry.polar import ray_angles
from siampolar_lib.io import PALETTE


def show_source(obj) -> None:
    """Display an object's source as Markdown in a notebook (inspect.getsource)."""
    from IPython.display import Markdown, display

    display(Markdown("```python\n" + inspect.getsource(obj).rstrip() + "\n```"))


def overlay_mask(frame: np.ndarray, mask: np.ndarray, color=(255, 64, 64), alpha: float = 0.45) -> np.ndarray:
    """Blend a coloured mask over a frame: (H, W, 3) uint8 RGB, (H, W) bool -> (H, W, 3) uint8."""
    out = frame.astype(np.float32).copy()
    m = np.asarray(mask, bool)
    out[m] = (1 - alpha) * out[m] + alpha * np.asarray(color, np.float32)
    return out.clip(0, 255).astype(np.uint8)


def draw_polygon(ax, polygon, centre=None, color="yellow", rays: bool = False, lw: float = 1.5) -> None:
    """Draw a closed polygon (R, 2) on a matplotlib axis; with rays=True also the spokes from centre."""
    p = np.asarray(polygon, dtype=np.float64)
    closed = np.vstack([p, p[:1]])
    ax.plot(closed[:, 0], closed[:, 1], color=color, lw=lw)
    if centre is not None:
        ax.plot([centre[0]], [centre[1]], marker="+", color=color, ms=10, mew=2)
        if rays:
            for q in p:
                ax.plot([centre[0], q[0]], [centre[1], q[1]], color=color, lw=0.6, alpha=0.7)


def draw_box(ax, box_xywh, color="lime", lw: float = 1.5, label: str | None = None) -> None:
    """Draw an (x, y, w, h) box on a matplotlib axis."""
    from matplotlib.patches import Rectangle

    x, y, w, h = (float(v) for v in box_xywh)
    ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, ec=color, lw=lw, label=label))


def show_frame(ax, frame: np.ndarray, mask: np.ndarray, polygon=None, gt=None, zoom: float | None = None) -> None:
    """A tracked frame on an axis: the mask (red) and polygon (yellow) over the frame, the true mask's contour (green).

    frame (H, W, 3) uint8 RGB; mask, gt (H, W) bool; polygon (R, 2) frame px, drawn even when the mask is empty
    (it shows where the tracker looked); zoom: a margin in frame px around the true mask and the polygon (the mask
    when neither is given), None for the whole frame.
    """
    ax.imshow(overlay_mask(frame, mask))
    gt = None if gt is None else np.asarray(gt, bool)
    if gt is not None and gt.any():
        ax.contour(gt.astype(np.uint8), levels=[0.5], colors="lime", linewidths=1.5)
    p = np.empty((0, 2)) if polygon is None else np.asarray(polygon, np.float64).reshape(-1, 2)
    p = p[np.isfinite(p).all(axis=1)]
    if len(p):
        draw_polygon(ax, p, color="yellow", lw=1.2)
    if zoom is not None:
        H, W = frame.shape[:2]
        ys, xs = np.nonzero(gt) if gt is not None else (np.empty(0), np.empty(0))
        xs, ys = np.r_[xs, p[:, 0]], np.r_[ys, p[:, 1]]
        if not xs.size:
            ys, xs = np.nonzero(np.asarray(mask, bool))
        if xs.size:
            ax.set_xlim(max(xs.min() - zoom, 0), min(xs.max() + zoom, W - 1))
            ax.set_ylim(min(ys.max() + zoom, H - 1), max(ys.min() - zoom, 0))  # y down, as imshow draws it
    ax.set_xticks([])
    ax.set_yticks([])


def polygon_centre(polygon) -> np.ndarray:
    """The centre of a polar polygon (R, 2): the least-squares point on every ray's line, (2,) float pixels.

    Vertex k lies at c + d_k (cos t_k, sin t_k), so c is on the line through vertex k along angle t_k;
    with uniform angles these lines meet at c exactly (also when some rays have length 0).
    """
    p = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    th = ray_angles(len(p))
    n = np.stack([-np.sin(th), np.cos(th)], axis=1)  # normals of the ray lines, (R, 2)
    c, *_ = np.linalg.lstsq(n, (n * p).sum(axis=1), rcond=None)
    return c


def score_map_image(score_map: np.ndarray, side: int) -> np.ndarray:
    """A (h, w) score map in [0, 1] as a side x side (3-channel) uint8 RGB heat map (OpenCV's JET)."""
    s = np.clip(np.nan_to_num(np.asarray(score_map, dtype=np.float64)), 0.0, 1.0)
    heat = cv2.applyColorMap((s * 255).astype(np.uint8), cv2.COLORMAP_JET)
    heat = cv2.resize(heat, (side, side), interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)


def render_track(frame: np.ndarray, mask=None, polygon=None, score: float | None = None, box_xywh=None,
                 rays: bool = True, score_map=None, label: str | None = None) -> np.ndarray:
    """One tracked frame as an image: mask overlay, contour with its rays, box, score text, score-map inset.

    frame (H, W, 3) uint8 RGB; mask (H, W) bool; polygon (R, 2) frame pixels; box_xywh (4,);
    score_map (h, w) in [0, 1], drawn in the top-right corner. Returns (H, W, 3) uint8 RGB (a new array).
    Drawn with OpenCV so it runs headless and fast (no matplotlib figure per frame).
    """
    out = np.ascontiguousarray(frame.copy())
    H, W = out.shape[:2]
    thick = max(1, round(max(H, W) / 400))
    if mask is not None:
        out = overlay_mask(out, mask)
    if box_xywh is not None:
        x, y, w, h = (float(v) for v in box_xywh)
        cv2.rectangle(out, (round(x), round(y)), (round(x + w - 1), round(y + h - 1)), (0, 255, 0), thick)
    if polygon is not None:
        p = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
        if np.all(np.isfinite(p)):
            pts = np.round(p * 16).astype(np.int32).reshape(-1, 1, 2)
            if rays:
                c = np.round(polygon_centre(p) * 16).astype(np.int32)
                for q in pts[:, 0]:
                    cv2.line(out, tuple(int(v) for v in c), tuple(int(v) for v in q), (255, 255, 0), 1,
                             cv2.LINE_AA, shift=4)
                cv2.drawMarker(out, (int(c[0] // 16), int(c[1] // 16)), (255, 255, 0), cv2.MARKER_CROSS,
                               6 * thick, thick)
            cv2.polylines(out, [pts], True, (255, 255, 0), thick + 1, cv2.LINE_AA, shift=4)
    if score_map is not None:
        side = max(16, min(H, W) // 3)
        out[:side, W - side:] = score_map_image(score_map, side)
    text = " ".join(t for t in (label, None if score is None else f"score {score:.2f}") if t)
    if text:
        scale = max(0.4, max(H, W) / 1200)
        cv2.putText(out, text, (8, int(24 * scale / 0.7)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2,
                    cv2.LINE_AA)
        cv2.putText(out, text, (8, int(24 * scale / 0.7)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick,
                    cv2.LINE_AA)
    return out


def render_objects(frame: np.ndarray, labels: np.ndarray, polygons=None, scores=None,
                   label: str | None = None, alpha: float = 0.5) -> np.ndarray:
    """Several tracked objects on one frame, a colour each (the DAVIS palette): (H, W, 3) uint8 RGB.

    labels (H, W) uint8 label map (0 background, k = object k); polygons: N contours (R, 2) frame pixels, drawn
    in their object's colour; scores: N floats, printed after `label`.
    """
    out = np.ascontiguousarray(frame.copy())
    H, W = out.shape[:2]
    thick = max(1, round(max(H, W) / 400))
    fg = labels > 0
    if fg.any():
        colour = PALETTE[labels[fg]].astype(np.float32)
        out[fg] = ((1 - alpha) * out[fg] + alpha * colour).clip(0, 255).astype(np.uint8)
    for k, p in enumerate(polygons or [], start=1):
        p = np.asarray(p, dtype=np.float64).reshape(-1, 2)
        if np.all(np.isfinite(p)):
            pts = np.round(p * 16).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(out, [pts], True, tuple(int(v) for v in PALETTE[k]), thick + 1, cv2.LINE_AA, shift=4)
    parts = [label] if label else []
    if scores is not None:
        parts += [" ".join(f"{k}:{s:.2f}" for k, s in enumerate(scores, start=1))]
    text = " ".join(parts)
    if text:
        scale = max(0.4, max(H, W) / 1200)
        org = (8, int(24 * scale / 0.7))
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


def render_results(frames, results, rays: bool = True) -> list[np.ndarray]:
    """Overlay every TrackResult (mask, polygon, score) on its frame with `render_track`: list of (H, W, 3) uint8."""
    return [render_track(f, r.mask, r.polygon, r.score, rays=rays, label=f"{i}")
            for i, (f, r) in enumerate(zip(frames, results))]


def architecture_shapes(config, backbone_channels: dict[int, int]) -> dict:
    """Every map's side and channels for a ModelConfig (no network is run): {name: text per level}.

    Template / search maps are ceil(size / stride) a side; the template crop keeps the central k x k; the
    correlation leaves ceil(S / s) - k + 1 locations a side (`targets.config_points` computes the same grid).
    """
    T, S, C, R = config.template_size, config.search_size, config.channels, config.num_rays
    side = lambda n, s: -(-n // s)  # ceil
    levels = list(zip(config.strides, config.template_crop))
    return {
        "backbone": " / ".join(f"s{s}: {backbone_channels[s]}" for s in config.backbone_strides),
        "template": " / ".join(f"{side(T, s)}²→{k}²" for s, k in levels),
        "search": " / ".join(f"{side(S, s)}²" for s, _ in levels),
        "corr": " / ".join(f"{side(S, s) - k + 1}²" for s, k in levels),
        "channels": C, "rays": R, "T": T, "S": S, "strides": "/".join(str(s) for s, _ in levels),
    }


def draw_blocks(ax, boxes: dict[str, tuple], fontsize: float = 7.5) -> None:
    """Rounded boxes with centred text: {name: (x, y, width, height, colour, text)}, x, y the lower-left corner."""
    from matplotlib.patches import FancyBboxPatch

    for x, y, w, h, colour, text in boxes.values():
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.04", fc=colour, ec="#555555", lw=0.8))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start, end, rad: float = 0.0, color: str = "#333333") -> None:
    """An arrow from start (x, y) to end (x, y); rad bends it (matplotlib's arc3)."""
    ax.annotate("", end, start, arrowprops=dict(arrowstyle="->", color=color, lw=0.9,
                                                connectionstyle=f"arc3,rad={rad}"))


def draw_architecture(ax, config, backbone_channels: dict[int, int]) -> None:
    """The SiamPolar network as a block diagram on a matplotlib axis, every shape read from `config`."""
    sh = architecture_shapes(config, backbone_channels)
    boxes = {  # name: (x, y, width, height, colour, text); x, y is the lower-left corner
        "z": (0.0, 3.0, 1.6, 0.9, "#dbe9f6", f"template z\n{sh['T']}×{sh['T']}×3\n(frame 0)"),
        "x": (0.0, 0.4, 1.6, 0.9, "#dbe9f6", f"search x\n{sh['S']}×{sh['S']}×3\n(frame t)"),
        "bb": (2.1, 0.4, 1.9, 3.5, "#fde2c8", f"backbone\n{config.backbone}\n(shared weights)\n\nchannels per\nstride\n"
                                              + sh["backbone"].replace(" / ", "\n")),
        "neck": (4.5, 0.4, 1.6, 3.5, "#fde2c8",
                 f"FPN neck\n(shared)\n1×1 laterals,\ntop-down sum\n\n{sh['channels']} ch at\nstrides {sh['strides']}"),
        "zf": (6.6, 3.0, 2.0, 0.9, "#e2f0d9", f"template maps, cut\nto the centre\n{sh['template']}"),
        "xf": (6.6, 0.4, 2.0, 0.9, "#e2f0d9", f"search maps\n{sh['search']}"),
        "corr": (9.1, 1.6, 2.0, 1.1, "#e2f0d9", f"depth-wise xcorr\nper level\n{sh['corr']} × {sh['channels']}"),
        "head": (11.6, 1.2, 2.0, 1.9, "#f4dcef", "polar head\n(shared by levels)\ncls tower\nray tower"
                 + ("\n+ search maps" if config.ray_search_features else "")),
        "cls": (14.1, 3.0, 2.1, 0.8, "#eeeeee", f"cls: 1 × {sh['corr']}\nfocal loss"),
        "ctr": (14.1, 1.75, 2.1, 0.8, "#eeeeee", f"ctr: 1 × {sh['corr']}\ncentre-ness, BCE"),
        "rays": (14.1, 0.5, 2.1, 0.8, "#eeeeee", f"rays: {sh['rays']} × {sh['corr']}\nPolar IoU loss"),
    }
    draw_blocks(ax, boxes)
    mid = lambda n, side: (boxes[n][0] + (boxes[n][2] if side == "r" else 0), boxes[n][1] + boxes[n][3] / 2)
    links = [("z", "bb"), ("x", "bb"), ("neck", "zf"), ("neck", "xf"), ("zf", "corr"), ("xf", "corr"), ("corr", "head"),
             ("head", "cls"), ("head", "ctr"), ("head", "rays")]
    links += [("xf", "head")] if config.ray_search_features else []
    for a, b in links:
        (x0, y0), (x1, y1) = mid(a, "r"), mid(b, "l")
        if a in ("z", "x"):
            y1 = y0
        if a == "neck":
            y0 = y1
        ax.annotate("", (x1, y1), (x0, y0), arrowprops=dict(arrowstyle="->", color="#333333", lw=0.9))
    ax.annotate("", mid("neck", "l"), mid("bb", "r"), arrowprops=dict(arrowstyle="->", color="#333333", lw=0.9))
    ax.set(xlim=(-0.2, 16.4), ylim=(0.1, 4.2), aspect="equal")
    ax.axis("off")


def draw_refinement(ax, config) -> None:
    """The refinement stage (`models.refine`) as a block diagram on a matplotlib axis, every size read from `config`.

    config: a ModelConfig (crop side `refine_size` px, `refine_channels`, `num_rays`, `refine_iters`).
    """
    from siampolar_lib.geometry.refine import REFINE_MARGIN
    from siampolar_lib.models.refine import SAMPLES

    S, C, R, n = config.refine_size, config.refine_channels, config.num_rays, config.refine_iters
    T, f = len(SAMPLES), -(-config.refine_size // 4)
    boxes = {
        "first": (0.0, 1.5, 2.0, 1.6, "#eeeeee",
                  f"first polygon:\n{R} rays from the\ntracker's best\nlocation (frame px)"),
        "crop": (2.5, 1.5, 2.3, 1.6, "#dbe9f6",
                 f"crop of frame t around\nthe polygon's centre,\nside 2 × {REFINE_MARGIN:g} × its\n"
                 f"longest ray → {S}×{S}×3"),
        "feat": (5.3, 1.5, 2.5, 1.6, "#fde2c8",
                 "early backbone blocks,\nstrides 4 and 8: 1×1\nlaterals, summed,"
                 f"\n2 × (3×3 conv, GN, ReLU)\n→ F: {C}×{f}×{f} (stride 4)"),
        "sample": (8.3, 1.5, 2.6, 1.6, "#e2f0d9",
                   f"sample F (bilinear) at\n{T} points along each\nof the {R} rays ({SAMPLES[0]:g} … {SAMPLES[-1]:g}"
                   f"\n× its length), + their\nmean over the rays,\n+ log(ray / {S}): {2 * C * T + 1}×{R}"),
        "conv": (11.4, 1.5, 2.4, 1.6, "#f4dcef", f"three circular 1-D\nconvolutions over the\nray index (kernel 3;\n"
                                                 f"ray {R - 1} beside ray 0)\n→ δ: one per ray ({R})"),
        "update": (14.3, 1.5, 2.2, 1.6, "#f4dcef", "bounded multiplicative\nupdate:\nrays × exp(tanh(δ))\n"
                                                   "each ray ×1/e … ×e"),
        "out": (17.0, 1.5, 1.8, 1.6, "#eeeeee", "refined rays\n→ polygon\n→ mask"),
    }
    draw_blocks(ax, boxes)
    right = lambda k: (boxes[k][0] + boxes[k][2] + 0.05, boxes[k][1] + boxes[k][3] / 2)
    left = lambda k: (boxes[k][0] - 0.05, boxes[k][1] + boxes[k][3] / 2)
    for a, b in (("first", "crop"), ("crop", "feat"), ("feat", "sample"), ("sample", "conv"), ("conv", "update"),
                 ("update", "out")):
        _arrow(ax, right(a), left(b))
    # the first rays reach the sampling step directly (in crop pixels), below the crop and feature boxes
    x0, x1, yb = boxes["first"][0] + 1.0, boxes["sample"][0] + 1.3, boxes["first"][1] - 0.05
    ax.plot([x0, x0, x1], [yb, 0.95, 0.95], color="#333333", lw=0.9)
    _arrow(ax, (x1, 0.95), (x1, yb))
    ax.text((x0 + x1) / 2, 0.75, "the first rays, × the crop's scale (crop px)", ha="center", va="top", fontsize=7)
    # the loop: update -> sample again, refine_iters times with the same weights
    top = boxes["update"][1] + boxes["update"][3] + 0.05
    _arrow(ax, (boxes["update"][0] + 1.1, top), (boxes["sample"][0] + 1.3, top), rad=0.25)
    ax.text((boxes["sample"][0] + boxes["update"][0] + 2.4) / 2, top + 1.0,
            f"repeated refine_iters = {n} times with the same weights (each iteration's rays are kept: "
            "deep supervision)", ha="center", va="bottom", fontsize=7.5)
    ax.set(xlim=(-0.2, 19.0), ylim=(0.3, 4.6), aspect="equal")
    ax.set_title("the refinement stage (models.refine): the first polygon corrected at the object's own scale",
                 fontsize=9)
    ax.axis("off")


def draw_tracking_loop(ax, config, tracker_config=None) -> None:
    """One `Tracker.track` step as a loop diagram on a matplotlib axis: state -> search crop -> network -> decode ->
    polygon -> refine -> mask, and the state update from the first polygon's box.

    config: the network's ModelConfig (crop sizes, rays, refine_iters); tracker_config: a TrackerConfig (default
    settings when None) for size_lr, lost_score and the window weight.
    """
    from siampolar_lib.tracking.config import TrackerConfig

    tc = tracker_config or TrackerConfig()
    Z, X, R, n = config.template_size, config.search_size, config.num_rays, config.refine_iters
    refine = (f"refine (the stage\nabove): a crop of\nframe t at the object's\nscale, {n} iterations" if n
              else "refine: none\n(refine_iters = 0,\nthe first polygon\nis the mask)")
    boxes = {
        "state": (0.0, 1.9, 2.0, 1.5, "#eeeeee", "state\ncentre (x, y),\nsize w × h\n(frame px)"),
        "frame": (2.5, 3.9, 2.4, 0.7, "#dbe9f6", "frame t (H×W×3)"),
        "crop": (2.5, 1.9, 2.4, 1.5, "#dbe9f6", f"search crop x\n{X}×{X}×3 around the\ncentre, about 4× the\n"
                                                "target's side"),
        "template": (5.4, 3.9, 2.5, 0.7, "#fde2c8", f"template features\n(frame 0, {Z}×{Z}, once)"),
        "net": (5.4, 1.9, 2.5, 1.5, "#fde2c8", "network: backbone,\nneck, xcorr, polar head\n→ per level: cls,\n"
                                               f"ctr, {R} rays"),
        "decode": (8.4, 1.9, 2.6, 1.5, "#e2f0d9", "decode: σ(cls)·σ(ctr)\n× size-change penalty,\n"
                                                  f"cosine window (λ {tc.window_influence:g})\n→ best location"),
        "poly": (11.5, 1.9, 2.1, 1.5, "#f4dcef", f"first polygon\n{R} rays of the best\nlocation → frame px"),
        "refine": (14.1, 1.9, 2.3, 1.5, "#f4dcef", refine),
        "mask": (16.9, 1.9, 1.9, 1.5, "#eeeeee", "polygon → mask\n(H, W) bool:\nthe frame's result"),
    }
    draw_blocks(ax, boxes)
    right = lambda k: (boxes[k][0] + boxes[k][2] + 0.05, boxes[k][1] + boxes[k][3] / 2)
    left = lambda k: (boxes[k][0] - 0.05, boxes[k][1] + boxes[k][3] / 2)
    for a, b in (("state", "crop"), ("crop", "net"), ("net", "decode"), ("decode", "poly"), ("poly", "refine"),
                 ("refine", "mask")):
        _arrow(ax, right(a), left(b))
    for a, b in (("frame", "crop"), ("template", "net")):
        x = boxes[a][0] + boxes[a][2] / 2
        _arrow(ax, (x, boxes[a][1] - 0.05), (x, boxes[b][1] + boxes[b][3] + 0.05))
    # the state update for frame t+1 comes from the first polygon's box, before refinement
    xp, xs, yb = boxes["poly"][0] + 1.05, boxes["state"][0] + 1.0, boxes["poly"][1] - 0.05
    ax.plot([xp, xp, xs], [yb, 1.25, 1.25], color="#333333", lw=0.9)
    _arrow(ax, (xs, 1.25), (xs, boxes["state"][1] - 0.05))
    ax.text((xp + xs) / 2, 1.15, "state update for frame t+1, from the first polygon's box: centre ← its centre; size "
            f"moves towards its size by penalty × score × size_lr ({tc.size_lr:g});\nwhen the score is below "
            f"lost_score ({tc.lost_score:g}) the state is kept and the next search crop is widened",
            ha="center", va="top", fontsize=7)
    ax.set(xlim=(-0.2, 19.0), ylim=(0.3, 4.8), aspect="equal")
    ax.set_title("the tracking loop: one Tracker.track step per frame t (frame 0: Tracker.init caches the template)",
                 fontsize=9)
    ax.axis("off")


SCORE_NAMES = {"JF_M": "J&F", "J_M": "J_M", "F_M": "F_M"}


def draw_learning_curve(axes, points: list[dict], keys: tuple[str, ...] = ("JF_M", "F_M")) -> None:
    """Validation-fold scores (percent) against training pairs seen (thousands), one line per label, one axis per key.

    points: rows of `learning_curve.json` ({"pairs", "label", "JF_M", "J_M", "F_M", ...}); a label is one run
    of the campaign, so branches that start from the same checkpoint are separate lines, never joined.
    """
    labels = list(dict.fromkeys(p["label"] for p in sorted(points, key=lambda p: p["pairs"])))
    for ax, key in zip(axes, keys):
        lines = []
        for i, label in enumerate(labels):  # past ten runs the colours repeat: the marker tells them apart
            pts = sorted((p for p in points if p["label"] == label), key=lambda p: p["pairs"])
            lines += ax.plot([p["pairs"] / 1000 for p in pts], [100 * p[key] for p in pts], "-", color=f"C{i % 10}",
                             marker="os^D"[i // 10 % 4], ms=4, lw=1.2, label=label or "(no label)")
        ax.set(xlabel="training pairs seen (thousands)", ylabel=f"validation fold {SCORE_NAMES[key]} (%)")
        ax.grid(alpha=0.3)
    if labels:  # names passed with their lines: matplotlib would hide a label starting with "_"
        axes[-1].legend(lines, [label or "(no label)" for label in labels], fontsize=7, loc="lower right")


def draw_table(ax, rows: dict[str, dict], columns: tuple[str, ...], title: str = "", percent: bool = True) -> None:
    """Draw a results table on an axis: one row per name, statistics in percent with 1 decimal ('-' when absent).

    For scores that differ in their last digit between CPUs (a few mask pixels): a picture shows them to the
    learner without making a committed text output depend on the CPU (nbval compares text, not images).
    """
    def cell(row: dict, key: str) -> str:
        v = row.get(key)
        if v is None or not np.isfinite(v):
            return "-"
        return f"{100 * v:.1f}" if percent and key != "fps" else f"{v:.1f}"

    text = [[cell(rows[name], c) for c in columns] for name in rows]
    ax.axis("off")
    table = ax.table(cellText=text, rowLabels=list(rows), colLabels=list(columns), loc="center", cellLoc="right")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1.0, 1.3)
    if title:
        ax.set_title(title, fontsize=9)
