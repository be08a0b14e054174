"""Head-movement and expression variances of a clip (Loopy appendix B.1, Eqs. 3-5), the two strong
conditions of the audio-to-latents module (§3.3), computed from the clip's face landmarks."""

from __future__ import annotations

import torch


def head_movement_variance(landmarks: torch.Tensor, nose_index: int, scale: float = 1000.0) -> torch.Tensor:
    """Glo, Eq. 3: variance of the nose position over the clip, times ``scale``.

    :param landmarks: (B, T, K, 2) normalised [0, 1] coordinates. :returns: (B,)."""
    nose = landmarks[:, :, nose_index]
    return ((nose - nose.mean(1, keepdim=True)) ** 2).sum(-1).mean(1) * scale


def expression_variance(landmarks: torch.Tensor, nose_index: int, scale: float = 1000.0) -> torch.Tensor:
    """Exp, Eqs. 4-5: e_i = sum over upper-face landmarks o of (x_o - x_n) + (y_o - y_n); the variance
    of its frame-to-frame difference d_e, times ``scale``. Landmarks whose mean position lies below
    the nose (the mouth region, strongly tied to lip motion) are excluded, as the paper prescribes.

    :param landmarks: (B, T, K, 2) with T >= 2. :returns: (B,)."""
    if landmarks.shape[1] < 2:
        raise ValueError("expression variance needs at least 2 frames of landmarks")
    nose = landmarks[:, :, nose_index : nose_index + 1]
    rel = landmarks - nose                                             # (B, T, K, 2)
    upper = (rel[..., 1].mean(1) < 0)                                  # (B, K): above the nose (y grows down)
    upper[:, nose_index] = False
    e = (rel.sum(-1) * upper[:, None].to(rel.dtype)).sum(-1)           # (B, T)
    d = e[:, 1:] - e[:, :-1]
    return ((d - d.mean(1, keepdim=True)) ** 2).mean(1) * scale
