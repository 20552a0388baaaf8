"""The tracker's settings: `TrackerConfig`, a frozen dataclass with a comment per field, and its YAML form.

    cfg = TrackerConfig.from_yaml("configs/tracker.yaml")   # any subset of the fields; the others keep their defaults
    cfg.to_yaml("runs/my_tracker.yaml")                      # every field, in declaration order

`configs/tracker.yaml` holds the shipped defaults (a test keeps it equal to TrackerConfig()); `siampolar-evaluate`,
`siampolar-track` and `siampolar-demo` read such a file with `--tracker-config FILE`. A file with an unknown key,
a value of the wrong type or one out of range is refused with one line naming the file, the key and the value.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from siampolar_lib.errors import UserError
from siampolar_lib.io import write_text

# field: (accepts, what it must be); mode, the vote settings and empty_score <= lost_score are checked apart.
RANGES = {
    "penalty_k": (lambda v: v >= 0.0, ">= 0"),
    "window_influence": (lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    "size_lr": (lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    "lost_score": (lambda v: 0.0 <= v <= 1.0, "in [0, 1] (a score is cls x ctr)"),
    "empty_score": (lambda v: 0.0 <= v <= 1.0, "in [0, 1] (a score is cls x ctr)"),
    "empty_after": (lambda v: v >= 1, ">= 1 frame"),
    "lost_growth": (lambda v: v >= 1.0, ">= 1"),
    "max_growth": (lambda v: v >= 1.0, ">= 1"),
    "min_size": (lambda v: v > 0.0, "> 0 frame pixels"),
    "state_grid": (lambda v: v >= 0.0, ">= 0 frame pixels (0: off)"),
    "refine_passes": (lambda v: 1 <= v <= 4, "1 to 4 passes"),
}


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker hyper-parameters (tune on DAVIS train sequences only, never on the evaluation fold).

    Crop sizes and context are the model's (`model.config`), not the tracker's. How the defaults were tuned:
    checkpoints/README.md.
    """

    mode: str = "search"  # "search" (crop around the previous state) or "full_frame" (reference behaviour)
    penalty_k: float = 0.04  # scale/aspect change penalty exp(-(r_c s_c - 1) k)
    window_influence: float = 0.3  # weight lambda of the cosine window in the final score
    size_lr: float = 0.6  # size smoothing rate: the size moves by penalty x score x size_lr towards the new one
    lost_score: float = 0.01  # best score (cls x ctr) below this: the target is lost, the state is kept
    empty_score: float = 0.0  # best score below this for `empty_after` frames in a row: an empty mask (0: never)
    empty_after: int = 1  # consecutive very-low-score frames before the mask is emptied
    lost_growth: float = 1.5  # search side multiplied by this for each lost frame...
    max_growth: float = 3.0  # ...up to this factor of the normal side
    min_size: float = 10.0  # smallest target side kept in the state, frame pixels (pysot clamps at 10)
    vote_radius: int = 0  # mask = score-weighted vote of the polygons within this many cells of the best (0: off)
    vote_threshold: float = 0.5  # share of the vote weight a pixel needs to be kept
    ray_scale: float = 1.0  # every predicted ray is multiplied by this before the mask is drawn
    refine: bool = True  # run the network's object-scale refinement stage on the polygon, when it has one
    # passes of the stage: each after the first re-centres the polygon on its area centroid and re-casts its rays
    # from there (the stage was trained on centres near the object's mass centre; the first stage's is a grid cell)
    refine_passes: int = 1
    subcell: bool = False  # move the chosen location to the vertex of a parabola through the final scores (< 1/2 cell)
    state_grid: float = 0.25  # frame px: the state's centre and size rounded to it after each update (0: off)

    def __post_init__(self):
        """Refuse a setting no tracker can use, naming the field and its value."""
        if self.mode not in ("search", "full_frame"):
            raise ValueError(f"TrackerConfig.mode must be 'search' or 'full_frame', got {self.mode!r}")
        if self.vote_radius < 0 or not 0.0 < self.vote_threshold <= 1.0 or self.ray_scale <= 0:
            raise ValueError("vote_radius must be >= 0, vote_threshold in (0, 1] and ray_scale > 0, got "
                             f"{self.vote_radius}, {self.vote_threshold}, {self.ray_scale}")
        for name, (accepts, what) in RANGES.items():
            value = getattr(self, name)
            if not accepts(value):  # NaN fails every rule
                raise ValueError(f"{name} must be {what}, got {value}")
        if self.empty_score > self.lost_score:
            raise ValueError(f"empty_score {self.empty_score} must not exceed lost_score {self.lost_score}")

    @classmethod
    def from_dict(cls, values: dict, where: str = "tracker config") -> "TrackerConfig":
        """TrackerConfig() with `values` applied; UserError naming `where` and the key for an unknown key, a value
        of the wrong type (an int is a float; a bool is neither) or one out of range."""
        if not isinstance(values, dict):
            raise UserError(f"{where}: expected a mapping of TrackerConfig fields, got {type(values).__name__}")
        defaults = cls()
        for key, value in values.items():
            if key not in FIELD_NAMES:
                raise UserError(f"{where}: unknown key {key!r}; TrackerConfig's keys: {', '.join(FIELD_NAMES)}")
            _check_type(where, key, value, type(getattr(defaults, key)))
        # an int given for a float field is kept as a float, so to_yaml writes it back as one
        values = {k: float(v) if isinstance(getattr(defaults, k), float) else v for k, v in values.items()}
        try:
            return dataclasses.replace(defaults, **values)
        except ValueError as err:
            raise UserError(f"{where}: {err}") from None

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "TrackerConfig":
        """A TrackerConfig from a YAML file of `key: value` lines (any subset of the fields); UserError naming the
        file otherwise (missing, not YAML, not a mapping, or a bad key or value)."""
        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text())
        except OSError as err:
            raise UserError(f"{path}: cannot read the tracker config ({err.strerror or err})") from None
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            at = f" (line {mark.line + 1})" if mark is not None else ""
            raise UserError(f"{path}: not valid YAML{at}: {getattr(err, 'problem', None) or err}") from None
        return cls.from_dict({} if values is None else values, where=str(path))

    def to_yaml(self, path: str | os.PathLike | None = None) -> str:
        """Every field as YAML `key: value` lines, in declaration order; written to path when one is given."""
        text = yaml.safe_dump(dataclasses.asdict(self), sort_keys=False)
        if path is not None:
            write_text(path, text)
        return text


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(TrackerConfig))


def _check_type(where: str, key: str, value, kind: type) -> None:
    """UserError unless value fits the field's type: bool, int (not bool), a finite float (int accepted) or str."""
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        what = "a finite number"
    elif kind is int:
        ok, what = isinstance(value, int) and not isinstance(value, bool), "an integer"
    else:
        ok, what = isinstance(value, kind), {bool: "true or false", str: "a string"}.get(kind, kind.__name__)
    if not ok:
        raise UserError(f"{where}: {key}: {value!r} is not {what}")
