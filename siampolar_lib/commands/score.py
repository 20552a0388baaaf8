"""Score DAVIS-format prediction folders against annotations, and the command line that does it.

The command line over `siampolar_lib.evaluation.folders`: arguments, output checks, one call into the library."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.errors import UserError
from siampolar_lib.evaluation.folders import annotations_dir, evaluate_folder
from siampolar_lib.evaluation.metrics import STAT_KEYS
from siampolar_lib.evaluation.report import format_table, write_davis_csvs, write_results_json
from siampolar_lib.io import package_version
from siampolar_lib.outputs import check_output_apart, check_output_folder


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    """Score a prediction folder, print the table, write results.json and the official CSVs (never into the GT)."""
    ap = ArgumentParser(prog="siampolar-score",
                        description="Score a prediction folder, print the table, write results.json and the "
                                    "official davis2017-evaluation CSVs.")
    ap.add_argument("--gt", required=True, help="DAVIS root or its Annotations/480p folder")
    ap.add_argument("--pred", required=True, help="predictions: <pred>/<sequence>/00000.png ...")
    ap.add_argument("--out", help="folder for results.json (default: the --pred folder)")
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
    res = evaluate_folder(gt_root, args.pred, seqs, args.processes)
    per_seq = {s: {k: r[k] for k in STAT_KEYS} for s, r in res["sequences"].items()}
    summary = {k: res[k] for k in STAT_KEYS}
    print(format_table({**per_seq, "mean over sequences": summary},
                       columns=("J_M", "J_O", "J_D", "F_M", "F_O", "F_D", "JF_M")))
    run = {"tool": "siampolar-score", "version": package_version(), "gt": str(gt_root),
           "pred": str(Path(args.pred).resolve()), "sequences": list(per_seq),
           "frames": {s: len(r["J"]) for s, r in res["sequences"].items()}}
    path = write_results_json(out_dir / "results.json", {**summary, "fps": None}, per_seq, run=run)
    g, p = write_davis_csvs(out_dir, res["sequences"], args.split)
    print(f"wrote {path}, {g.name} and {p.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
