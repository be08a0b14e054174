"""Archived-clip motion prior (MCDM §3.2): frozen VAE latents of the reference and of the a archived
frames, two learnable patchify layers, and an aggregator (frame-aligned attention; Q-Former for B1)."""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules.mcdm.frame_aligned_attention import FrameAlignedAttention
from lightning_modules.mcdm.q_former import QFormer


class Patchify(nn.Module):
    """2-D convolution with kernel = stride = ``patch`` then flatten: (N, C, h, w) -> (N, m, d),
    m = (h/patch)(w/patch). Paper: 64x64 SD latents, m = 256 -> patch 4."""

    def __init__(self, in_channels: int, dim: int, patch: int):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        if latents.shape[-1] % self.patch or latents.shape[-2] % self.patch:
            raise ValueError(f"latent size {tuple(latents.shape[-2:])} is not divisible by "
                             f"model.archived.patch_size={self.patch}")
        return self.proj(latents).flatten(2).transpose(1, 2)


class ArchivedClipMotionPrior(nn.Module):
    """F_ac from the reference latent f_x and the archived latents f_a (VAE encoding happens in the
    frozen codec outside this module, so it is shared with the denoiser).

    Args:
        latent_channels: VAE latent channels (4 for SD 1.5).
        dim: token width d.
        patch_size: patchify kernel/stride.
        num_queries: n (paper: 16).
        aggregator: 'frame_aligned' (the paper) or 'qformer' (Table 5, B1).

    Shapes: ``ref_latent`` (B, C, h, w), ``archived_latents`` (B, a, C, h, w) ->
    F_ac (B, a, n, d) for frame-aligned attention, (B, 1, n, d) for the Q-Former.
    """

    def __init__(self, latent_channels: int, dim: int, patch_size: int = 4, num_queries: int = 16,
                 aggregator: str = "frame_aligned", qformer_heads: int = 4):
        super().__init__()
        if aggregator not in ("frame_aligned", "qformer"):
            raise ValueError(f"model.archived.aggregator must be 'frame_aligned' or 'qformer', got {aggregator!r}")
        self.patchify_ref = Patchify(latent_channels, dim, patch_size)
        self.patchify_archived = Patchify(latent_channels, dim, patch_size)
        self.aggregate = (FrameAlignedAttention(dim, num_queries) if aggregator == "frame_aligned"
                          else QFormer(dim, num_queries, heads=qformer_heads))

    def forward(self, ref_latent: torch.Tensor, archived_latents: torch.Tensor) -> torch.Tensor:
        b, a = archived_latents.shape[:2]
        f_x = self.patchify_ref(ref_latent)                                        # (B, m, d)
        f_a = self.patchify_archived(archived_latents.flatten(0, 1)).unflatten(0, (b, a))  # (B, a, m, d)
        return self.aggregate(f_x, f_a)
