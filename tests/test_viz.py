"""The figures and plotting helpers: the architecture's shapes are the network's (checked against a real forward),
the refinement stage and the tracking loop name every step, frames and learning curves draw what they are given."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from siampolar_lib.models.config import get_config  # noqa: E402
from siampolar_lib.models.siampolar import SiamPolar  # noqa: E402
from siampolar_lib.viz import architecture_shapes, draw_architecture  # noqa: E402


@pytest.mark.parametrize("name", ["quick", "lite0"])
def test_figure_shapes_match_a_forward(name):
    model = SiamPolar(get_config(name), pretrained=False).eval()
    cfg = model.config
    with torch.no_grad():
        out = model(torch.zeros(1, 3, cfg.template_size, cfg.template_size),
                    torch.zeros(1, 3, cfg.search_size, cfg.search_size))
        feats = model.features(torch.zeros(1, 3, cfg.search_size, cfg.search_size))
    sh = architecture_shapes(cfg, model.backbone.out_channels)
    assert sh["corr"] == " / ".join(f"{c.shape[-1]}²" for c in out["cls"])
    assert sh["search"] == " / ".join(f"{f.shape[-1]}²" for f in feats)
    assert out["rays"][0].shape[1] == sh["rays"] and feats[0].shape[1] == sh["channels"]
    fig, ax = plt.subplots()
    draw_architecture(ax, cfg, model.backbone.out_channels)
    texts = " ".join(t.get_text() for t in ax.texts)
    assert sh["corr"] in texts and cfg.backbone in texts and "search maps" in texts
    plt.close(fig)


def test_learning_curve_names_every_run_in_the_legend_and_draws_no_points_without_a_warning():
    """A label starting with "_" was dropped from the legend (matplotlib hides such labels), and no points at all
    made matplotlib warn "No artists with labels found to put in legend"."""
    import warnings

    from siampolar_lib.viz import draw_learning_curve

    points = [{"pairs": k * 1000, "label": label, "JF_M": 0.5 + k / 100, "F_M": 0.5} for k in (1, 2)
              for label in ("_phase1", "")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for rows in ([], points):
            fig, axes = plt.subplots(1, 2)
            draw_learning_curve(axes, rows)
            legend = axes[-1].get_legend()
            names = [t.get_text() for t in legend.get_texts()] if legend else []
            plt.close(fig)
            assert names == (["_phase1", "(no label)"] if rows else []), names


def test_learning_curve_tells_more_than_ten_runs_apart():
    """The campaign has 11 runs; with matplotlib's 10-colour cycle the first and the eleventh looked the same."""
    from siampolar_lib.viz import draw_learning_curve

    points = [{"pairs": 1000 * k, "label": f"run{k:02d}", "JF_M": 0.5, "F_M": 0.4} for k in range(12)]
    fig, axes = plt.subplots(1, 2)
    draw_learning_curve(axes, points)
    styles = [(line.get_color(), line.get_marker()) for line in axes[0].lines]
    plt.close(fig)
    assert len(styles) == 12 and len(set(styles)) == 12


def test_refinement_and_tracking_loop_figures_name_every_step_with_the_config_sizes():
    """The two figures beside the architecture: the refinement stage and one tracking step, sizes read from configs."""
    import dataclasses

    from siampolar_lib.tracking.config import TrackerConfig
    from siampolar_lib.viz import draw_refinement, draw_tracking_loop

    cfg = dataclasses.replace(get_config("lite0"), refine_iters=3, refine_size=96, refine_channels=32)
    fig, axes = plt.subplots(2, 1)
    draw_refinement(axes[0], cfg)
    draw_tracking_loop(axes[1], cfg, TrackerConfig(size_lr=0.45))
    stage = " ".join(t.get_text() for t in axes[0].texts).replace("\n", " ")
    loop = " ".join(t.get_text() for t in axes[1].texts).replace("\n", " ")
    plt.close(fig)
    for label in ("crop of frame t", "96×96×3", "strides 4 and 8", "F: 32×24×24 (stride 4)", "7 points along each",
                  "of the 36 rays", "three circular 1-D convolutions", "exp(tanh(δ))", "refine_iters = 3 times"):
        assert label in stage, label
    for label in ("state", "search crop x 255×255×3", "network", "decode", "best location", "first polygon",
                  "refine", "3 iterations", "mask", "state update for frame t+1, from the first polygon's box",
                  "size_lr (0.45)", "template features"):
        assert label in loop, label


def test_show_frame_draws_mask_polygon_and_truth_and_zooms_on_them():
    import numpy as np

    from siampolar_lib.viz import show_frame

    frame = np.zeros((60, 80, 3), np.uint8)
    gt = np.zeros((60, 80), bool)
    gt[20:30, 30:40] = True
    polygon = np.array([[28.0, 18.0], [45.0, 18.0], [45.0, 33.0], [28.0, 33.0]])
    fig, axes = plt.subplots(1, 3)
    show_frame(axes[0], frame, gt, polygon, gt=gt, zoom=5)
    assert axes[0].get_xlim() == (23.0, 50.0) and axes[0].get_ylim() == (38.0, 13.0)  # y down, as imshow draws it
    assert len(axes[0].lines) == 1 and axes[0].collections  # the polygon and the truth's contour
    show_frame(axes[1], frame, gt, polygon, gt=gt, zoom=100)  # the margin stops at the frame's edges
    assert axes[1].get_xlim() == (0.0, 79.0) and axes[1].get_ylim() == (59.0, 0.0)
    show_frame(axes[2], frame, np.zeros_like(gt), None, gt=np.zeros_like(gt), zoom=5)  # nothing to draw or zoom on
    assert not axes[2].lines and axes[2].get_xlim() == (-0.5, 79.5)
    plt.close(fig)
