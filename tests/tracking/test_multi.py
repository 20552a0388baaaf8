"""Several objects: label maps and palette PNGs, `track --box ... --box ...` end to end through `metrics`,
per-object scores and the official davis2017 CSV files."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from siampolar_lib import build_model
from siampolar_lib.commands.score import main as metrics_main
from siampolar_lib.commands.track import main as track_main
from siampolar_lib.evaluation.folders import evaluate_folder
from siampolar_lib.evaluation.report import write_davis_csvs
from siampolar_lib.io import PALETTE, read_label_png, write_label_png
from siampolar_lib.tracking.multi import label_map
from siampolar_lib.tracking.tracker import TrackResult
from siampolar_lib.training.checkpoint import save_checkpoint

GLOBAL_COLUMNS = ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]


def result(mask: np.ndarray, score: float) -> TrackResult:
    return TrackResult(mask=mask, polygon=np.zeros((36, 2)), box=np.zeros(4), score=score, lost=False)


def test_label_map_gives_overlaps_to_the_higher_score():
    a = np.zeros((4, 6), bool)
    b = np.zeros((4, 6), bool)
    a[:, :4] = True
    b[:, 2:] = True
    labels = label_map([result(a, 0.3), result(b, 0.8)], (4, 6))
    assert labels.dtype == np.uint8 and labels[0].tolist() == [1, 1, 2, 2, 2, 2]
    labels = label_map([result(a, 0.9), result(b, 0.8)], (4, 6))
    assert labels[0].tolist() == [1, 1, 1, 1, 2, 2]
    assert not label_map([], (2, 2)).any()


def test_palette_png_round_trip(tmp_path):
    labels = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    path = write_label_png(tmp_path / "m" / "00000.png", labels)
    with Image.open(path) as im:
        assert im.mode == "P" and np.array_equal(np.asarray(im), labels)
        assert im.getpalette()[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]
    assert np.array_equal(read_label_png(path), labels)
    assert PALETTE[1].tolist() == [128, 0, 0] and PALETTE[2].tolist() == [0, 128, 0]
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["00000.png"], "no temp file left"


def two_disks(root: Path, n: int = 6) -> tuple[Path, Path, list[str]]:
    """A 2-object clip (two disks moving apart on noise), 160 x 120: frames folder and palette GT folder."""
    rng = np.random.default_rng(0)
    bg = rng.integers(30, 90, (120, 160, 3), dtype=np.uint8)
    frames, gt = root / "frames" / "clip", root / "gt" / "clip"
    frames.mkdir(parents=True)
    yy, xx = np.mgrid[:120, :160]
    for i in range(n):
        img = bg.copy()
        labels = np.zeros((120, 160), np.uint8)
        for k, (cx, cy, colour) in enumerate([(45 - 2 * i, 60, (240, 60, 60)), (110 + 2 * i, 55, (60, 220, 240))], 1):
            disk = (xx - cx) ** 2 + (yy - cy) ** 2 <= 16 ** 2
            img[disk] = colour
            labels[disk] = k
        cv2.imwrite(str(frames / f"{i:05d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        write_label_png(gt / f"{i:05d}.png", labels)
    return frames, gt, ["29,44,32,32", "94,39,32,32"]


def test_two_objects_track_then_score_per_object(tmp_path, capsys):
    frames, gt, boxes = two_disks(tmp_path)
    ckpt = save_checkpoint(tmp_path / "quick.pt", build_model("quick", pretrained=False))
    out = tmp_path / "run"
    argv = ["--checkpoint", str(ckpt), "--video", str(frames), "--out", str(out), "--device", "cpu",
            "--engine", "torch", f"--box={boxes[0]}", "--box", boxes[1]]
    assert track_main(argv) == 0, capsys.readouterr().err
    assert "2 objects" in capsys.readouterr().out
    masks = sorted((out / "masks").glob("*.png"))
    assert len(masks) == 6 and (out / "overlay.mp4").stat().st_size > 0
    with Image.open(masks[0]) as im:
        assert im.mode == "P"
    first = read_label_png(masks[0])
    assert set(np.unique(first)) == {0, 1, 2} and (first == 1).sum() == (first == 2).sum() == 32 * 32
    pred = tmp_path / "pred"
    pred.mkdir()
    (out / "masks").rename(pred / "clip")
    assert metrics_main(["--gt", str(tmp_path / "gt"), "--pred", str(pred), "--processes", "1"]) == 0
    doc = json.loads((pred / "results.json").read_text())
    assert set(doc["sequences"]) == {"clip_1", "clip_2"}
    with open(pred / "per-sequence_results-val.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["Sequence", "J-Mean", "F-Mean"] and [r[0] for r in rows[1:]] == ["clip_1", "clip_2"]
    with open(pred / "global_results-val.csv") as fh:
        g = list(csv.reader(fh))
    assert g[0] == GLOBAL_COLUMNS and len(g) == 2
    assert float(g[1][1]) == pytest.approx(np.mean([doc["sequences"][s]["J_M"] for s in doc["sequences"]]), abs=5e-4)


def test_objects_are_scored_by_id(tmp_path):
    _, gt, _ = two_disks(tmp_path)
    same, swapped = tmp_path / "same" / "clip", tmp_path / "swapped" / "clip"
    for f in sorted(gt.glob("*.png")):
        labels = read_label_png(f)
        write_label_png(same / f.name, labels)
        write_label_png(swapped / f.name, np.where(labels > 0, 3 - labels, 0).astype(np.uint8))
    ok = evaluate_folder(tmp_path / "gt", tmp_path / "same", processes=1)
    bad = evaluate_folder(tmp_path / "gt", tmp_path / "swapped", processes=1)
    assert ok["J_M"] == 1.0 and ok["sequences"]["clip_2"]["object"] == 2
    assert bad["J_M"] == 0.0, "object 1 predicted where object 2 is scores 0 for both"


def test_davis_csvs_columns_and_values(tmp_path):
    rows = {"bear": {"J_M": 0.8, "J_O": 0.9, "J_D": 0.1, "F_M": 0.6, "F_O": 0.7, "F_D": 0.05},
            "dogs_2": {"J_M": 0.4, "J_O": 0.5, "J_D": 0.2, "F_M": 0.2, "F_O": 0.1, "F_D": 0.0,
                       "sequence": "dogs", "object": 2}}
    g, s = write_davis_csvs(tmp_path, rows, "val")
    assert g.name == "global_results-val.csv" and s.name == "per-sequence_results-val.csv"
    assert g.read_text().splitlines() == [",".join(GLOBAL_COLUMNS), "0.500,0.600,0.700,0.150,0.400,0.400,0.025"]
    assert s.read_text().splitlines() == ["Sequence,J-Mean,F-Mean", "bear_1,0.800,0.600", "dogs_2,0.400,0.200"]
    with pytest.raises(ValueError):
        write_davis_csvs(tmp_path, {})


def test_evaluate_writes_official_csvs(real_davis, tmp_path):
    from siampolar_lib.commands.evaluate import main as evaluate_main

    assert evaluate_main(["--baselines", "static", "--sequences", "blackswan", "--max-frames", "4",
                          "--davis-root", str(real_davis), "--out", str(tmp_path), "--no-progress"]) == 0
    lines = (tmp_path / "static" / "per-sequence_results-val.csv").read_text().splitlines()
    assert lines[0] == "Sequence,J-Mean,F-Mean" and lines[1].startswith("blackswan_1,")
    head = (tmp_path / "static" / "global_results-val.csv").read_text().splitlines()[0]
    assert head.split(",") == GLOBAL_COLUMNS
