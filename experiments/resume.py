"""Resumable runs: ``python -m experiments.run ablation=tsm_stride resume=auto`` continues a killed run.

What makes a run resumable (all under its output folder, ``runs/<experiment>/<time>/``):

- ``run_state.json`` (written atomically after every change): the config fingerprint, the MLflow
  parent run id and, per variant, its MLflow run id and status. A resumed call reopens the same
  MLflow runs instead of starting duplicates; finished variants are not run again.
- ``<variant>/seed<k>/checkpoints/<stage>/``: Lightning's ``last.ckpt`` every
  ``checkpoint.every_n_steps`` optimiser steps (:class:`~lightning.pytorch.callbacks.ModelCheckpoint`)
  and ``end.ckpt`` when the stage ends. A resumed stage continues from ``last.ckpt`` through
  ``Trainer.fit(ckpt_path=...)`` (weights, optimiser, step counters, the data loader's position);
  a finished stage is skipped and its ``end.ckpt`` weights loaded.

Bit-exact continuation needs two things Lightning does not keep by itself: the train loader's
position inside the epoch (our data modules hand Lightning a ``torchdata`` ``StatefulDataLoader``,
whose state Lightning stores in the checkpoint), and the global random state that draws diffusion
noise, timesteps and clip crops (:class:`RngState`). With ``num_workers=0`` on one process the
resumed run ends with the same weights as an uninterrupted one (``tests/test_resume.py``). Under DDP
Lightning checkpoints rank 0's random state only, so a resumed multi-process run continues from
the right step and data position but draws other noise than the uninterrupted run would have.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from omegaconf import DictConfig, OmegaConf

from core.atomic import atomic_path
from core.tracking import flatten

log = logging.getLogger(__name__)

STATE_FILE = "run_state.json"
RNG_KEY = "suite_rng_states"
# keys that may differ between a killed call and the call that resumes it
_VOLATILE = ("paths.output_dir", "resume", "callbacks", "build_reports", "reports_builder", "fail_fast")


class ResumeError(ValueError):
    """``resume=`` names something that cannot be resumed; the message says what to do."""


class RngState(pl.Callback):
    """Keeps the global random state (torch, CUDA, numpy, Python) in every checkpoint and puts it
    back when training resumes, so the steps after a restart draw the same noise as before."""

    def __init__(self) -> None:
        self._pending: dict | None = None

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[RNG_KEY] = collect_rng()

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self._pending = checkpoint.get(RNG_KEY)

    def on_train_start(self, trainer, pl_module) -> None:
        # after Lightning has rebuilt the loaders (which draws a sampler seed), before the first step
        if self._pending is not None:
            restore_rng(self._pending)
            self._pending = None


def collect_rng() -> dict:
    """The global random states as tensors, lists and numbers: ``torch.load(weights_only=True)``
    (Lightning's default when it resumes) refuses numpy arrays."""
    import random

    import numpy as np
    import torch

    name, keys, pos, has_gauss, gauss = np.random.get_state()
    states = {"torch": torch.get_rng_state(), "python": random.getstate(),
              "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)]}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: dict) -> None:
    import random

    import numpy as np
    import torch

    torch.set_rng_state(states["torch"])
    random.setstate(tuple(x if not isinstance(x, list) else tuple(x) for x in states["python"]))
    name, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def fingerprint(cfg: DictConfig) -> dict[str, str]:
    """The resolved config as dotted keys, less what may change between a kill and its resume."""
    flat = flatten(OmegaConf.to_container(cfg, resolve=True))
    return {k: v for k, v in flat.items() if not any(k == p or k.startswith(p + ".") for p in _VOLATILE)}


def _digest(flat: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()[:16]


class RunState:
    """``run_state.json`` of one output folder."""

    def __init__(self, out_root: Path, data: dict, writable: bool = True):
        self.path = Path(out_root) / STATE_FILE
        self.data = data
        self.writable = writable  # global rank 0 writes; the other DDP ranks only read

    @classmethod
    def new(cls, out_root: Path, cfg: DictConfig, writable: bool = True) -> RunState:
        flat = fingerprint(cfg)
        state = cls(out_root, {"fingerprint": _digest(flat), "config": flat, "finished": False,
                               "parent_run_id": None, "variants": {}}, writable)
        state.save()
        return state

    @classmethod
    def load(cls, out_root: Path, writable: bool = True) -> RunState:
        path = Path(out_root) / STATE_FILE
        try:
            return cls(out_root, json.loads(path.read_text()), writable)
        except (OSError, json.JSONDecodeError) as e:
            raise ResumeError(f"{path}: cannot read the run state ({e}); this folder was not written by "
                              f"`experiments.run` or was damaged. Start a new run (drop resume=).") from e

    def save(self) -> None:
        if not self.writable:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            Path(tmp).write_text(json.dumps(self.data, indent=1, sort_keys=True))

    def variant(self, run_name: str) -> dict[str, Any]:
        return self.data["variants"].setdefault(run_name, {})

    def update_variant(self, run_name: str, **fields) -> None:
        self.variant(run_name).update(fields)
        self.save()

    def set(self, **fields) -> None:
        self.data.update(fields)
        self.save()


def _differences(a: dict[str, str], b: dict[str, str], limit: int = 5) -> str:
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    shown = ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def open_run_state(cfg: DictConfig, writable: bool = True) -> tuple[Path, RunState, bool]:
    """The output folder and its run state for ``cfg.resume``: (folder, state, resumed?).

    ``resume=null`` starts a new folder; ``resume=auto`` continues the newest unfinished run of this
    experiment under ``paths.log_dir`` whose config matches (a new folder if there is none);
    ``resume=PATH`` continues that folder and refuses one whose config differs. ``writable=False``
    (DDP ranks other than 0) reads the state global rank 0 wrote and never writes.
    """
    target = cfg.get("resume")
    if not target:
        out_root = Path(cfg.paths.output_dir)
        return out_root, RunState.new(out_root, cfg, writable), False
    want = fingerprint(cfg)
    if str(target) == "auto":
        base = Path(cfg.paths.log_dir) / cfg.experiment.name
        candidates = sorted(base.glob(f"*/{STATE_FILE}"), key=lambda p: p.stat().st_mtime, reverse=True)
        for path in candidates:
            state = RunState.load(path.parent, writable)
            if state.data.get("finished"):
                continue
            if state.data.get("fingerprint") != _digest(want):
                log.info("resume=auto: not continuing %s, its config differs (%s)", path.parent,
                         _differences(state.data.get("config", {}), want))
                continue
            log.info("resume=auto: continuing %s", path.parent)
            return path.parent, state, True
        log.info("resume=auto: no unfinished run of %r with this config under %s; starting a new one",
                 cfg.experiment.name, base)
        out_root = Path(cfg.paths.output_dir)
        return out_root, RunState.new(out_root, cfg, writable), False
    out_root = Path(str(target))
    if not (out_root / STATE_FILE).exists():
        raise ResumeError(f"resume={target}: no {STATE_FILE} in that folder; give the output folder of an earlier "
                          f"`experiments.run` call (runs/<experiment>/<time>/) or resume=auto")
    state = RunState.load(out_root, writable)
    if state.data.get("fingerprint") != _digest(want):
        raise ResumeError(f"resume={target}: that run had another config ({_differences(state.data.get('config', {}), want)}); "
                          f"resume it with the same overrides, or drop resume= to start a new run")
    return out_root, state, True


def stage_dir(out_dir: Path, stage: str) -> Path:
    return Path(out_dir) / "checkpoints" / stage


def stage_callbacks(out_dir: Path, stage: str, every_n_steps: int) -> list[pl.Callback]:
    """Lightning's checkpointing (``last.ckpt`` every N steps) plus :class:`RngState`."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    ckpt = ModelCheckpoint(dirpath=stage_dir(out_dir, stage), save_last=True, save_top_k=0,
                           every_n_train_steps=max(1, int(every_n_steps)), save_on_train_epoch_end=False)
    return [ckpt, RngState()]
