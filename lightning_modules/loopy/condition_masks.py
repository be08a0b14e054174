"""Condition masks and dropout, Loopy §3.4 (training only).

* audio features c_audio and the motion latents are masked to zeros with 10 % probability each;
* the reference c_ref is dropped with 15 %: the denoising U-Net then does not concatenate reference
  features in spatial attention, and the motion frames are dropped with it (no motion tokens in the
  temporal attention);
* otherwise the motion frames are masked to all-zero latents with an independent 40 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class ConditionKeep:
    """Per-sample booleans (B,), True = the condition is kept."""

    audio: torch.Tensor
    motion_latents: torch.Tensor
    reference: torch.Tensor
    motion_frames: torch.Tensor       # False: motion latents zeroed (the 40 % mask)

    @staticmethod
    def all(batch: int, device=None) -> ConditionKeep:
        ones = torch.ones(batch, dtype=torch.bool, device=device)
        return ConditionKeep(ones, ones.clone(), ones.clone(), ones.clone())


class ConditionMasks(nn.Module):
    """Draws the §3.4 masks for a batch.

    Args:
        audio_drop: P(c_audio zeroed), 0.1.
        motion_latents_drop: P(A2L motion latents zeroed), 0.1.
        reference_drop: P(c_ref dropped, motion frames dropped with it), 0.15.
        motion_frames_mask: P(motion frames zeroed | reference kept), 0.4.
    """

    def __init__(self, audio_drop: float = 0.1, motion_latents_drop: float = 0.1, reference_drop: float = 0.15,
                 motion_frames_mask: float = 0.4):
        super().__init__()
        for key, p in (("audio_drop", audio_drop), ("motion_latents_drop", motion_latents_drop),
                       ("reference_drop", reference_drop), ("motion_frames_mask", motion_frames_mask)):
            if not 0.0 <= float(p) <= 1.0:
                raise ValueError(f"model.masks.{key} must be a probability in [0, 1], got {p!r}")
        self.p_audio, self.p_latents = float(audio_drop), float(motion_latents_drop)
        self.p_ref, self.p_mf = float(reference_drop), float(motion_frames_mask)

    def forward(self, batch: int, device=None, generator: torch.Generator | None = None) -> ConditionKeep:
        u = torch.rand(4, batch, generator=generator).to(device)
        reference = u[2] >= self.p_ref
        return ConditionKeep(audio=u[0] >= self.p_audio, motion_latents=u[1] >= self.p_latents,
                             reference=reference, motion_frames=reference & (u[3] >= self.p_mf))
