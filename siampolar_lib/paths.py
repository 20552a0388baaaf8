"""Where things live: the repository, the DAVIS folder, the shipped checkpoint."""
from __future__ import annotations

import os
from pathlib import Path

from siampolar_lib.errors import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
LOCAL_DAVIS = REPO_ROOT / "data" / "DAVIS"  # where `make data` (siampolar_lib.data.download) puts the full DAVIS-2016


def davis_root(explicit: str | os.PathLike | None = None) -> Path:
    """The DAVIS folder: `explicit`, else $SIAMPOLAR_DAVIS_ROOT, else `data/DAVIS` in the repo.

    The path is returned whether or not it exists; use `davis_available` to check.
    """
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get("SIAMPOLAR_DAVIS_ROOT")
    if env:
        return Path(env)
    return LOCAL_DAVIS


def check_davis_env() -> None:
    """UserError when $SIAMPOLAR_DAVIS_ROOT is set but names no DAVIS folder: a tool would otherwise fall back to
    another folder, or to synthetic data, without a word."""
    env = os.environ.get("SIAMPOLAR_DAVIS_ROOT")
    if env and not davis_available(env):
        raise UserError(f"$SIAMPOLAR_DAVIS_ROOT {env}: not a DAVIS folder (no JPEGImages/480p and Annotations/480p "
                        "in it); fix it, or unset it to use data/DAVIS")


def davis_available(root: str | os.PathLike | None = None) -> bool:
    """True when the resolved DAVIS folder holds JPEGImages/480p and Annotations/480p."""
    r = davis_root(root)
    return (r / "JPEGImages" / "480p").is_dir() and (r / "Annotations" / "480p").is_dir()


def davis_train_sample_root() -> Path:
    """The real DAVIS-2016 train sample: $SIAMPOLAR_DAVIS_TRAIN_ROOT, else ../shared/data/davis_train_sample."""
    env = os.environ.get("SIAMPOLAR_DAVIS_TRAIN_ROOT")
    return Path(env) if env else SHARED_DATA / "davis_train_sample"


def davis_train_extra_root() -> Path:
    """The other 24 DAVIS-2016 train sequences (every second frame): $SIAMPOLAR_DAVIS_TRAIN_EXTRA_ROOT, else
    ../shared/data/davis_train_extra."""
    env = os.environ.get("SIAMPOLAR_DAVIS_TRAIN_EXTRA_ROOT")
    return Path(env) if env else SHARED_DATA / "davis_train_extra"


def checkpoints_dir() -> Path:
    """The folder of shipped checkpoints."""
    return REPO_ROOT / "checkpoints"


SHIPPED_CHECKPOINT = "siampolar_lite0.pt"


def default_checkpoint() -> Path:
    """The shipped checkpoint: $SIAMPOLAR_CHECKPOINT, else checkpoints/siampolar_lite0.pt; FileNotFoundError if none."""
    env = os.environ.get("SIAMPOLAR_CHECKPOINT")
    path = Path(env) if env else checkpoints_dir() / SHIPPED_CHECKPOINT
    if not path.is_file():
        source = "$SIAMPOLAR_CHECKPOINT" if env else "the repository"
        raise FileNotFoundError(f"no SiamPolar checkpoint at {path} (from {source}); it ships with the repository "
                                "as checkpoints/siampolar_lite0.pt, or train one (notebooks 05-06) and set "
                                "SIAMPOLAR_CHECKPOINT to its path")
    return path


def shipped_train_log(checkpoint: str | os.PathLike | None = None) -> Path:
    """The training log (CSV: step, loss, cls, ctr, rays, lr, num_pos, pairs_per_s) shipped beside a checkpoint.

    checkpoint: default `default_checkpoint()`; the log is `<stem>_train_log.csv` in the same folder, as
    `data_scripts/export_checkpoint.py` writes it. FileNotFoundError if it is absent.
    """
    ckpt = Path(checkpoint) if checkpoint is not None else default_checkpoint()
    path = ckpt.with_name(ckpt.stem + "_train_log.csv")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no training log beside the checkpoint {ckpt.name}")
    return path
