"""Model sizes as frozen dataclasses: one instance per size, passed explicitly (no global config).

Every size produces two output levels, strides 8 and 16, on a 255 search crop:
  stride 8:  search features 32x32, template features 16x16 cropped to the central 8x8 -> 25x25 map
  stride 16: search features 16x16, template features  8x8 cropped to the central 4x4 -> 13x13 map
The central crop keeps the correlation map centred on the search crop, as `grid.location_grid` assumes
(the offset between search and template feature grids is (255 - 127) / 2 = 64 px = 8 strides of 8).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

from siampolar_lib.geometry.crops import CONTEXT, SEARCH_SIZE, TEMPLATE_SIZE
from siampolar_lib.geometry.polar import NUM_RAYS


@dataclass(frozen=True)
class ModelConfig:
    """One SiamPolar model size; every field is plain data so it can be printed and compared."""

    name: str  # config name: lite0, quick, r18, r50, r101
    backbone: str  # "lite0" (timm tf_efficientnet_lite0) or "resnet18" / "resnet50" / "resnet101"
    strides: tuple[int, ...] = (8, 16)  # output levels, backbone strides (the neck's top-down may use 32)
    backbone_strides: tuple[int, ...] = (8, 16, 32)  # backbone levels fed to the FPN neck (lateral 1x1 each)
    template_crop: tuple[int, ...] = (8, 4)  # per output level: side of the central template-feature crop
    channels: int = 128  # neck / head width
    tower_convs: int = 2  # 3x3 conv + GroupNorm + ReLU per head tower
    gn_groups: int = 32  # GroupNorm groups in the head towers
    num_rays: int = NUM_RAYS  # rays per location, angles 2 pi k / num_rays
    template_size: int = TEMPLATE_SIZE  # template crop side, pixels
    search_size: int = SEARCH_SIZE  # search crop side, pixels
    context: float = CONTEXT  # context amount around a target box: p = context * (w + h), crop side sqrt((w+p)(h+p))
    # per output level (lo, hi]: a location is a positive on this level when the object's max
    # (l, t, r, b) extent from it, in search-crop pixels, lies in the range (FCOS-style assignment)
    regress_ranges: tuple[tuple[float, float], ...] = ((-1.0, 48.0), (48.0, math.inf))
    centre_radius: float = 1.5  # centre-sampling radius around the mass centre, in strides
    ray_bias: float = math.log(32.0)  # initial ray-conv bias: rays start near 32 px, an object's half-size
    prior_prob: float = 0.01  # initial object probability (cls bias -log(99))
    frozen_stages: int = 2  # backbone stages kept frozen (lite0: stem + blocks 0-1; ResNet: stem + layer1)
    ray_search_features: bool = False  # the ray tower also reads the search crop's features (head.py)
    bn_mode: str = "frozen"  # backbone BatchNorm: "frozen" (eval statistics, no grad) or "train"
    refine_iters: int = 0  # iterations of the object-scale refinement stage (models/refine.py); 0: no stage
    refine_size: int = 128  # refinement crop side, pixels (stride-4 features: refine_size / 4 per side)
    refine_channels: int = 64  # refinement feature width (a multiple of its 16 GroupNorm groups)

    def __post_init__(self):
        """Range-check every field before anything is built (a checkpoint's stored config or a flag may be anything)."""
        check_model_config(self)

    def to_dict(self) -> dict:
        """Every field as plain data (tuples become lists), for checkpoints and logs."""
        return {f.name: to_plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """Inverse of `to_dict`; unknown keys are a ValueError, missing ones take today's defaults."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown ModelConfig field(s) {unknown}")
        return cls(**{k: to_tuples(v) for k, v in d.items()})


# (low, high) per integer field: wide enough for every sensible network, small enough that none needs terabytes
INT_RANGES = {"channels": (8, 1024), "tower_convs": (0, 8), "gn_groups": (1, 1024), "num_rays": (3, 360),
              "template_size": (31, 1023), "search_size": (63, 2047), "frozen_stages": (0, 5),
              "refine_iters": (0, 4), "refine_size": (32, 512), "refine_channels": (16, 512)}


def _bad(field: str, value, rule: str) -> ValueError:
    return ValueError(f"model.{field} = {value!r} (--model.{field.replace('_', '-')}): {rule}")


def check_model_config(c: "ModelConfig") -> None:
    """ValueError naming the first field of `c` that is out of range or inconsistent with the others."""
    from siampolar_lib.models.backbone import BACKBONES  # the registry (imports torch only when a config is checked)

    if c.backbone not in BACKBONES:
        raise _bad("backbone", c.backbone, f"must be one of {', '.join(BACKBONES)}")
    for name, (lo, hi) in INT_RANGES.items():
        v = getattr(c, name)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise _bad(name, v, f"must be an integer in [{lo}, {hi}]")
    if c.search_size <= c.template_size:
        raise _bad("search_size", c.search_size, f"must be larger than template_size {c.template_size}")
    if c.channels % c.gn_groups:
        raise _bad("gn_groups", c.gn_groups, f"must divide channels {c.channels}")
    if not c.strides or any(s not in (4, 8, 16, 32) for s in c.strides) or list(c.strides) != sorted(set(c.strides)):
        raise _bad("strides", c.strides, "must be increasing values from 4, 8, 16, 32")
    if any(s not in (4, 8, 16, 32) for s in c.backbone_strides) or not set(c.strides) <= set(c.backbone_strides):
        raise _bad("backbone_strides", c.backbone_strides,
                   f"must be from 4, 8, 16, 32 and hold the strides {c.strides}")
    if len(c.template_crop) != len(c.strides) or any(
            not isinstance(k, int) or not 1 <= k <= -(-c.template_size // s)
            for k, s in zip(c.template_crop, c.strides)):
        raise _bad("template_crop", c.template_crop, "needs one side per stride, each within the template map")
    if len(c.regress_ranges) != len(c.strides) or any(len(r) != 2 or not r[0] < r[1] for r in c.regress_ranges):
        raise _bad("regress_ranges", c.regress_ranges, "needs one (lo, hi) with lo < hi per stride")
    for name, lo, hi in (("context", 0.0, 10.0), ("centre_radius", 0.0, 100.0), ("prior_prob", 0.0, 1.0),
                         ("ray_bias", -10.0, 10.0)):
        v = getattr(c, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo < v < hi:
            raise _bad(name, v, f"must be a number in ({lo}, {hi})")
    for name, k in (("refine_channels", 16), ("refine_size", 32)):
        if getattr(c, name) % k:
            raise _bad(name, getattr(c, name), "must be a multiple of 16 (32 for the size)")
    if c.bn_mode not in ("frozen", "train"):
        raise _bad("bn_mode", c.bn_mode, "must be 'frozen' or 'train'")
    if not isinstance(c.ray_search_features, bool):
        raise _bad("ray_search_features", c.ray_search_features, "must be true or false")


def to_plain(v):
    """Config values -> plain data: tuples become lists, inside dicts and lists too (checkpoint meta, YAML)."""
    if isinstance(v, dict):
        return {k: to_plain(x) for k, x in v.items()}
    return [to_plain(x) for x in v] if isinstance(v, (tuple, list)) else v


def to_tuples(v):
    """Lists (nested) -> tuples, so a config read back from plain data compares equal to the original."""
    return tuple(to_tuples(x) for x in v) if isinstance(v, (tuple, list)) else v


LITE0 = ModelConfig(name="lite0", backbone="lite0", channels=96, tower_convs=2)
# quick: the CI training config; the trunk stops at stride 16 and blocks up to stride 8 stay frozen.
QUICK = ModelConfig(name="quick", backbone="lite0", backbone_strides=(8, 16), channels=64, tower_convs=1,
                    gn_groups=16, frozen_stages=3)
R18 = ModelConfig(name="r18", backbone="resnet18", channels=256, tower_convs=4)
R50 = ModelConfig(name="r50", backbone="resnet50", channels=256, tower_convs=4)
R101 = ModelConfig(name="r101", backbone="resnet101", channels=256, tower_convs=4)

CONFIGS: dict[str, ModelConfig] = {c.name: c for c in (LITE0, QUICK, R18, R50, R101)}


def get_config(name: str | dict | ModelConfig) -> ModelConfig:
    """The ModelConfig called `name` (lite0, quick, r18, r50, r101), or one built from a `to_dict` dict.

    A bare name is today's preset of that name (how checkpoints that stored only the name load).
    Unknown names are a clear error.
    """
    if isinstance(name, ModelConfig):
        return name
    if isinstance(name, dict):
        return ModelConfig.from_dict(name)
    if name not in CONFIGS:
        raise ValueError(f"unknown model config {name!r}: choose one of {sorted(CONFIGS)}")
    return CONFIGS[name]
