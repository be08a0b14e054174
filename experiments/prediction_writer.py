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

from core.atomic import atomic_path
from core.video_io import read_video, write_video


def to_uint8_frames(video: torch.Tensor) -> np.ndarray:
    """``(T, 3, H, W)`` in [-1, 1] -> uint8 ``(T, H, W, 3)``."""
    v = ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return v.permute(0, 2, 3, 1).cpu().numpy()


class PredictionWriter(BasePredictionWriter):
    def __init__(self, pred_dir: str | Path, gt_dir: str | Path, crf: int = 0):
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


#: frames per test video kept for the sample sheet (reports/sample_sheet.py)
FRAMES_PER_ITEM = 6


def _pick(n: int, k: int) -> np.ndarray:
    return np.linspace(0, max(n - 1, 0), k).round().astype(int)


def save_frames(pred_dir: Path, gt_dir: Path, out: Path, k: int = FRAMES_PER_ITEM) -> Path | None:
    """``k`` evenly spaced frames of every generated video and of its ground truth, as one npz:
    ``ids`` [N], ``pred`` and ``gt`` uint8 [N, k, H, W, 3], ``index`` [N, k] (the frame numbers)."""
    ids, preds, gts, idx = [], [], [], []
    for p in sorted(Path(pred_dir).glob("*.mp4")):
        g = next(iter(sorted(Path(gt_dir).glob(p.stem + ".*"))), None)
        if g is None:
            continue
        pf, gf = read_video(p).frames, read_video(g).frames
        n = min(len(pf), len(gf))
        if n == 0 or pf.shape[1:] != gf.shape[1:]:
            continue
        i = _pick(n, k)
        ids.append(p.stem)
        preds.append(pf[i])
        gts.append(gf[i])
        idx.append(i)
    if not ids:
        return None
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, ids=np.array(ids), pred=np.stack(preds), gt=np.stack(gts), index=np.stack(idx))
    return out


def load_frames(path: Path) -> dict:
    """The arrays :func:`save_frames` wrote."""
    with np.load(path) as z:
        return {k: z[k] for k in z.files}
