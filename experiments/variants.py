"""Expansion of an ablation or table config into its variants.

An ablation file (``experiments/configs/ablation/<name>.yaml``) sets ``experiment.variants``:
an ordered mapping from the paper's row label to dotted-key overrides of the composed
config. Each variant is the base config with its overrides applied, once per seed.
Every override must name an existing key and give a value of that key's type (``experiments/validate.py``),
so a typo fails before anything trains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf, open_dict

from experiments.validate import type_problem


def _id_regex(ids) -> str:
    """``${id_regex:${data.test_identities}}`` -> ``^(face03|face04)_``: the test videos of those
    identities (test items are named ``<identity>_<clip>``), for ``eval.subsets``."""
    return "^(" + "|".join(re.escape(str(i)) for i in ids) + ")_"


def _seen_regex(ids) -> str:
    """``${seen_regex:${data.test_identities}}`` -> ``^(?!(face03|face04)_)``: every test video *except*
    those identities' (the held-out clips of identities the model was trained on)."""
    return "^(?!" + _id_regex(ids)[1:] + ")"


if not OmegaConf.has_resolver("id_regex"):
    OmegaConf.register_new_resolver("id_regex", _id_regex)
if not OmegaConf.has_resolver("seen_regex"):
    OmegaConf.register_new_resolver("seen_regex", _seen_regex)


class VariantError(ValueError):
    """A variant names a config key that does not exist, gives it a value of the wrong type, or is
    malformed."""


@dataclass
class Variant:
    label: str
    seed: int
    overrides: dict
    cfg: DictConfig

    @property
    def run_name(self) -> str:
        return f"{self.label} [seed {self.seed}]"


def _apply(base: DictConfig, label: str, overrides: dict) -> DictConfig:
    cfg = base.copy()
    OmegaConf.set_struct(cfg, True)
    for key, value in overrides.items():
        parent_key, _, leaf = str(key).rpartition(".")
        parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
        if not isinstance(parent, DictConfig) or leaf not in parent:
            raise VariantError(
                f"variant {label!r} of experiment {base.experiment.name!r} overrides {key!r}, "
                f"which is not a key of the composed config; check the spelling in "
                f"experiments/configs (ablation/ or table/) against `python -m experiments.run --cfg job`"
            )
        expected = OmegaConf.select(parent, leaf, default=None, throw_on_resolution_failure=False)
        problem = type_problem(expected, value)
        if problem:
            raise VariantError(
                f"variant {label!r} of experiment {base.experiment.name!r} sets {key} to {value!r}: "
                f"{problem}; fix the value in experiments/configs (ablation/ or table/)")
        OmegaConf.update(cfg, str(key), value, merge=False)
    with open_dict(cfg):
        cfg.experiment.variant = label
    # resolve interpolations now, so that sub-configs handed to constructors stand on their own
    OmegaConf.resolve(cfg)
    return cfg


def expand(cfg: DictConfig) -> list[Variant]:
    """All (variant, seed) pairs of ``cfg.experiment.variants``, in file order, seeds inner."""
    variants = cfg.experiment.get("variants") or {"default": {}}
    if not isinstance(variants, DictConfig | dict):
        raise VariantError(f"experiment.variants of {cfg.experiment.name!r} must be a mapping label -> overrides")
    seeds = list(cfg.seeds) if cfg.get("seeds") else [int(cfg.seed)]
    base = cfg.copy()
    with open_dict(base):
        base.experiment.variants = None
        if "paths" in base and "output_dir" in base.paths:  # one timestamped folder for all variants
            base.paths.output_dir = str(cfg.paths.output_dir)
    out = []
    for label, overrides in variants.items():
        overrides = OmegaConf.to_container(overrides, resolve=False) if isinstance(overrides, DictConfig) else (overrides or {})
        if not isinstance(overrides, dict):
            raise VariantError(f"variant {label!r}: overrides must be a mapping of dotted keys, got {overrides!r}")
        vcfg = _apply(base, str(label), overrides)
        for seed in seeds:
            scfg = vcfg.copy()
            with open_dict(scfg):
                scfg.seed = int(seed)
            out.append(Variant(str(label), int(seed), overrides, scfg))
    return out
