"""The demo's widget callbacks, called directly (headless): box drawn -> run -> scrub -> toggle -> export."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from siampolar_lib.apps.interactive import DemoApp, bbox_to_xywh, encode_image
from siampolar_lib.geometry.crops import SEARCH_SIZE
from siampolar_lib.models.config import LITE0
from siampolar_lib.models.grid import location_grid
from siampolar_lib.video import read_frames


class CentreModel(nn.Module):
    """A contract-honouring fake network: peak score at the crop centre, every ray 20 crop pixels long."""

    config = LITE0  # the crop geometry the tracker reads

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        self.points = location_grid(25, 25, 8, SEARCH_SIZE)
        self.calls = 0

    def template(self, z):
        assert z.shape == (1, 3, 127, 127)

    def track(self, x):
        assert x.shape == (1, 3, 255, 255)
        self.calls += 1
        cls = torch.full((1, 1, 25, 25), -4.0)
        cls[0, 0, 12, 12] = 6.0
        cls[0, 0, 12, 13] = 1.0  # so the score map is not a single spike
        return {"cls": [cls], "ctr": [cls.clone()], "rays": [torch.full((1, 36, 25, 25), 20.0)],
                "points": [self.points], "strides": [8]}


def frames(n: int = 5, h: int = 90, w: int = 120) -> list[np.ndarray]:
    """n grey frames, each with a slightly different shade so frames are distinguishable."""
    return [np.full((h, w, 3), 60 + 10 * i, np.uint8) for i in range(n)]


@pytest.fixture
def app() -> DemoApp:
    return DemoApp(CentreModel(), frames(), fps=5)


def test_box_drawn_then_run_then_scrub(app):
    assert app.results is None and app.box is None
    with pytest.raises(RuntimeError, match="box"):
        app.run(progress=False)
    app.on_box_drawn([{"x": 40, "y": 30, "width": 30, "height": 20, "label": "target"}])
    assert app.box.tolist() == [40, 30, 30, 20]
    results = app.run(progress=False)
    assert len(results) == 5 and app.model.calls == 4, "frame 0 is the box, frames 1..4 are tracked"
    assert results[0].mask.sum() == 30 * 20
    for r in results[1:]:
        assert r.mask.shape == (90, 120) and r.mask.any() and r.polygon.shape == (36, 2)
        assert 0.0 <= r.score <= 1.0
    img0, img3 = app.on_frame_change(0), app.on_frame_change({"new": 3, "old": 0})
    assert app.frame_index == 3 and img3.shape == (90, 120, 3) and img3.dtype == np.uint8
    assert not np.array_equal(img0, img3)
    assert np.array_equal(app.render(3), img3)
    with pytest.raises(IndexError):
        app.on_frame_change(5)


def test_overlay_shows_mask_rays_and_score_map(app):
    app.set_box((40, 30, 30, 20))
    app.run(progress=False)
    plain = app.on_frame_change(2)
    assert not np.array_equal(plain, app.frames[2]), "the overlay draws on the frame"
    assert app.score_maps[0] is None and app.score_maps[2].shape == (25, 25)
    assert app.score_maps[2].max() == pytest.approx(torch.sigmoid(torch.tensor(6.0)).item() ** 2, rel=1e-5)
    with_map = app.on_score_map_toggle(True)
    assert not np.array_equal(with_map, plain)
    assert np.array_equal(app.on_score_map_toggle({"new": False}), plain)
    no_rays = app.on_rays_toggle(False)
    assert not np.array_equal(no_rays, plain)


def test_new_box_drops_old_results(app):
    app.set_box((40, 30, 30, 20))
    app.run(progress=False)
    app.on_box_drawn({"x": 10, "y": 10, "width": 20, "height": 20})
    assert app.results is None
    with pytest.raises(ValueError, match="outside"):
        app.set_box((500, 500, 10, 10))
    with pytest.raises(ValueError, match="width"):
        bbox_to_xywh({"x": 1, "y": 2})
    with pytest.raises(ValueError, match="no box"):
        bbox_to_xywh([])


def test_export_gif_and_mp4(app, tmp_path):
    with pytest.raises(RuntimeError, match="run the tracker"):
        app.export(tmp_path / "x.gif")
    app.set_box((40, 30, 30, 20))
    app.run(progress=False)
    for name in ("demo.gif", "demo.mp4"):
        got = read_frames(app.export(tmp_path / name))
        assert len(got) == 5 and got[0].shape == (90, 120, 3)


def test_player_widgets_forward_to_callbacks(app):
    app.set_box((40, 30, 30, 20))
    app.run(progress=False)
    ui = app.player()
    slider = ui.children[0].children[1]
    before = app._image.value
    slider.value = 4
    assert app.frame_index == 4 and app._image.value != before
    assert app._image.value == encode_image(app.render(4))
    assert "frame 4/4" in app._info.value
    smap = ui.children[0].children[3]
    smap.value = True
    assert app.show_score_map
    app.on_frame_change(1)  # a call from code moves the slider too, so the two never disagree
    assert slider.value == 1 and app._image.value == encode_image(app.render(1))


def test_box_widget_reports_drawn_box(app):
    wid = app.box_widget()
    wid.bboxes = [{"x": 20, "y": 25, "width": 40, "height": 30, "label": "target"}]
    assert app.box.tolist() == [20, 25, 40, 30]


def test_two_drawn_boxes_are_tracked_in_their_colours(app, tmp_path):
    drawn = [{"x": 10, "y": 10, "width": 30, "height": 20, "label": "target"},
             {"x": 70, "y": 50, "width": 30, "height": 30, "label": "target"}]
    boxes = app.on_box_drawn({"new": drawn, "old": []})
    assert [b.tolist() for b in boxes] == [[10, 10, 30, 20], [70, 50, 30, 30]]
    app.run(progress=False)
    assert len(app.object_results) == 5 and all(len(r) == 2 for r in app.object_results)
    assert app.model.calls == 2 * 4, "one network pass per object and tracked frame"
    img = app.render(0)
    from siampolar_lib.io import PALETTE

    tint = img.astype(int) - app.frames[0].astype(int)
    assert tint[20, 20, 0] > 0 and tint[65, 85, 1] > 0, "object 1 tinted red, object 2 green"
    assert "1: score" in app.info(2) and "2: score" in app.info(2)
    assert len(read_frames(app.export(tmp_path / "two.gif"))) == 5
    assert PALETTE[1][0] > 0 and PALETTE[2][1] > 0


def test_onnxruntime_engine_falls_back_for_a_fake_network(capsys):
    app = DemoApp(CentreModel(), frames(), box_xywh=(40, 30, 30, 20), engine="onnxruntime")
    assert app.engine.name == "torch" and "using torch" in capsys.readouterr().err
    assert len(app.run(progress=False)) == 5


def test_threads_reach_the_engine(monkeypatch):
    """DemoApp(threads=...) builds its engine with that many ONNX Runtime threads (notebook 08 prints them)."""
    import siampolar_lib.apps.interactive as interactive

    seen = {}
    real = interactive.make_engine
    monkeypatch.setattr(interactive, "make_engine", lambda *a, **kw: seen.update(kw) or real(*a, **kw))
    DemoApp(CentreModel(), frames(), box_xywh=(40, 30, 30, 20), threads=3)
    assert seen == {"threads": 3}


def test_track_button_tracks_from_the_drawn_box(app, tmp_path):
    ui = app.player()
    track, status = ui.children[3].children[0], ui.children[3].children[-1]
    assert track.description == "Track" and "not tracked yet" in status.value
    track.click()  # no box yet: the status line says so, nothing is tracked
    assert status.value.startswith("error:") and "box" in status.value and app.results is None
    wid = app.box_widget()
    wid.bboxes = [{"x": 20, "y": 25, "width": 40, "height": 30, "label": "target"}]
    assert app._image.value == encode_image(app.render(app.frame_index))
    track.click()
    assert app.results is not None and len(app.results) == 5 and app.results[0].mask.sum() == 40 * 30
    assert status.value.startswith("tracked 5 frames from box (20, 25, 40, 30)")
    first = app.results
    wid.bboxes = [{"x": 60, "y": 40, "width": 30, "height": 30, "label": "target"}]
    assert app.results is None and "not tracked yet" in status.value
    track.click()
    assert app.results is not first and app.results[0].mask.sum() == 30 * 30
    assert "box (60, 40, 30, 30)" in status.value
    ui.children[0].children[3].value = True  # score map toggle shows the new run's map
    assert app._image.value == encode_image(app.render(app.frame_index))
    assert len(read_frames(app.export(tmp_path / "new.gif"))) == 5
    wid.bboxes = [{"x": 60, "y": 40, "width": 30, "height": 30, "label": "target"},
                  {"x": 5, "y": 5, "width": 20, "height": 20, "label": "target"}]  # a second box: two objects
    track.click()
    assert len(app.object_results[1]) == 2 and "2 boxes (60, 40, 30, 30), (5, 5, 20, 20)" in status.value

