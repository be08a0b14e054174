"""IQA / VQA: no-reference image and video quality (Loopy Tables 1-2, metric_protocols.md section 8).

Two pluggable backends (config key ``metrics.IQA.backend`` / ``metrics.VQA.backend``):

- ``qalign``: Q-Align (``q-future/one-align``, mPLUG-Owl2, ~8B parameters), the papers' scorer.
  Loaded from a local Hugging Face folder (``weights.qalign`` / ``$SUITE_QALIGN``) with
  ``transformers.AutoModelForCausalLM(trust_remote_code=True)``; ``model.score(images,
  task_="quality", input_=...)`` returns the softmax over (excellent, good, fair, poor, bad) dotted
  with (5, 4, 3, 2, 1): a score in [1, 5]. IQA averages the image score over frames sampled at
  1 fps; VQA scores the same 1-fps frames as one video. A missing folder raises the weights
  table's error naming ``weights.qalign``, ``SUITE_QALIGN`` and ``one-align``.
- ``sharpness`` (default, no weights): ``1 - skimage.measure.blur_effect`` (Crete-Roffet et al.
  2007 no-reference blur), in [0, 1], higher is sharper, averaged over the 1-fps frames (IQA) or
  over every frame (VQA). It measures blur only; its numbers are labelled
  ``skimage:blur_effect`` and are never placed beside the papers' Q-Align numbers.
"""
from __future__ import annotations

import numpy as np
import torch
from skimage.color import rgb2gray
from skimage.measure import blur_effect

from core.weights import resolve
from metrics.base import PER_VIDEO, video_frames


def one_fps(frames: np.ndarray, fps: float) -> np.ndarray:
    """Frames sampled at 1 fps (Q-Align's video loader), at least one."""
    step = max(1, int(round(fps or 1.0)))
    return frames[::step]


def sharpness(frame: np.ndarray) -> float:
    """``1 - blur_effect`` of one RGB uint8 frame: 1 = sharp, 0 = fully blurred."""
    return 1.0 - float(blur_effect(rgb2gray(frame)))


class _QAlign:
    """Q-Align from a local folder; ``image(frames)`` and ``video(frames)`` return scores in [1, 5]."""

    def __init__(self, path: str, device: str = "cpu"):
        from PIL import Image
        from transformers import AutoModelForCausalLM

        dtype = torch.float16 if device.startswith("cuda") else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True, torch_dtype=dtype,
                                                          local_files_only=True).to(device).eval()
        self.to_pil = Image.fromarray

    def image(self, frames: np.ndarray) -> float:
        scores = self.model.score([self.to_pil(f) for f in frames], task_="quality", input_="image")
        return float(np.mean([float(s) for s in scores]))

    def video(self, frames: np.ndarray) -> float:
        scores = self.model.score([[self.to_pil(f) for f in frames]], task_="quality", input_="video")
        return float(scores[0])


class _QualityScorer:
    kind = PER_VIDEO
    needs_gt = False
    video_level = False

    def __init__(self, weights_cfg: dict | None = None, device: str = "cpu", standin: bool = True,
                 backend: str = "sharpness"):
        if backend == "qalign":
            path = resolve("qalign", weights_cfg, standin=False)  # Q-Align has no stand-in: say what is missing
            self.qalign, self.backbone = _QAlign(path, device), f"qalign:{path}"
            self.deviations: tuple[str, ...] = ()
            self.protocol = (f"Q-Align (Q-Future/Q-Align@14dfdff) model.score(task_='quality', input_="
                             f"'{'video' if self.video_level else 'image'}'), 1-5 scale, frames at 1 fps"
                             + ("" if self.video_level else ", image scores averaged over the frames"))
        elif backend == "sharpness":
            self.qalign, self.backbone = None, "skimage:blur_effect"
            self.deviations = ("blur measure 1 - skimage blur_effect (0-1), not Q-Align (1-5): another quantity",)
            self.protocol = ("1 - skimage.measure.blur_effect (Crete-Roffet 2007) on grey frames, "
                             + ("every frame" if self.video_level else "frames at 1 fps") + ", averaged")
        else:
            raise ValueError(f"metrics.{self.name}.backend must be 'sharpness' or 'qalign', got {backend!r}")

    def score_video(self, pred, gt=None) -> dict[str, float]:
        frames = video_frames(pred)
        sampled = one_fps(frames, float(getattr(pred, "fps", 25.0)))
        if self.qalign is not None:
            value = self.qalign.video(sampled) if self.video_level else self.qalign.image(sampled)
        else:
            value = float(np.mean([sharpness(f) for f in (frames if self.video_level else sampled)]))
        return {self.name: value}


class IQAScorer(_QualityScorer):
    """Per-video ``IQA``: image quality averaged over 1-fps frames."""

    name = "IQA"
    metric_names = ("IQA",)


class VQAScorer(_QualityScorer):
    """Per-video ``VQA``: video quality (Q-Align video task, or sharpness over every frame)."""

    name = "VQA"
    metric_names = ("VQA",)
    video_level = True


__all__ = ["IQAScorer", "VQAScorer", "one_fps", "sharpness"]
