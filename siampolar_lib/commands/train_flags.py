"""The training command's flags, generated from TrainConfig: `--iters`, `--model.num-rays`, `--optim.lr`, ...

One flag per scalar field of TrainConfig and its sections (dest = the dotted key); only given flags override the
preset."""
from __future__ import annotations

import argparse
import typing
from dataclasses import fields, replace

from siampolar_lib.models.config import CONFIGS, get_config
from siampolar_lib.training.config import (
    CHOICES,
    FLAT_SECTIONS,
    HELP,
    SECTIONS,
    TrainConfig,
    apply_overrides,
    load_preset,
)


def _scalar_type(tp):
    """(python type, optional) for a scalar field annotation; None for tuples and other non-CLI types."""
    args = typing.get_args(tp)
    optional = type(None) in args
    if optional:
        rest = [a for a in args if a is not type(None)]
        tp = rest[0] if len(rest) == 1 else None
    return (tp, optional) if tp in (int, float, str, bool) else (None, optional)


def _flag(key: str) -> str:
    """'optim.warmup' -> '--warmup', 'model.num_rays' -> '--model.num-rays', 'stop_at' -> '--stop-at'."""
    section, _, name = key.rpartition(".")
    prefix = "" if not section or section in FLAT_SECTIONS else section + "."
    return "--" + prefix + name.replace("_", "-")


def _optional(tp):
    """An argparse type that also reads 'none' as None."""
    return lambda text: None if text.lower() == "none" else tp(text)


def _add_field(p: argparse.ArgumentParser, key: str, tp, optional: bool, default) -> None:
    """One generated flag (dest = the dotted key), defaulting to SUPPRESS so only given flags override."""
    kw = dict(dest=key, default=argparse.SUPPRESS, help=HELP.get(key, f"(default {default!r})"))
    if key in CHOICES:
        kw["choices"] = CHOICES[key]
    if tp is bool:
        p.add_argument(_flag(key), action=argparse.BooleanOptionalAction, **kw)
    else:
        p.add_argument(_flag(key), type=_optional(tp) if optional else tp, **kw)


def add_flags(p: argparse.ArgumentParser) -> None:
    """Add one flag per scalar field of TrainConfig and its sections, plus --preset and the aliases."""
    p.add_argument("--preset", default=None, metavar="YAML",
                   help="a config preset: configs/NAME.yaml or a path (flags given after it override it)")
    p.add_argument("--model", "--config", dest="model", default=argparse.SUPPRESS, choices=sorted(CONFIGS),
                   help="model preset name (alias --config)")
    p.add_argument("--data", dest="data", action="append", default=argparse.SUPPRESS, help=HELP["data"])
    p.add_argument("--exclude-sequences", dest="exclude_sequences", default=argparse.SUPPRESS,
                   help=HELP["exclude_sequences"])
    p.add_argument("--frozen-stages", dest="model.frozen_stages", type=int, default=argparse.SUPPRESS,
                   metavar="K", help=HELP["model.frozen_stages"])
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        if f.name in SECTIONS:
            sub = typing.get_type_hints(SECTIONS[f.name])
            for g in fields(SECTIONS[f.name]):
                tp, optional = _scalar_type(sub[g.name])
                key = f"{f.name}.{g.name}"
                if tp is not None and key != "model.frozen_stages" and key != "model.name":
                    _add_field(p, key, tp, optional, getattr(getattr(TrainConfig(), f.name), g.name))
        elif f.name not in ("data", "exclude_sequences"):
            tp, optional = _scalar_type(hints[f.name])
            if tp is not None:
                _add_field(p, f.name, tp, optional, getattr(TrainConfig(), f.name))


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    """Preset file, then --model, then every other given flag, applied over TrainConfig()."""
    cfg = load_preset(a.preset) if a.preset else TrainConfig()
    given = {k: v for k, v in vars(a).items() if k != "preset"}
    if "model" in given:
        cfg = replace(cfg, model=get_config(given.pop("model")))
    if "exclude_sequences" in given:
        given["exclude_sequences"] = tuple(s for s in given["exclude_sequences"].split(",") if s)
    nested: dict = {}
    for key, value in given.items():
        section, _, name = key.rpartition(".")
        if section:
            nested.setdefault(section, {})[name] = value
        else:
            nested[key] = value
    return apply_overrides(cfg, nested, where="command line")

