"""A test-only Lightning callback that SIGKILLs its own process at a given step of a given stage,
the way a cluster's out-of-memory killer or a pre-empted node ends a run: no exception, no cleanup."""

from __future__ import annotations

import os
import signal

import lightning.pytorch as pl


class KillAtStep(pl.Callback):
    def __init__(self, step: int, stage: str):
        self.step, self.stage = int(step), str(stage)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # Lightning runs ModelCheckpoint after user callbacks, so this step's checkpoint is never
        # written: the resumed run has to redo the steps since the previous one
        if getattr(pl_module, "stage", None) == self.stage and trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)
