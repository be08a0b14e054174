"""A SyncNet trained on SynthTalk, in the layout and protocol of ``syncnet_v2`` (metrics/sync.py).

Network: :class:`metrics.sync.S` at a reduced ``width`` (same module and key names; the official
file is width 1.0), so the cached weights are a plain state dict that loads like ``syncnet_v2.model``.

Inputs, exactly as the evaluation protocol (metric_protocols.md section 1) feeds them:

* lips: 5-frame windows of 224x224 BGR crops, raw 0-255 values. A crop is the box of the 68
  keypoints predicted by the suite's face network (:mod:`metrics.synthtalk.facenet`), standing in
  for syncnet_python's S3FD box, cut with ``run_pipeline.crop_video``'s geometry
  (``metrics.landmarks.face_crop.crop_faces``: half-size s = max(w, h) / 2, centre and s
  median-filtered over 13 frames, padding 110, rows [cy - s, cy + 1.8 s], cols [cx - 1.4 s,
  cx + 1.4 s], resized to 224);
* audio: ``metrics.sync.mfcc_features`` (python_speech_features defaults, 100 columns a second);
  window i pairs frames i..i+4 with MFCC columns 4i..4i+19.

Training (Chung & Zisserman 2016, "Out of time", section 3): the contrastive loss on the Euclidean
distance d of the two 1024-d embeddings, ``y d^2 + (1 - y) max(margin - d, 0)^2``. A positive is a
lip window with its own audio window; negatives are the same clip's audio shifted by
``min_shift``..15 frames (what an offset search must reject) and audio windows of other clips.
The paper does not publish its margin; ours is a config value. Lip windows are augmented with
small shifts and zooms of the crop box, gain/offset changes and blur of the source frames, so that a
generated video (softer, slightly misplaced mouth) is still read.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from metrics.landmarks.face_crop import crop_faces, interpolate_boxes
from metrics.sync import VSHIFT, S, mfcc_features
from metrics.synthtalk.tracker import face_boxes

WINDOW = 5  # frames per lip window (syncnet_python)
MFCC_PER_FRAME = 4  # 100 MFCC columns a second / 25 fps
MFCC_WINDOW = 20  # columns per audio window (0.2 s)


def lip_crops(frames: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """RGB frames [T,H,W,3] and face boxes [T,4] px -> BGR crops uint8 [T,224,224,3] (protocol geometry).

    Frames without a face (NaN box) borrow the box interpolated from their neighbours, as the reference
    tracker does.
    """
    return np.ascontiguousarray(crop_faces(frames, interpolate_boxes(boxes))[..., ::-1])


def window_count(num_frames: int, num_mfcc: int) -> int:
    """Windows the protocol scores: min(T, floor(M / 4)) - 5 (``SyncNetInstance.evaluate``'s lastframe)."""
    return min(num_frames, num_mfcc // MFCC_PER_FRAME) - WINDOW


def contrastive_loss(dist: torch.Tensor, positive: torch.Tensor, margin: float) -> torch.Tensor:
    """SyncNet's loss: mean of d^2 over positives plus mean of max(margin - d, 0)^2 over negatives.

    The two means are weighted equally, so the many cheap audio negatives do not drown the positives.
    """
    pos = dist[positive].pow(2).mean()
    neg = F.relu(margin - dist[~positive]).pow(2).mean()
    return pos + neg


class SyncTrainSet:
    """Training clips (frames, face boxes, MFCC) and the sampler of positive and negative pairs.

    Lip windows are cut per batch from the source frames with a randomly moved and scaled box, after
    a random blur and gain/offset at the source resolution (cheap at 32-64 px, and the blur is what a
    softer generated frame looks like), then resized to 224 px like every evaluation crop.
    """

    def __init__(self, frames: list[np.ndarray], boxes: list[np.ndarray], mfccs: list[np.ndarray]):
        self.frames, self.mfccs = frames, mfccs
        self.boxes = [interpolate_boxes(b) for b in boxes]
        self.counts = np.array([window_count(len(f), m.shape[1]) for f, m in zip(frames, mfccs, strict=True)])
        if (self.counts < 1).any() or len(frames) < 2:
            raise ValueError(
                "SyncNet training needs at least two training clips of 6 frames or more "
                "(raise data.clips_per_identity or data.seconds_per_clip)"
            )

    @classmethod
    def from_clips(cls, clips, points: list[np.ndarray]) -> SyncTrainSet:
        """``clips``: :class:`metrics.synthtalk.data.Clip` list; ``points``: their face-network keypoints."""
        boxes = [
            face_boxes(p, c.frames.shape[2], c.frames.shape[1]) for c, p in zip(clips, points, strict=True)
        ]
        return cls([c.frames for c in clips], boxes, [mfcc_features(c.audio) for c in clips])

    def lips(
        self, clip: int, start: int, rng: np.random.Generator | None = None, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """One window [3,5,224,224] of BGR 0-255 crops (into ``out`` if given); augmented when ``rng`` is."""
        frames = self.frames[clip][start : start + WINDOW]
        boxes = self.boxes[clip][start : start + WINDOW].copy()
        if rng is not None:
            size = (boxes[:, 2:] - boxes[:, :2]).mean(0)
            centre = (boxes[:, 2:] + boxes[:, :2]) / 2 + size * rng.uniform(-0.04, 0.04, 2)
            half = (boxes[:, 2:] - boxes[:, :2]) / 2 * rng.uniform(0.92, 1.08)
            boxes = np.concatenate([centre - half, centre + half], 1)
            sigma = rng.uniform(0.0, 1.0) * frames.shape[1] / 32  # up to 1 px at 32 px
            gain, offset = rng.uniform(0.75, 1.25), rng.uniform(-20, 20)
            frames = np.stack([cv2.GaussianBlur(f, (0, 0), sigma) if sigma > 0.05 else f for f in frames])
            frames = np.clip(frames * gain + offset, 0, 255).astype(np.uint8)
        rgb = torch.from_numpy(crop_faces(frames, boxes)).permute(
            3, 0, 1, 2
        )  # [3,5,224,224]; boxes have no NaN
        out = torch.empty(rgb.shape) if out is None else out
        out.copy_(rgb.flip(0))  # RGB -> BGR and uint8 -> float in one pass
        return out

    def audio(self, clip: int, start: int) -> torch.Tensor:
        col = MFCC_PER_FRAME * start
        return torch.from_numpy(self.mfccs[clip][None, :, col : col + MFCC_WINDOW])

    def batch(
        self, size: int, shift_negatives: int, other_negatives: int, min_shift: int, rng: np.random.Generator
    ):
        """Lips [B,3,5,224,224], audio [B*(1+K),1,13,20], owner index [B*(1+K)], positive mask."""
        n = len(self.frames)
        clips = rng.integers(0, n, size)
        starts = np.array([rng.integers(0, self.counts[c]) for c in clips])
        lips = torch.empty(size, 3, WINDOW, 224, 224)
        for b, (c, s) in enumerate(zip(clips, starts, strict=True)):
            self.lips(c, s, rng, out=lips[b])
        aud, owner, pos = [], [], []
        for b, (c, s) in enumerate(zip(clips, starts, strict=True)):
            aud.append(self.audio(c, s))
            owner.append(b)
            pos.append(True)
            shifts = np.concatenate([np.arange(-VSHIFT, -min_shift + 1), np.arange(min_shift, VSHIFT + 1)])
            shifts = shifts[(s + shifts >= 0) & (s + shifts < self.counts[c])]
            for d in rng.choice(shifts, min(shift_negatives, len(shifts)), replace=False):
                aud.append(self.audio(c, s + d))
                owner.append(b)
                pos.append(False)
            for _ in range(other_negatives):
                o = (c + rng.integers(1, n)) % n
                aud.append(self.audio(o, rng.integers(0, self.counts[o])))
                owner.append(b)
                pos.append(False)
        return lips, torch.cat(aud)[:, None], torch.tensor(owner), torch.tensor(pos)


def train_syncnet(
    data: SyncTrainSet,
    width: float,
    steps: int,
    batch: int,
    lr: float,
    margin: float,
    shift_negatives: int,
    other_negatives: int,
    min_shift: int,
    seed: int,
    progress: bool = True,
) -> S:
    """Train :class:`metrics.sync.S` at ``width`` contrastively; deterministic for a fixed seed.

    Besides shifted and foreign audio, each lip window meets the zero vector as a negative: the
    evaluation pads the audio features with zeros beyond the clip (``calc_pdist``), and a lip
    embedding near the origin would make those padded offsets (+-15) win.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = S(width=width)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=max(steps, 1), pct_start=0.15)
    model.train()
    for _ in tqdm(range(steps), desc="SynthTalk SyncNet", unit="step", disable=not progress):
        lips, aud, owner, pos = data.batch(batch, shift_negatives, other_negatives, min_shift, rng)
        v = model.forward_lip(lips)
        a = model.forward_aud(aud)
        dist = torch.cat([F.pairwise_distance(v[owner], a), F.pairwise_distance(v, torch.zeros_like(v))])
        loss = contrastive_loss(dist, torch.cat([pos, torch.zeros(len(v), dtype=torch.bool)]), margin)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


__all__ = ["SyncTrainSet", "contrastive_loss", "lip_crops", "train_syncnet", "window_count"]
