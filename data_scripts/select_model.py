"""Model selection and tracker ablations on the validation fold of DAVIS-2016 *train* sequences.

    python data_scripts/select_model.py --checkpoints A.pt B.pt [--set vote_radius=1 --set ray_scale=0.9 ...]

Each checkpoint x each setting (`--set` adds one TrackerConfig variant; `name=value[,name=value]`, the
defaults are always the first row) is tracked over `siampolar_lib.splits.VALIDATION_FOLD_SEQUENCES` of the
full-rate train sample (never a val sequence) by `siampolar_lib.evaluation.selection.fold_scores` and printed as
one row: J&F, J_M, F_M (DAVIS protocol) and the mean box IoU (the predicted mask's box against the true box,
scored frames only). `--json` saves rows; it is checked before any work: an earlier file is replaced only with
--overwrite, and it may not be, contain or lie inside a checkpoint or --davis-root.
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from pathlib import Path

import yaml

from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.evaluation.selection import check_train_sequences, fold_scores
from siampolar_lib.io import write_text
from siampolar_lib.outputs import owned_output_file
from siampolar_lib.paths import davis_train_sample_root
from siampolar_lib.splits import VALIDATION_FOLD_SEQUENCES
from siampolar_lib.tracking.config import TrackerConfig
from siampolar_lib.training.checkpoint import load_model


def parse_setting(text: str) -> dict:
    """'a=1,b=0.5' -> {'a': 1, 'b': 0.5}: values read as YAML scalars and checked as a --tracker-config file's are
    (an unknown name, a wrong type or an out-of-range value is a one-line error)."""
    pairs = (item.partition("=") for item in text.split(",") if item)
    values = {name: yaml.safe_load(value) for name, _, value in pairs}
    cfg = TrackerConfig.from_dict(values, where=f"--set {text!r}")
    return {k: getattr(cfg, k) for k in values}


def score_all(checkpoints: list[str], settings: list[dict], root: Path, names: list[str]) -> list[dict]:
    """One row per checkpoint x setting (`fold_scores` plus checkpoint and setting), each printed as it is done."""
    out = []
    print(f"{'checkpoint':<28} {'setting':<40} {'J&F':>5} {'J_M':>5} {'F_M':>5} {'boxIoU':>6} {'fps':>5}")
    for ckpt in checkpoints:
        model = load_model(ckpt, device="cpu")
        for st in settings:
            r = fold_scores(model, root, names, replace(TrackerConfig(), **st))
            r.update(checkpoint=str(ckpt), setting=st)
            out.append(r)
            label = ",".join(f"{k}={v}" for k, v in st.items()) or "defaults"
            print(f"{Path(ckpt).name[:28]:<28} {label[:40]:<40} {100 * r['JF_M']:5.1f} {100 * r['J_M']:5.1f} "
                  f"{100 * r['F_M']:5.1f} {r['box_iou']:6.3f} {r['fps']:5.1f}", flush=True)
    return out



@cli_main
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for bad input, with a one-line message)."""
    ap = ArgumentParser(prog="select_model.py", description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", nargs="+", required=True)
    ap.add_argument("--set", action="append", default=[], help="a TrackerConfig variant: name=value[,name=value]")
    ap.add_argument("--davis-root", default=None, help="default: the DAVIS-2016 train sample")
    ap.add_argument("--sequences", default=",".join(VALIDATION_FOLD_SEQUENCES))
    ap.add_argument("--json", default=None, help="also write every row here")
    ap.add_argument("--overwrite", action="store_true", help="replace an earlier --json")
    a = ap.parse_args(argv)
    names = [s for s in a.sequences.split(",") if s]
    check_train_sequences(names)
    root = Path(a.davis_root) if a.davis_root else davis_train_sample_root()
    settings = [{}] + [parse_setting(s) for s in a.set]
    inputs = [("--checkpoints", c) for c in a.checkpoints] + [("--davis-root", root)]
    with owned_output_file(a.json, inputs, a.overwrite, "--json") if a.json else contextlib.nullcontext():
        out = score_all(a.checkpoints, settings, root, names)
        if a.json:
            write_text(a.json, json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
