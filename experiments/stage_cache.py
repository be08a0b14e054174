"""Training stages shared between variants: a stage is trained once per configuration of what it reads.

Loopy's stage 1 is image-level (§3.4: one frame and the reference, no temporal layers, no audio), and
the paper trains its simple baseline "from our pre-trained stage-1 weights" (appendix C, Table 8). So
rows of an ablation that differ only in keys a stage does not read share that stage's weights: every
row of Loopy Table 3 starts stage 2 from the same stage 1, and rows then differ only by what they
ablate. The same holds for MCDM's stages 1-2 under the stage-3 ablations and JoyVASA's first stage.

A model config declares, per stage, the config keys (dotted, from the root) that the stage does not
read: ``model.shared_stages: {stage1: [model.tsm, model.a2l, ...]}``. The key of stage k is every
config value that shapes the weights (as :func:`experiments.run.training_signature`) restricted to
the stages up to k (their names and steps), minus the keys that none of those stages reads. The
entry holds the state of the parameters the stage trained (those with ``requires_grad`` while it
ran) and lives beside the data (``<data cache>/stages/<model>/<stage>-<key>/``), so later runs reuse
it; see :mod:`core.train_once` for locking, atomic writes and damaged entries.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from core.train_once import DamagedCache, key_of

log = logging.getLogger(__name__)

WEIGHTS = "stage_state.pt"


def _drop(tree: dict, dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for p in parents:
        node = node.get(p) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(leaf, None)


def stage_signature(cfg: DictConfig, stage_index: int) -> dict | None:
    """What stage ``stage_index`` (with the stages before it) depends on, or None when the model config
    declares no sharing for one of those stages."""
    shared = cfg.model.get("shared_stages")
    if not shared:
        return None
    stages = [dict(s) for s in OmegaConf.to_container(cfg.model.stages, resolve=True)][: stage_index + 1]
    ignores = None
    for s in stages:
        if s["name"] not in shared:
            return None
        keys = set(shared[s["name"]] or [])
        ignores = keys if ignores is None else ignores & keys
    tree = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("model", "data", "trainer", "scale") if k in cfg}
    tree = copy.deepcopy(tree)
    for k in ("stages", "shared_stages", "inference_keys", "name"):
        tree["model"].pop(k, None)
    # the scale's name is a label: scale=tiny and scale=cpu_long train the same stage 1 (their shapes and
    # steps are in the tree and compared)
    tree.get("scale", {}).pop("name", None)
    for key in sorted(ignores or ()):
        _drop(tree, key)
    return {"seed": int(cfg.seed), "stages": stages, **tree}  # each stage's name, steps, batch size


def entry_folder(root: Path, cfg: DictConfig, stage_index: int) -> Path | None:
    """The cache folder of stage ``stage_index`` of ``cfg``, or None when the stage is not shared."""
    sig = stage_signature(cfg, stage_index)
    if sig is None:
        return None
    name = sig["stages"][-1]["name"]
    return Path(root) / "stages" / str(cfg.model.get("name", "model")) / f"{name}-{key_of(sig)}"


def trained_state(module) -> dict:
    """The parameters a stage trained (``requires_grad``), as a state dict on the CPU."""
    return {n: p.detach().cpu().clone() for n, p in module.named_parameters() if p.requires_grad}


def save(module, folder: Path) -> dict:
    import torch

    state = trained_state(module)
    if not state:
        raise RuntimeError(f"{type(module).__name__}: no parameter requires grad after the stage; nothing to share")
    torch.save(state, folder / WEIGHTS)
    return {"what": "training stage", "parameters": int(sum(v.numel() for v in state.values())),
            "tensors": len(state)}


def check(folder: Path) -> None:
    import torch

    path = Path(folder) / WEIGHTS
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated, foreign or missing: all mean "train it again"
        raise DamagedCache(f"{path}: not a readable state dict ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict) or not state:
        raise DamagedCache(f"{path}: empty or not a state dict")


def load(module, folder: Path) -> int:
    """Load a stage's shared weights; every tensor must exist in ``module`` with the same shape."""
    import torch

    path = Path(folder) / WEIGHTS
    state = torch.load(path, map_location="cpu", weights_only=True)
    own = module.state_dict()
    bad = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    if bad:
        raise DamagedCache(f"{path}: {len(bad)} tensor(s) do not fit the model (e.g. {bad[:3]}); the entry was "
                           f"made by another architecture")
    module.load_state_dict(state, strict=False)
    return len(state)


__all__ = ["WEIGHTS", "check", "entry_folder", "load", "save", "stage_signature", "trained_state"]
