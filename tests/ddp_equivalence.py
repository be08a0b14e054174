"""Helper of tests/test_ddp.py (run as a script, since Lightning's DDP launcher re-executes it).

    python tests/ddp_equivalence.py single OUT.pt    # one process, batch 16
    python tests/ddp_equivalence.py ddp OUT.pt       # trainer=ddp on CPU (gloo), 2 processes x batch 8

Trains a linear model for a few SGD steps on fixed data through the suite's own trainer configs
and saves the final weights and the per-step global losses from rank 0.
"""
from __future__ import annotations

import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
GLOBAL_BATCH, STEPS = 16, 4


class Linear(pl.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Linear(8, 1)
        self.losses: list[float] = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        # the global-batch loss: mean of the equal-sized per-rank means
        self.losses.append(float(self.all_gather(loss.detach()).mean()))
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def main(mode: str, out: str) -> None:
    from hydra import compose, initialize_config_dir

    g = torch.Generator().manual_seed(1)
    x = torch.randn(GLOBAL_BATCH * STEPS, 8, generator=g)
    y = x @ torch.randn(8, 1, generator=g) + 0.1 * torch.randn(len(x), 1, generator=g)
    overrides = ["trainer=cpu"] if mode == "single" else [
        "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true"]
    with initialize_config_dir(str(REPO / "experiments" / "configs"), version_base="1.3"):
        cfg = compose("run", overrides=overrides)
    devices = 1 if mode == "single" else int(cfg.trainer.devices)
    from hydra.utils import instantiate

    trainer = instantiate(cfg.trainer, max_steps=STEPS, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                          gradient_clip_val=None)
    model = Linear()
    # Under DDP Lightning swaps in a DistributedSampler that shuffles training data (seed 0, epoch 0) and
    # deals rank r the rows perm[r], perm[r + 2], ...; the one-process run draws the same permutation
    # (a one-replica DistributedSampler), so both see the same 16 rows at every step.
    ds = TensorDataset(x, y)
    sampler = DistributedSampler(ds, num_replicas=1, rank=0, shuffle=True, seed=0) if mode == "single" else None
    loader = DataLoader(ds, batch_size=GLOBAL_BATCH // devices, sampler=sampler, shuffle=False)
    trainer.fit(model, loader)
    if trainer.global_rank == 0:
        torch.save({"weights": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                    "losses": model.losses, "world_size": trainer.world_size,
                    "strategy": type(trainer.strategy).__name__}, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
