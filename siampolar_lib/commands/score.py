"""Score DAVIS-format prediction folders against annotations, and the command line that does it.

The command line over `siampolar_lib.evaluation.folders`: arguments, output checks, one call into the library.
Its outputs (results.json and the two CSVs) replace an earlier score's only with --overwrite, as siampolar-evaluate:
all three are written into a temporary folder inside --out, then renamed into place together under a lock, so a
failed score changes nothing and two scores into one --out never mix."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.data.davis import check_sequence_names
from siampolar_lib.errors import UserError
from siampolar_lib.evaluation.folders import annotations_dir, evaluate_folder
from siampolar_lib.evaluation.metrics import STAT_KEYS
from siampolar_lib.evaluation.report import format_table, write_davis_csvs, write_results_json
from siampolar_lib.io import package_version
from siampolar_lib.outputs import (
    check_output_apart,
    check_output_folder,
    clean_stale_temps,
    made_folders_removed_on_error,
    output_lock,
    temp_prefix,
)


def score_outputs(out_dir: Path, split: str) -> list[Path]:
    """The files a score writes into its --out: results.json and davis2017-evaluation's two CSVs."""
    return [out_dir / "results.json", out_dir / f"global_results-{split}.csv",
            out_dir / f"per-sequence_results-{split}.csv"]


def check_score_outputs(out_dir: Path, split: str, overwrite: bool, option: str = "--out") -> None:
    """Refuse an --out holding an earlier score's files unless overwrite (their folder is the user's to keep)."""
    held = [p.name for p in score_outputs(out_dir, split) if p.exists() or p.is_symlink()]
    if held and not overwrite:
        raise UserError(f"{out_dir}: {option} already holds {', '.join(held)} (an earlier score?); pass --overwrite "
                        "to replace them, or choose another --out")


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    """Score a prediction folder, print the table, write results.json and the official CSVs (never into the GT)."""
    ap = ArgumentParser(prog="siampolar-score",
                        description="Score a prediction folder, print the table, write results.json and the "
                                    "official davis2017-evaluation CSVs.")
    ap.add_argument("--gt", required=True, help="DAVIS root or its Annotations/480p folder")
    ap.add_argument("--pred", required=True, help="predictions: <pred>/<sequence>/00000.png ...")
    ap.add_argument("--out", help="folder for results.json (default: the --pred folder)")
    ap.add_argument("--overwrite", action="store_true", help="replace an earlier score's results.json and CSVs")
    ap.add_argument("--sequences", help="comma-separated subset (default: every GT sequence)")
    ap.add_argument("--processes", type=int, default=None, help="worker processes (default: CPU count)")
    ap.add_argument("--split", default="val", help="split name in the CSV file names (default val)")
    args = ap.parse_args(argv)

    gt_root = annotations_dir(args.gt).resolve()
    # --out defaults to --pred: results.json and the CSVs go beside the prediction folders, which stay untouched.
    option = "--out" if args.out else "--out (default: --pred)"
    out_dir = check_output_apart(args.out or args.pred, {"--gt": args.gt}, option).resolve()
    check_output_folder(out_dir)
    if args.processes is not None and args.processes < 1:
        raise UserError(f"--processes {args.processes}: give at least 1")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", args.split):  # it goes into the CSV file names
        raise UserError(f"--split {args.split!r}: use letters, digits, '-' or '_' (it names the CSV files)")
    seqs = [s.strip() for s in args.sequences.split(",") if s.strip()] if args.sequences is not None else None
    if seqs == []:
        raise UserError(f"--sequences {args.sequences!r} names no sequence: give names, or leave it out for all")
    if seqs is not None:
        check_sequence_names(seqs, "--sequences")
    check_score_outputs(out_dir, args.split, args.overwrite, option)  # before any work
    res = evaluate_folder(gt_root, args.pred, seqs, args.processes)
    per_seq = {s: {k: r[k] for k in STAT_KEYS} for s, r in res["sequences"].items()}
    summary = {k: res[k] for k in STAT_KEYS}
    print(format_table({**per_seq, "mean over sequences": summary},
                       columns=("J_M", "J_O", "J_D", "F_M", "F_O", "F_D", "JF_M")))
    run = {"tool": "siampolar-score", "version": package_version(), "gt": str(gt_root),
           "pred": str(Path(args.pred).resolve()), "sequences": list(per_seq),
           "frames": {s: len(r["J"]) for s, r in res["sequences"].items()}}
    results = out_dir / "results.json"
    with made_folders_removed_on_error(out_dir), output_lock(results, "--out"):  # a failed score leaves no new folder
        check_score_outputs(out_dir, args.split, args.overwrite, option)  # again: another score may have finished
        clean_stale_temps(out_dir, [f".{results.name}.partial-*"])  # a killed score's staging (dead owners only)
        staging = Path(tempfile.mkdtemp(prefix=temp_prefix(results, "partial"), dir=out_dir))
        try:
            write_results_json(staging / results.name, {**summary, "fps": None}, per_seq, run=run)
            write_davis_csvs(staging, res["sequences"], args.split)
            for path in score_outputs(out_dir, args.split):
                os.replace(staging / path.name, path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    path, g, p = score_outputs(out_dir, args.split)
    print(f"wrote {path}, {g.name} and {p.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
