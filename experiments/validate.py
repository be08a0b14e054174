"""Checks of a composed run config, made before anything is created (no MLflow run, no output folder).

- **Value types.** A value given on the command line (``model.tsm.stride=abc``) or by a variant of an
  ablation/table file must have the type of that key's value in the config it overrides: an integer
  for an integer, a number for a float, ``true``/``false`` for a flag, a list for a list, a mapping
  for a mapping; ``null`` is always accepted. Without this check a wrong type failed mid-run with
  ``invalid literal for int()``, after an MLflow parent and a FAILED child had been created.
- **Constructor keys.** Every key of ``data`` and of ``model`` must be a parameter of the class its
  ``_target_`` names (the runner-owned model keys aside, ``lightning_modules/build.py``): a preset key
  that a data set's module does not take (``data.test_seconds`` once was one) is named here instead of
  failing as a ``TypeError`` inside the first variant.

Each failure raises :class:`core.cli.ConfigError` naming the key and what to do.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence

from omegaconf import DictConfig, ListConfig, OmegaConf

from core.cli import ConfigError


def _kind(value) -> str | None:
    """What a value of the same type as ``value`` must be, in words; None when anything goes."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple, ListConfig)):
        return "a list, e.g. [1, 2]"
    if isinstance(value, (dict, DictConfig)):
        return "a mapping, e.g. {a: 1}"
    return None


def _fits(expected, value) -> bool:
    if expected is None or value is None:
        return True
    if isinstance(value, str) and "${" in value:  # an interpolation: checked where it points
        return True
    if isinstance(expected, bool):
        return isinstance(value, bool)
    if isinstance(expected, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(expected, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(expected, str):  # a path or a name: any scalar reads as text
        return isinstance(value, (str, int, float, bool))
    if isinstance(expected, (list, tuple, ListConfig)):
        return isinstance(value, (list, tuple, ListConfig))
    if isinstance(expected, (dict, DictConfig)):
        return isinstance(value, (dict, DictConfig))
    return True


def resolved(cfg: DictConfig, key: str):
    """The value of dotted ``key`` with interpolations resolved (None when absent or unresolvable)."""
    return OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)


def type_problem(expected, value) -> str | None:
    """``"expected an integer (the default is 4)"`` when ``value`` does not fit ``expected``, else None."""
    if _fits(expected, value):
        return None
    shown = OmegaConf.to_container(expected) if isinstance(expected, (DictConfig, ListConfig)) else expected
    return f"expected {_kind(expected)} (the default is {shown!r})"


def check_override_types(cfg: DictConfig, reference: DictConfig, keys: Iterable[str]) -> None:
    """Each command-line ``key=value`` of ``keys`` against the value ``reference`` (the same command without
    its value overrides) has for it."""
    for key in keys:
        if _is_interpolation(cfg, key):
            continue  # ${...}: its target was checked, or is the user's business
        value = resolved(cfg, key)
        expected = resolved(reference, key)
        problem = type_problem(expected, value)
        if problem:
            raise ConfigError(f"{key}={_show(value)}: {problem}; give {key}=<{_kind(expected)}> on the "
                              f"command line (`--cfg job` prints the composed config)")


def _is_interpolation(cfg: DictConfig, key: str) -> bool:
    parent_key, _, leaf = key.rpartition(".")
    parent = cfg
    if parent_key:
        parent = OmegaConf.select(cfg, parent_key, default=None, throw_on_resolution_failure=False)
    return isinstance(parent, DictConfig) and leaf in parent and OmegaConf.is_interpolation(parent, leaf)


def _show(value) -> str:
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value)
    return str(value)


def accepted_parameters(cls: type) -> set[str] | None:
    """Keyword parameters the constructor of ``cls`` takes, following ``**kwargs`` up the class hierarchy
    (``FolderDataModule(root, **kw)`` hands ``kw`` to ``ClipDataModule``); None when ``**kwargs`` reach
    ``object``, i.e. anything is taken."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        params = inspect.signature(init).parameters.values()
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"self"}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
    return None


def constructor_problems(target: str, keys: Sequence[str], ignore: Iterable[str] = ()) -> list[str]:
    """The ``keys`` that the constructor of class ``target`` (a dotted import path) does not take."""
    import hydra

    accepted = accepted_parameters(hydra.utils.get_class(target))
    if accepted is None:
        return []
    skip = {"_target_", "_convert_", "_recursive_", "_partial_", *ignore}
    return [k for k in keys if k not in skip and k not in accepted]


def check_constructor_keys(cfg: DictConfig, group: str, ignore: Iterable[str] = ()) -> None:
    """Every key of ``cfg[group]`` is a parameter of the class its ``_target_`` names."""
    node = cfg.get(group)
    if not isinstance(node, (DictConfig, Mapping)) or "_target_" not in node:
        return
    target = str(node["_target_"])
    bad = constructor_problems(target, list(node.keys()), ignore)
    if bad:
        choice = node.get("name") or "?"
        one = len(bad) == 1
        it = "it" if one else "them"
        keys = ", ".join(f"{group}.{k}" for k in bad)
        what = "a parameter" if one else "parameters"
        raise ConfigError(
            f"{keys}: not {what} of {target} ({group}={choice}); remove {it} from the command line "
            f"or from the preset/ablation that sets {it}, or pick a {group} config that takes {it} "
            f"(`--cfg job` shows where the keys come from)")


def command_line_keys() -> list[str]:
    """The dotted keys this command sets on the command line (``model.tsm.stride=2``): group choices
    (``model=loopy``), additions (``+key=``) and deletions (``~key``) left out."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType

    hc = HydraConfig.get()
    parsed = OverridesParser.create().parse_overrides(list(hc.overrides.task))
    return [o.key_or_group for o in parsed if o.type == OverrideType.CHANGE
            and o.key_or_group not in hc.runtime.choices and not o.key_or_group.startswith("hydra.")]


def check_command_line(cfg: DictConfig) -> None:
    """Each ``key=value`` of the command line has the type of that key's value in the same command
    composed without them (``experiments/validate.py``); nothing is created before this passes."""
    from hydra import compose
    from hydra.core.hydra_config import HydraConfig

    from experiments.validate import check_override_types

    keys = command_line_keys()
    if not keys:
        return
    hc = HydraConfig.get()
    groups = [o for o in hc.overrides.task if o.split("=", 1)[0].lstrip("+~") in hc.runtime.choices]
    search = [o for o in hc.overrides.hydra if o.startswith("hydra.searchpath")]
    reference = compose(config_name=hc.job.config_name, overrides=groups + search)
    check_override_types(cfg, reference, keys)


def lr_schedule_problem(name) -> str | None:
    """Why ``model.stages[i].lr_schedule`` = ``name`` is not a diffusers schedule, or None."""
    from diffusers.optimization import SchedulerType

    known = [t.value for t in SchedulerType]
    return None if name in known else f"unknown schedule {name!r}; use one of {known} (diffusers.optimization)"


#: what one entry of ``model.stages`` may hold (experiments/run.py reads them; the module reads ``name``)
STAGE_KEYS = ("name", "max_steps", "batch_size", "lr_schedule", "warmup_steps", "snr_gamma", "lip_weight")
#: the stage keys that change the training loss, what the model needs to read them (an attribute of that name,
#: which the runner sets for the stage) and what they are called in messages
LOSS_KEYS = {"snr_gamma": "Min-SNR loss weighting", "lip_weight": "mouth-region loss weight"}


def stage_problem(stage) -> str | None:
    """Why one entry of ``model.stages`` would not run as written, or None: a key the runner does not read
    (a misspelled ``lr_shedule`` would otherwise be ignored), a batch size or step count that is not a
    positive integer, a Min-SNR ``snr_gamma`` that is not a positive number, a ``lip_weight`` that is not a
    number >= 0, an unknown learning-rate schedule."""
    unknown = sorted(set(stage) - set(STAGE_KEYS))
    if unknown:
        return f"{unknown[0]}: not a stage key; a stage takes {list(STAGE_KEYS)}"
    for key in ("max_steps", "batch_size", "warmup_steps"):
        value = stage.get(key)
        low = 0 if key == "warmup_steps" else 1
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            return f"{key}: expected an integer >= {low}, got {value!r}"
    for key, strict, what in (("snr_gamma", True, "Min-SNR-gamma, e.g. 5"),
                              ("lip_weight", False, "the mouth region's extra loss weight, e.g. 3")):
        value = stage.get(key)
        number = not isinstance(value, bool) and isinstance(value, (int, float))
        if value is not None and not (number and (value > 0 if strict else value >= 0)):
            return f"{key}: expected a number {'>' if strict else '>='} 0 ({what}) or null, got {value!r}"
    name = stage.get("lr_schedule")
    problem = None if name is None else lr_schedule_problem(name)
    return f"lr_schedule: {problem}" if problem else None


def loss_key_problem(model_type: type, key: str) -> str | None:
    """Why the loss key ``model.stages[i].<key>`` (one of :data:`LOSS_KEYS`) cannot apply to a model of this
    class, or None: the model must read it (an attribute of that name, which the runner sets for the stage)."""
    if hasattr(model_type, key):
        return None
    return f"{model_type.__name__} has no {LOSS_KEYS[key]} (LoopyModule has); remove the key"


def check_run_config(cfg: DictConfig) -> None:
    """The constructor-key checks of one variant's config (``data`` and ``model``), and each stage's keys,
    sizes, learning-rate schedule name and loss keys (which the model must read), so a misspelled one
    stops the run before its first stage trains."""
    from lightning_modules.build import RUNNER_MODEL_KEYS

    check_constructor_keys(cfg, "data")
    check_constructor_keys(cfg, "model", ignore=RUNNER_MODEL_KEYS)
    model = cfg.get("model") or {}
    for i, stage in enumerate(model.get("stages") or []):
        problem = stage_problem(stage)
        if problem:
            raise ConfigError(f"model.stages[{i}].{problem}")
        for key in LOSS_KEYS:
            if stage.get(key) is not None and "_target_" in model:
                from hydra.utils import get_class

                if problem := loss_key_problem(get_class(str(model["_target_"])), key):
                    raise ConfigError(f"model.stages[{i}].{key}: {problem}")
