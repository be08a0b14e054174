"""A test-only model and data module that exercise the runner without a paper model.

``ToyModule`` learns one per-pixel offset added to the reference frame; its prediction is
the reference repeated for the whole clip. ``ToyDataModule`` renders a few short mp4 test
items (a moving bar with a tone) through the same I/O as the real data.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from core.video_io import read_video, write_video


class ToyModule(pl.LightningModule):
    def __init__(self, image_size: int = 32, lr: float = 1e-2, fail_on_stage: str | None = None,
                 width: int = 4, stages: list | None = None, stage2_lr: float | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.offset = torch.nn.Parameter(torch.zeros(3, image_size, image_size))
        self.stage_names: list[str] = []

    def set_stage(self, name: str) -> None:
        if name == self.hparams.fail_on_stage:
            raise RuntimeError(f"toy failure in stage {name}")
        self.stage_names.append(name)

    def training_step(self, batch, batch_idx):
        pred = batch["reference"] + self.offset
        loss = torch.nn.functional.mse_loss(pred, batch["frames"][:, 0])
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        stage2 = bool(self.stage_names) and self.stage_names[-1] == "stage2" and self.hparams.stage2_lr
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.stage2_lr if stage2 else self.hparams.lr)

    def predict_step(self, batch, batch_idx):
        n = int(batch["num_frames"][0])
        frame = (batch["reference"] + self.offset).clamp(-1, 1)
        return {"video": frame[:, None].expand(-1, n, -1, -1, -1)}


def render_item(path: Path, seed: int, size: int, frames: int, fps: int = 25) -> None:
    rs = np.random.RandomState(seed)
    v = np.full((frames, size, size, 3), 60 + 10 * seed, np.uint8)
    for t in range(frames):
        x = (t * 2 + seed) % size
        v[t, :, x:x + 3] = 220
    audio = (0.2 * np.sin(2 * np.pi * (200 + 50 * seed) * np.arange(frames * 640) / 16000)).astype(np.float32)
    audio += 0.01 * rs.randn(len(audio)).astype(np.float32)
    write_video(path, v, fps, audio)


class _Train(Dataset):
    def __init__(self, size: int):
        self.size = size

    def __len__(self):
        return 64

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        ref = torch.rand(3, self.size, self.size, generator=g) * 2 - 1
        return {"reference": ref, "frames": (ref + 0.1).clamp(-1, 1)[None].repeat(2, 1, 1, 1)}


class _Test(Dataset):
    def __init__(self, paths: list[Path]):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        v = read_video(self.paths[i])
        ref = torch.from_numpy(v.frames[0]).permute(2, 0, 1).float() / 127.5 - 1
        return {"reference": ref, "audio": torch.from_numpy(v.audio[: v.num_frames * 640].copy()),
                "num_frames": torch.tensor(v.num_frames), "fps": float(v.fps),
                "meta": {"video_id": self.paths[i].stem, "gt_path": str(self.paths[i]), "identity": i,
                         "dataset": "toy", "split": "test"}}


def _collate(items):
    out = torch.utils.data.default_collate([{k: v for k, v in it.items() if k != "meta"} for it in items])
    if "meta" in items[0]:
        out["meta"] = [it["meta"] for it in items]
    return out


class ToyDataModule(pl.LightningDataModule):
    def __init__(self, root: str, image_size: int = 32, num_test: int = 3, frames: int = 20, name: str = "toy"):
        super().__init__()
        self.root, self.size, self.num_test, self.frames = Path(root), image_size, num_test, frames

    def prepare_data(self):
        for i in range(self.num_test):
            p = self.root / f"item{i}.mp4"
            if not p.exists():
                render_item(p, i, self.size, self.frames)

    def train_dataloader(self):
        return DataLoader(_Train(self.size), batch_size=8, collate_fn=_collate)

    def predict_dataloader(self):
        self.prepare_data()
        return DataLoader(_Test(sorted(self.root.glob("item*.mp4"))), batch_size=1, collate_fn=_collate)
