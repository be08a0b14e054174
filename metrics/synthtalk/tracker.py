"""The trained face network as a landmark backend: frames -> :class:`metrics.landmarks.FaceTrack`.

Same contract as the MediaPipe and DWPose backends (``metrics/landmarks``): points [T,68,2] in
[0, 1] with NaN rows where no face is found, ``found`` [T], ``boxes`` [T,4] in pixels. A frame
counts as a face when the presence head's probability exceeds :data:`PRESENCE_THRESHOLD`.
Frames of another size than the network's are resized to it first (area interpolation);
normalised coordinates do not change with the size, and boxes are given in the input's pixels.

Every SynthTalk scorer of one video (Sync crops, Glo/Exp, FID, FVD, E-FID features) reads the same
network outputs, so the outputs of the last few videos are kept, keyed by a digest of the frames.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import cv2
import numpy as np
import torch

from metrics.landmarks import FaceTrack
from metrics.synthtalk.facenet import FaceNet, to_input

PRESENCE_THRESHOLD = 0.5
REMEMBERED_VIDEOS = 64  # ~80 kB each at 50 frames: a test split of ground truth stays across systems


def face_boxes(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Keypoints [T,68,2] in [0,1] (NaN rows: no face) -> boxes [T,4] xyxy in pixels (NaN rows kept)."""
    p = np.asarray(points, dtype=np.float64) * [width, height]
    with np.errstate(invalid="ignore"):
        return np.concatenate([p.min(1), p.max(1)], axis=1)


class FaceTracker:
    """Callable landmark backend around a trained :class:`FaceNet` (``label`` names it and its cache key)."""

    name = "synthtalk"

    def __init__(self, model: FaceNet, label: str, batch: int = 256):
        self.model, self.label, self.batch = model.eval(), label, batch
        self._memory: OrderedDict[str, dict] = OrderedDict()

    def _resized(self, frames: np.ndarray) -> np.ndarray:
        S = self.model.image_size
        if frames.shape[1:3] == (S, S):
            return frames
        return np.stack([cv2.resize(f, (S, S), interpolation=cv2.INTER_AREA) for f in frames])

    @torch.no_grad()
    def _run(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        frames = self._resized(frames)
        parts = []
        for i in range(0, len(frames), self.batch):
            out = self.model(to_input(torch.from_numpy(np.ascontiguousarray(frames[i : i + self.batch]))))
            parts.append({k: v.double().numpy() for k, v in out.items()})
        res = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        res["presence"] = 1.0 / (1.0 + np.exp(-res["presence"]))
        return res

    def outputs(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """uint8 frames [T,H,W,3] RGB -> points [T,68,2], presence, mouth, blink [T], embedding [T,D]."""
        frames = np.ascontiguousarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected uint8 frames [T,H,W,3] RGB, got {frames.dtype} {frames.shape}")
        key = hashlib.blake2b(frames.data, digest_size=16, person=str(frames.shape).encode()[:16]).hexdigest()
        if key not in self._memory:
            self._memory[key] = self._run(frames)
            while len(self._memory) > REMEMBERED_VIDEOS:
                self._memory.popitem(last=False)
        self._memory.move_to_end(key)
        return self._memory[key]

    def __call__(self, frames: np.ndarray) -> FaceTrack:
        frames = np.asarray(frames)
        out = self.outputs(frames)
        found = out["presence"] > PRESENCE_THRESHOLD
        points = out["points"].copy()
        points[~found] = np.nan
        boxes = face_boxes(points, frames.shape[2], frames.shape[1])
        return FaceTrack(points, found, boxes, backend=self.label, extra={"presence": out["presence"].copy()})


__all__ = ["PRESENCE_THRESHOLD", "FaceTracker", "face_boxes"]
