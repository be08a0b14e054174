"""What the three paper modules (Loopy, MCDM, JoyVASA) share: stages, the test-item contract of
``predict_step``, parameter counts per paper module and the training-loss log key.

- Stages: each paper trains in named stages (Loopy §3.4, MCDM §3.5, JoyVASA §3.1); the runner calls
  :meth:`set_stage` before each entry of ``model.stages``, and a name the paper does not have is refused.
- ``predict_step``: a batch of test items (``datamodules``' predict contract) becomes
  ``{"video": (B, T, 3, H, W)}``; T is the longest item's ``num_frames`` (the prediction writer cuts each
  item to its own length) and ``fps`` is the batch's (one value for the batch).
- ``train/loss_{stage}``: the log key of every stage's training loss.
- Learning rate: each module builds its stage's optimizer (:meth:`make_optimizer`, the paper's optimizer
  and rate); a stage may decay the rate over its steps (``model.stages[i].lr_schedule``, a diffusers
  schedule name), which the runner hands over as :attr:`lr_schedule` before the stage's ``fit``.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Iterable, Mapping

import lightning as L
import torch
from torch import nn


class PortraitModule(L.LightningModule, metaclass=ABCMeta):
    """Base of the paper modules. Subclasses set ``STAGES`` and implement :meth:`sample_items` and
    :meth:`parameter_groups` (abstract: a subclass without them cannot be built)."""

    STAGES: tuple[str, ...] = ()
    # the current stage's learning-rate schedule, set by the runner: {"name": a diffusers SchedulerType,
    # "warmup_steps": int, "num_training_steps": the stage's max_steps}; None keeps the rate constant
    lr_schedule: dict | None = None

    def check_stages(self, stages: Iterable[Mapping] | None) -> list[str]:
        """The stage names of ``model.stages`` (list of ``{name, max_steps}``), each one of ``STAGES``."""
        names = [dict(s).get("name") for s in stages or []]
        for name in names:
            if name not in self.STAGES:
                raise ValueError(f"model.stages: unknown stage {name!r}; {type(self).__name__} has "
                                 f"{self.STAGES}")
        return names

    def set_stage(self, name: str) -> None:
        if name not in self.STAGES:
            raise ValueError(f"{type(self).__name__}.set_stage: unknown stage {name!r}; model.stages names "
                             f"must be among {self.STAGES}")
        self.stage = name

    # -- optimisation --------------------------------------------------------------------------------
    @abstractmethod
    def make_optimizer(self) -> torch.optim.Optimizer:
        """The current stage's optimizer over the parameters it trains (freezing the others)."""

    def configure_optimizers(self):
        """:meth:`make_optimizer`, with :attr:`lr_schedule` stepped once per optimiser step when set
        (diffusers' ``get_scheduler``; Lightning saves and restores its state with the checkpoint)."""
        optimizer = self.make_optimizer()
        if not self.lr_schedule:
            return optimizer
        from diffusers.optimization import get_scheduler

        s = self.lr_schedule
        scheduler = get_scheduler(s["name"], optimizer, num_warmup_steps=int(s.get("warmup_steps", 0)),
                                  num_training_steps=int(s["num_training_steps"]))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def log_loss(self, loss: torch.Tensor, batch_size: int) -> None:
        self.log(f"train/loss_{self.stage}", loss, prog_bar=True, batch_size=batch_size)

    # -- sampling ------------------------------------------------------------------------------------
    @abstractmethod
    def sample_items(self, batch: dict, num_frames: int, fps: float, batch_idx: int) -> torch.Tensor:
        """Generate the batch's test items: (B, num_frames, 3, H, W) in [-1, 1]."""

    def predict_step(self, batch, batch_idx=0, dataloader_idx=0):
        num_frames = int(batch["num_frames"].reshape(-1).max())  # the writer cuts each item to its own length
        fps = batch.get("fps", self.fps)
        if torch.is_tensor(fps):
            fps = fps.reshape(-1)[0]
        elif isinstance(fps, (list, tuple)):
            fps = fps[0]
        return {"video": self.sample_items(batch, num_frames, float(fps), batch_idx)}

    # -- reporting -----------------------------------------------------------------------------------
    @abstractmethod
    def parameter_groups(self) -> dict[str, list[nn.Module]]:
        """Modules per paper component (frozen ones named ``*_frozen``)."""

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per paper component (works on the meta device)."""
        return {k: sum(p.numel() for m in mods for p in m.parameters())
                for k, mods in self.parameter_groups().items()}

    def on_fit_start(self) -> None:
        if self.logger is not None:  # parameter counts beside the run's config in the tracking store
            self.logger.log_hyperparams({f"params/{k}": v for k, v in self.parameter_counts().items()})
