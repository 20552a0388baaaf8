"""Upper bound of the polar representation on a DAVIS folder: mean IoU of each mask with its own polygon.

    python data_scripts/polar_upper_bound.py --davis-root ../shared/data/DAVIS --rays 8,12,18,24,36,72 \
        --centres mass,box,best --json polar_bound.json

Prints a table (rows: number of rays, columns: centre choice) and optionally writes json
{"rays": {"36": {"mass": mean_iou, ...}, ...}, "masks": non-empty count, "empty": count, "seconds": wall time}
(IoU 0..1; a mask without an object is left out, and a set of only empty masks is an error). An existing --json is
replaced only with --overwrite, and --json may not be, contain or lie inside --davis-root.
"""
from __future__ import annotations

import json
import os
import sys
import time
from contextlib import nullcontext
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.data.davis import check_sequence_name, read_sequence_list
from siampolar_lib.errors import UserError
from siampolar_lib.geometry.polar import polar_fit_iou
from siampolar_lib.io import read_mask_png, write_text
from siampolar_lib.outputs import owned_output_file
from siampolar_lib.paths import davis_root


def annotation_files(root: Path, every: int = 1) -> list[Path]:
    """Every `every`-th annotation PNG of the sequences in ImageSets/2016/val.txt (or all folders)."""
    ann = root / "Annotations" / "480p"
    if not ann.is_dir():
        raise UserError(f"{ann}: no Annotations/480p folder (is --davis-root a DAVIS folder?)")
    listing = root / "ImageSets" / "2016" / "val.txt"
    if listing.is_file():
        seqs = read_sequence_list(listing)  # each one folder name: a path would read outside the root
    else:
        seqs = [check_sequence_name(p.name, str(ann)) for p in sorted(ann.iterdir()) if p.is_dir()]
    files = [f for s in seqs for f in sorted((ann / s).glob("*.png"))[::every]]
    if not files:
        raise UserError(f"{ann}: no annotation PNGs found")
    return files


def _one(args) -> list[float] | None:
    """IoUs of one mask file for every (rays, centre) pair, in order; None for an empty mask (no object to fit)."""
    path, rays, centres, method = args
    mask = read_mask_png(path)
    if not mask.any():
        return None
    return [polar_fit_iou(mask, n, c, method=method) for n in rays for c in centres]


def upper_bound(files: list[Path], rays: list[int], centres: list[str], method: str = "cast",
                workers: int = 2) -> dict:
    """Mean round-trip IoU per (rays, centre) over the non-empty masks: {"rays": {"N": {centre: iou}}, "masks": n,
    "empty": masks without an object (left out: an empty mask would count as a perfect 1.0)}."""
    jobs = [(f, rays, centres, method) for f in files]
    # The bar is drawn on a terminal only (disable=None), and closed and wiped (leave=False) before an unreadable
    # mask's error goes out: the error is then the one line left, not glued to a bar. Redirected, nothing is drawn.
    with tqdm(total=len(jobs), desc="masks", mininterval=30, disable=None, leave=False) as bar, \
            (Pool(workers) if workers > 1 else nullcontext()) as pool:
        rows = []
        for row in (pool.imap(_one, jobs, chunksize=4) if pool else map(_one, jobs)):
            rows.append(row)
            bar.update()
    kept = [r for r in rows if r is not None]
    if not kept:
        raise UserError(f"no object in any of the {len(files)} masks: there is nothing to fit rays to")
    table = np.array(kept).reshape(len(kept), len(rays), len(centres)).mean(axis=0)
    return {"rays": {str(n): {c: float(table[i, j]) for j, c in enumerate(centres)} for i, n in enumerate(rays)},
            "masks": len(kept), "empty": len(rows) - len(kept)}


def parse_list(text: str, option: str, kind=str) -> list:
    """'a,b,c' -> [a, b, c] converted by kind; UserError naming the option otherwise."""
    try:
        return [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{option} {text!r}: expected a comma-separated list of {kind.__name__}") from None


def bound_table(files: list[Path], rays: list[int], centres: list[str], method: str, workers: int) -> dict:
    """`upper_bound` with its wall time and method, printed as a table (rows: rays, columns: centres)."""
    t0 = time.perf_counter()
    res = upper_bound(files, rays, centres, method, workers)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    res["method"] = method
    print(f"{res['masks']} masks with an object ({res['empty']} empty ones left out), method {method}, "
          f"{res['seconds']} s on {workers} workers")
    print("rays " + "".join(f"{c:>8}" for c in centres))
    for n in rays:
        print(f"{n:>4} " + "".join(f"{res['rays'][str(n)][c]:8.3f}" for c in centres))
    return res


@cli_main
def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(prog="polar_upper_bound.py", description=__doc__.splitlines()[0])
    ap.add_argument("--davis-root", default=None, help="DAVIS folder (default: $SIAMPOLAR_DAVIS_ROOT or data/DAVIS)")
    ap.add_argument("--rays", default="8,12,18,24,36,72", help="comma-separated ray counts")
    ap.add_argument("--centres", default="mass,box,best", help="comma-separated: mass, box, best")
    ap.add_argument("--method", default="cast", choices=["cast", "exit", "contour"])
    ap.add_argument("--every", type=int, default=1, help="use every k-th frame (1 = all)")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--json", default=None, help="write the results here (temp file, then rename)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing --json")
    a = ap.parse_args(argv)
    rays = parse_list(a.rays, "--rays", int)
    centres = parse_list(a.centres, "--centres")
    bad = [c for c in centres if c not in ("mass", "box", "best")]
    if bad or not centres:
        raise UserError(f"--centres {a.centres!r}: choose from mass, box, best")
    if not rays or any(not 3 <= r <= 3600 for r in rays):
        raise UserError(f"--rays {a.rays!r}: every ray count must be between 3 and 3600 (0.1 degree apart)")
    if a.every < 1 or a.workers < 1:
        raise UserError("--every and --workers must be at least 1")
    root = davis_root(a.davis_root)
    # --json is checked before the work, not after it, and held (locked) until it is written
    with owned_output_file(a.json, {"--davis-root": root}, a.overwrite, "--json") if a.json else nullcontext():
        res = bound_table(annotation_files(root, a.every), rays, centres, a.method, a.workers)
        if a.json:
            write_text(a.json, json.dumps(res, indent=1))
    return 0



if __name__ == "__main__":
    sys.exit(main())
