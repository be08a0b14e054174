"""Frame-aligned attention of the archived-clip motion prior (MCDM §3.2, Eqs. 1-2)."""

from __future__ import annotations

import math

import torch
from torch import nn


class FrameAlignedAttention(nn.Module):
    """n learnable queries attend, separately for every archived frame i, to keys from the reference
    tokens and values from frame i's tokens: ``K_i = F_x W_K``, ``V_i = F_a^i W_V`` (Eq. 1),
    ``softmax(Q K_i^T / sqrt(d)) V_i`` (Eq. 2). Frame-wise, so the cost is linear in a.

    Args:
        dim: token width d.
        num_queries: n.

    Shapes: ``ref_tokens`` F_x (B, m, d), ``archived_tokens`` F_a (B, a, m, d) -> F_ac (B, a, n, d).
    Because the keys come from the reference only, the attention weights are the same for all frames;
    what differs per frame are the values, so slot i depends on archived frame i alone.
    """

    def __init__(self, dim: int, num_queries: int = 16):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(num_queries, dim) / math.sqrt(dim))
        self.w_k = nn.Linear(dim, dim, bias=False)
        self.w_v = nn.Linear(dim, dim, bias=False)
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, ref_tokens: torch.Tensor, archived_tokens: torch.Tensor) -> torch.Tensor:
        if ref_tokens.shape[-2] != archived_tokens.shape[-2]:
            raise ValueError(f"reference has {ref_tokens.shape[-2]} tokens but archived frames have "
                             f"{archived_tokens.shape[-2]}; both patchify layers must give m tokens")
        k = self.w_k(ref_tokens)                                        # (B, m, d)
        v = self.w_v(archived_tokens)                                   # (B, a, m, d)
        weights = torch.softmax(self.queries @ k.transpose(1, 2) * self.scale, dim=-1)  # (B, n, m)
        return torch.einsum("bnm,bamd->band", weights, v)               # (B, a, n, d)
