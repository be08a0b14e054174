"""Head, lip and expression encoders of the present-clip motion prior (MCDM §3.3).

The paper leaves the lip and expression encoders to a supplement we do not have; this is our design:
each encoder is a small MLP autoencoder over the 68-point (iBUG) face landmarks the data provides.

* Head pose per frame: centroid (2), scale (RMS distance to the centroid, 1) and roll (cos, sin of the
  outer-eye-corner line, 2). The head encoder stands in for the paper's frozen landmark guider
  (AnimateAnyone's pose guider) and is the optional landmark condition at inference.
* Landmarks in the head frame (centred, divided by scale, de-rotated) are split into the mouth
  (points 48-67, 40 numbers) for the lip encoder and the rest (points 0-47, 96 numbers) for the
  expression encoder, so head motion, lip motion and expression are decoupled by construction.
* Each encoder has a linear decoder; stage 2 trains encoder + decoder with a reconstruction MSE on
  these targets, and the motion tokens are the encoder outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MOUTH = slice(48, 68)
UPPER = slice(0, 48)
EYE_OUTER = (36, 45)  # outer corners of the right and left eye (iBUG 68)


def landmark_targets(landmarks: torch.Tensor) -> dict[str, torch.Tensor]:
    """(B, T, 68, 2) landmarks in [0, 1] -> {'head': (B,T,5), 'lip': (B,T,40), 'expression': (B,T,96)}."""
    if landmarks.shape[-2:] != (68, 2):
        raise ValueError(f"MCDM's motion encoders need 68 (iBUG) landmarks per frame, got landmarks of shape "
                         f"{tuple(landmarks.shape)}; use a data config with 68-point landmarks")
    centre = landmarks.mean(-2, keepdim=True)
    rel = landmarks - centre
    scale = rel.pow(2).sum(-1).mean(-1, keepdim=True).sqrt().clamp(min=1e-4)         # (B, T, 1)
    eye = landmarks[..., EYE_OUTER[1], :] - landmarks[..., EYE_OUTER[0], :]
    roll = F.normalize(eye, dim=-1, eps=1e-6)                                        # (cos, sin)
    cos, sin = roll[..., :1, None], roll[..., 1:, None]
    x, y = rel[..., 0:1], rel[..., 1:2]
    canon = torch.cat([x * cos + y * sin, -x * sin + y * cos], -1) / scale[..., None]  # de-rotate, unit scale
    head = torch.cat([centre.squeeze(-2), scale, roll], -1)
    return {"head": head, "lip": canon[..., MOUTH, :].flatten(-2), "expression": canon[..., UPPER, :].flatten(-2)}


class MotionAutoencoder(nn.Module):
    """MLP encoder (in -> hidden -> dim) with a linear decoder back to the input features.
    (B, T, in_dim) -> tokens (B, T, dim)."""

    def __init__(self, in_dim: int, dim: int, hidden: int = 128):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(in_dim, hidden), nn.SiLU(), nn.Linear(hidden, dim))
        self.decoder = nn.Linear(dim, in_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


class MotionEncoders(nn.Module):
    """Head (landmark guider), lip and expression encoders; ``forward`` gives motion tokens
    (B, T, 3, dim) in the order head, lip, expression, and ``reconstruction_loss`` the stage-2 loss."""

    NAMES = ("head", "lip", "expression")
    IN_DIMS = {"head": 5, "lip": 40, "expression": 96}

    def __init__(self, dim: int, hidden: int = 128):
        super().__init__()
        self.encoders = nn.ModuleDict({k: MotionAutoencoder(self.IN_DIMS[k], dim, hidden) for k in self.NAMES})

    def forward(self, landmarks: torch.Tensor) -> torch.Tensor:
        targets = landmark_targets(landmarks)
        return torch.stack([self.encoders[k](targets[k]) for k in self.NAMES], dim=2)

    def reconstruction_loss(self, landmarks: torch.Tensor) -> torch.Tensor:
        targets = landmark_targets(landmarks)
        return sum(F.mse_loss(self.encoders[k].decoder(self.encoders[k](targets[k])), targets[k]) for k in self.NAMES)
