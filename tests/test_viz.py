"""The architecture figure's shapes are the network's: read from the config, checked against a real forward."""
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
