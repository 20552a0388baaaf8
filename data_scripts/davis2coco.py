"""Convert a DAVIS folder to COCO-style JSONs (lossless RLE, one class "object"), one per split.

    python data_scripts/davis2coco.py --davis-root ../shared/data/DAVIS            # -> data/coco/DAVIS/
    python data_scripts/davis2coco.py --davis-root DIR --year 2017 --out DIR --polygons

An --out holding a JSON this conversion would write (an earlier conversion) is refused unless --overwrite; each JSON
is written to a temporary name and renamed. --out may not be, contain or lie inside the DAVIS folder.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.data.coco import coco_json_path, coco_splits, davis_to_coco, verify_coco
from siampolar_lib.data.davis import folder_sequences
from siampolar_lib.errors import UserError
from siampolar_lib.outputs import (
    check_output_apart,
    check_output_folder,
    clean_stale_temps,
    made_folders_removed_on_error,
    output_lock,
)
from siampolar_lib.paths import REPO_ROOT, davis_root

STALE_TEMPS = (".*.tmp*", ".*.json.*")  # what a killed conversion leaves: atomic_write temps (older: .NAME.json.XXXX)


def check_earlier(out: Path, root: Path, year: int, overwrite: bool) -> None:
    """Refuse an --out already holding a JSON this conversion writes (an earlier run's), unless overwrite."""
    held = [path.name for split in coco_splits(root, year) if (path := coco_json_path(out, split)).exists()]
    if held and not overwrite:
        raise UserError(f"{out}: --out already holds {', '.join(held)} (an earlier conversion?); pass --overwrite "
                        "to replace them, or choose another --out")


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="davis2coco.py", description=__doc__.splitlines()[0])
    p.add_argument("--davis-root", type=Path, default=None,
                   help="DAVIS folder (default: $SIAMPOLAR_DAVIS_ROOT, else data/DAVIS)")
    p.add_argument("--year", type=int, choices=(2016, 2017), default=2016,
                   help="2016: one object a frame; 2017: one annotation per palette index")
    p.add_argument("--out", type=Path, default=None, help="output folder (default data/coco/<name of the root>)")
    p.add_argument("--polygons", action="store_true", help="also store lossy outer-contour polygons")
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.add_argument("--verify", action="store_true", help="decode every annotation and compare with its mask")
    p.add_argument("--overwrite", action="store_true", help="replace the JSONs of an earlier conversion in --out")
    a = p.parse_args(argv)
    if a.workers < 1:
        raise UserError(f"--workers {a.workers}: give at least 1")
    root = davis_root(a.davis_root)
    folder_sequences(root)  # a DAVIS root? (checked before anything is written)
    out = a.out if a.out is not None else REPO_ROOT / "data" / "coco" / root.resolve().name
    check_output_apart(out, {"--davis-root": root})
    check_output_folder(out)
    check_earlier(out, root, a.year, a.overwrite)
    t0 = time.perf_counter()
    with made_folders_removed_on_error(out), output_lock(out):  # a failed conversion leaves no new folder
        check_earlier(out, root, a.year, a.overwrite)  # again, under the lock: another conversion may have finished
        clean_stale_temps(out, STALE_TEMPS)
        written = davis_to_coco(root, year=a.year, out_dir=out, polygons=a.polygons, workers=a.workers)
    for split, path in written.items():
        msg = f"{split}: {path}"
        if a.verify:
            msg += f" (verified {verify_coco(path, root, a.year)} frames pixel for pixel)"
        print(msg)
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
