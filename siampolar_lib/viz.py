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


def draw_architecture(ax, config, backbone_channels: dict[int, int]) -> None:
    """The SiamPolar network as a block diagram on a matplotlib axis, every shape read from `config`."""
    from matplotlib.patches import FancyBboxPatch

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
    for x, y, w, h, colour, text in boxes.values():
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.04", fc=colour, ec="#555555", lw=0.8))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=7.5)
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


SCORE_NAMES = {"JF_M": "J&F", "J_M": "J_M", "F_M": "F_M"}


def draw_learning_curve(axes, points: list[dict], keys: tuple[str, ...] = ("JF_M", "F_M")) -> None:
    """Validation-fold scores (percent) against training pairs seen (thousands), one line per label, one axis per key.

    points: rows of `learning_curve.json` ({"pairs", "label", "JF_M", "J_M", "F_M", ...}); a label is one run
    of the campaign, so branches that start from the same checkpoint are separate lines, never joined.
    """
    labels = list(dict.fromkeys(p["label"] for p in sorted(points, key=lambda p: p["pairs"])))
    for ax, key in zip(axes, keys):
        lines = []
        for label in labels:
            pts = sorted((p for p in points if p["label"] == label), key=lambda p: p["pairs"])
            lines += ax.plot([p["pairs"] / 1000 for p in pts], [100 * p[key] for p in pts], "o-", ms=4, lw=1.2,
                             label=label or "(no label)")
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
