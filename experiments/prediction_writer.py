"""A Lightning callback that writes each generated test item as an mp4 as soon as it exists.

Writing per batch (instead of collecting ``trainer.predict``'s return value) keeps memory
flat for long videos. The item's own audio is muxed in, so the file is what a viewer
and the Sync metric see. The ground truth is linked under the same name into ``gt_dir``
so that ``metrics.evaluate`` pairs prediction and ground truth by file name.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from datamodules.video_io import write_video


def to_uint8_frames(video: torch.Tensor) -> np.ndarray:
    """``(T, 3, H, W)`` in [-1, 1] -> uint8 ``(T, H, W, 3)``."""
    v = ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return v.permute(0, 2, 3, 1).cpu().numpy()


class PredictionWriter(BasePredictionWriter):
    def __init__(self, pred_dir: str | Path, gt_dir: str | Path, crf: int = 18):
        super().__init__(write_interval="batch")
        self.pred_dir, self.gt_dir, self.crf = Path(pred_dir), Path(gt_dir), crf
        self.written: list[Path] = []

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        if not isinstance(prediction, dict) or "video" not in prediction:
            raise TypeError(f"{type(pl_module).__name__}.predict_step must return {{'video': (B,T,3,H,W)}}, "
                            f"got {type(prediction).__name__}")
        video = prediction["video"]
        fps = float(_first(batch.get("fps", 25.0)))
        for i, meta in enumerate(batch["meta"]):
            vid = str(meta["video_id"])
            audio = batch["audio"][i].detach().float().cpu().numpy() if "audio" in batch else None
            n = int(_first(batch["num_frames"][i])) if "num_frames" in batch else video.shape[1]
            frames = to_uint8_frames(video[i, :n])
            if audio is not None:  # the audio that drove these frames, trimmed to their length
                audio = audio[: int(round(len(frames) / fps * 16000))]
            path = write_video(self.pred_dir / f"{vid}.mp4", frames, fps, audio, 16000, crf=self.crf)
            self.written.append(path)
            gt = meta.get("gt_path")
            if gt:
                link = self.gt_dir / f"{vid}{Path(gt).suffix}"
                link.parent.mkdir(parents=True, exist_ok=True)
                if link.is_symlink() or link.exists():
                    link.unlink()
                os.symlink(os.path.abspath(gt), link)


def _first(x):
    if isinstance(x, torch.Tensor):
        return x.reshape(-1)[0].item()
    if isinstance(x, (list, tuple)):
        return _first(x[0])
    return x
