"""Typed specs of the model configs: one dataclass per config group, built from the group's mapping.

The one home of every model setting is its YAML file (``experiments/configs/model/<name>.yaml``, with the
paper section of each value beside it); the specs hold no defaults. A key the YAML (or a preset, variant or
command line) does not give is an error naming it, and so is a key no spec knows: nothing falls back to a
value written a second time in the code.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")

CONFIGS = "experiments/configs/model/"


def _coerce(hint: Any, value: Any, key: str) -> Any:
    """``value`` as the type ``hint`` names (int, float, bool, str, list, dict, or ``X | None``)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key) if len(inner) == 1 else value
    base = typing.get_origin(hint) or hint
    try:
        if base is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if base is int:
            if isinstance(value, bool) or float(value) != int(value):
                raise TypeError
            return int(value)
        if base is float:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if base is str:
            if not isinstance(value, str):
                raise TypeError
            return value
        if base in (list, tuple):
            return base(value)
        if base is dict:
            return dict(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key}: expected {getattr(base, '__name__', base)}, got {value!r}") from None
    return value


def spec(cls: type[T], value: Mapping | None, where: str) -> T:
    """Build the dataclass ``cls`` from the config mapping ``value`` of ``model.<where>``.

    Every field is required; a missing or unknown key raises ``ValueError`` naming ``model.<where>.<key>``.
    """
    data = {} if value is None else dict(value)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"model.{where}: unknown key(s) {unknown}; its keys are {names} ({CONFIGS})")
    missing = [n for n in names if n not in data]
    if missing:
        raise ValueError(f"model.{where}: missing key(s) {missing}; give every key of the group (the model's "
                         f"YAML in {CONFIGS} has them all, with the paper's values)")
    hints = typing.get_type_hints(cls)
    return cls(**{k: _coerce(hints[k], v, f"model.{where}.{k}") for k, v in data.items()})


# -- groups the three models share ---------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PretrainedSpec:
    """``model.pretrained``: the SD 1.5 diffusers folder (vae/ + unet/), or null for random weights."""

    path: str | None


@dataclasses.dataclass(frozen=True)
class LatentSpec:
    """``model.latent`` (``lightning_modules/blocks/latent_codec.py``): the stand-in codec's ``factor``, the
    random SD VAE's ``vae`` kwargs (null: the stand-in codec), a trained VAE folder ``vae_path`` and the
    ``autoencoder`` the runner trains into it."""

    factor: int
    vae: dict | None
    vae_path: str | None
    autoencoder: dict | None
