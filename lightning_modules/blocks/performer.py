"""Performer fast attention, FAVOR+ (Choromanski et al., 2020, "Rethinking attention with performers").

FAVOR+ replaces softmax(QK^T/sqrt(d))V by phi(Q)(phi(K)^T V) with positive orthogonal random
features phi, so time and memory grow linearly in the sequence length instead of quadratically.
The kernel itself comes from the ``performer-pytorch`` package (``FastAttention``); this module adds
the multi-head projections used by MCDM's memory-efficient temporal attention (MCDM §3.4).
"""

from __future__ import annotations

import torch
from performer_pytorch import FastAttention
from torch import nn


class PerformerAttention(nn.Module):
    """Multi-head FAVOR+ self-attention over a sequence.

    Args:
        dim: token width C (divisible by ``heads``).
        heads: attention heads.
        nb_features: random features per head (Performer's m); more features, closer to softmax.

    Input (N, L, C) -> output (N, L, C); cost O(L * nb_features * C / heads) per head.
    """

    def __init__(self, dim: int, heads: int = 8, nb_features: int = 64):
        super().__init__()
        if dim % heads:
            raise ValueError(f"performer width {dim} is not divisible by heads {heads} (model.mta.heads)")
        self.heads, self.dim_head = heads, dim // heads
        self.to_q, self.to_k, self.to_v = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.to_out = nn.Linear(dim, dim)
        # the random projection is drawn with a QR decomposition, which the meta device cannot run;
        # it is a small buffer, so it is always drawn on the CPU (and moves with .to() afterwards)
        with torch.device("cpu"):
            self.fast = FastAttention(self.dim_head, nb_features=nb_features)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], self.heads, self.dim_head).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (self.split(p(x)) for p in (self.to_q, self.to_k, self.to_v))
        out = self.fast(q, k, v)                                   # (N, heads, L, dim_head)
        return self.to_out(out.transpose(1, 2).reshape(x.shape))
