"""Projection of the concatenated wav2vec2 hidden states to the audio-token width of the
cross-attention (Loopy §3.3 feeds c_audio to cross-attention; like EMO/Hallo we first project the
13 x 768 = 9984-wide multi-layer feature to a token width, so every layer's K/V stay small)."""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules.loopy.audio_encoder import frame_windows


class AudioProjection(nn.Module):
    """(B, N, feature_dim) per-frame features -> (B, N, before+1+after, dim) 5-frame audio embeddings c_audio.

    Args:
        feature_dim: width of the concatenated hidden states.
        dim: token width (``model.audio.dim``).
        before, after: window frames (2 and 2 in the paper).
    """

    def __init__(self, feature_dim: int, dim: int, before: int = 2, after: int = 2):
        super().__init__()
        self.before, self.after = before, after
        self.proj = nn.Sequential(nn.LayerNorm(feature_dim), nn.Linear(feature_dim, dim), nn.SiLU(),
                                  nn.Linear(dim, dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return frame_windows(self.proj(features), self.before, self.after)
