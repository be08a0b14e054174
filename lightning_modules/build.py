"""Build a LightningModule from its model config (``experiments/configs/model/*.yaml``).

A model config also carries keys the runner reads (``name``, ``stages``, ``inference_keys``,
``shared_stages``); they
are left out unless the module's constructor takes them. The runner, the sampler, the benchmarks and
the tests all build modules through :func:`build_model`, so no caller filters those keys by hand.
"""

from __future__ import annotations

import inspect

import hydra
from omegaconf import DictConfig, OmegaConf

# Keys of a model config that belong to the runner, not to the module's constructor.
RUNNER_MODEL_KEYS = ("name", "stages", "inference_keys", "shared_stages")


def build_model(model_cfg: DictConfig | dict):
    """Instantiate the LightningModule, leaving out runner-owned keys it does not accept."""
    target = hydra.utils.get_class(model_cfg["_target_"])
    params = inspect.signature(target.__init__).parameters
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    # resolve against the whole config first: interpolations like ${scale.image_size} point outside model
    cfg = OmegaConf.to_container(model_cfg, resolve=True) if OmegaConf.is_config(model_cfg) else dict(model_cfg)
    for k in RUNNER_MODEL_KEYS:
        if k in cfg and not (k in params or takes_kwargs):
            del cfg[k]
    required = [n for n, p in params.items() if n != "self" and p.default is inspect.Parameter.empty
                and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
    missing = [n for n in required if n not in cfg]
    if missing:  # every setting has one home, the model's YAML: a key it lacks is named, never defaulted
        keys = ", ".join("model." + n for n in missing)
        raise ValueError(f"model: missing key(s) {keys} of {target.__name__}; "
                         f"experiments/configs/model/*.yaml has every key with the paper's value")
    return hydra.utils.instantiate(cfg, _convert_="all")
