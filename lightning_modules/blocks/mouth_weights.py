"""Mouth-region weights of the diffusion loss: a CPU-scale training recipe, not a loss of the papers.

At the laboratory's 32 px the mouth covers about 12 of the 64 latent cells and opens by two or three
pixels, so its share of a plain MSE is small and a short stage 2 spends its steps on the rest of the
frame. ``model.stages[i].lip_weight = w`` multiplies the squared error of every latent cell inside the
mouth's box by ``1 + w`` (the box of the clip's iBUG-68 mouth points 48-67, grown by ``margin`` cells).
Off (None) everywhere except the CPU presets that say so; the papers train with the plain loss.
"""

from __future__ import annotations

import torch

#: iBUG-68 mouth points (outer lip 48-59, inner lip 60-67)
IBUG_MOUTH = slice(48, 68)


def mouth_weights(landmarks: torch.Tensor, size: tuple[int, int], weight: float, margin: int = 1,
                  has: torch.Tensor | None = None) -> torch.Tensor:
    """Per-cell loss weights ``1 + weight`` inside the mouth's box, 1 elsewhere.

    :param landmarks: (B, T, 68, 2) iBUG-68 points, x and y in [0, 1] of the frame (the batch contract of
        ``datamodules/clips.py``).
    :param size: (h, w) of the latent grid. :param weight: the extra weight w >= 0.
    :param margin: cells added around the box on every side.
    :param has: (B,) 1 where the clip has keypoints; clips without them get weight 1 everywhere.
    :returns: (B, T, 1, h, w).
    """
    if landmarks.shape[-2:] != (68, 2):
        raise ValueError(f"mouth_weights needs (B, T, 68, 2) iBUG-68 landmarks, got {tuple(landmarks.shape)}")
    h, w = size
    mouth = landmarks[..., IBUG_MOUTH, :].float()
    lo, hi = mouth.amin(-2), mouth.amax(-2)  # (B, T, 2): x, y
    cy = (torch.arange(h, device=landmarks.device) + 0.5) / h  # cell centres in [0, 1]
    cx = (torch.arange(w, device=landmarks.device) + 0.5) / w
    in_x = (cx >= lo[..., :1] - margin / w) & (cx <= hi[..., :1] + margin / w)  # (B, T, w)
    in_y = (cy >= lo[..., 1:] - margin / h) & (cy <= hi[..., 1:] + margin / h)  # (B, T, h)
    box = (in_y[..., :, None] & in_x[..., None, :]).float()
    if has is not None:
        box = box * (has.reshape(-1, *[1] * (box.dim() - 1)) > 0).float()
    return (1.0 + float(weight) * box).unsqueeze(-3)
