"""Q-Former aggregator, variant B1 of MCDM Table 5 (Li et al., 2023, BLIP-2): learnable queries
cross-attend jointly to all reference and archived tokens, replacing frame-aligned attention."""

from __future__ import annotations

import math

import torch
from torch import nn


class QFormer(nn.Module):
    """``layers`` blocks of (query self-attention, cross-attention to the tokens, MLP), pre-norm.

    Shapes: ``ref_tokens`` (B, m, d), ``archived_tokens`` (B, a, m, d) -> (B, 1, n, d): one set of n
    tokens for the whole archived clip (no per-frame alignment, which is what B1 ablates).
    """

    def __init__(self, dim: int, num_queries: int = 16, heads: int = 4, layers: int = 1):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(num_queries, dim) / math.sqrt(dim))
        self.blocks = nn.ModuleList(nn.ModuleDict(dict(
            n1=nn.LayerNorm(dim), self_attn=nn.MultiheadAttention(dim, heads, batch_first=True),
            n2=nn.LayerNorm(dim), cross=nn.MultiheadAttention(dim, heads, batch_first=True),
            n3=nn.LayerNorm(dim), mlp=nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))))
            for _ in range(layers))

    def forward(self, ref_tokens: torch.Tensor, archived_tokens: torch.Tensor) -> torch.Tensor:
        b = ref_tokens.shape[0]
        ctx = torch.cat([ref_tokens, archived_tokens.flatten(1, 2)], dim=1)   # (B, m(1+a), d)
        q = self.queries.expand(b, -1, -1)
        for blk in self.blocks:
            h = blk["n1"](q)
            q = q + blk["self_attn"](h, h, h, need_weights=False)[0]
            q = q + blk["cross"](blk["n2"](q), ctx, ctx, need_weights=False)[0]
            q = q + blk["mlp"](blk["n3"](q))
        return q[:, None]
