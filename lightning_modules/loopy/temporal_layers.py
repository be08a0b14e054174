"""Inter-/intra-clip temporal layers and the audio cross-attention of one residual block
(Loopy §3.2 "Inter/Intra-Clip Temporal Layers" and §3.3 "Audio Condition Module").

Order inside each residual block of the denoising U-Net (Figure 2/3):
  inter-clip temporal layer (motion-frame features ++ noisy features along time, type embeddings)
  -> + audio cross-attention (noisy features query the 5-frame audio embedding)
  -> intra-clip temporal layer (noisy features only).
``layout="single"`` replaces the pair by one temporal layer over motion ++ noisy tokens, as previous
methods do (the "w/o inter-clip temp." and "1 temp. + 20 MF" ablations of Table 3).
"""

from __future__ import annotations

import torch
from diffusers.models.attention_processor import Attention
from torch import nn

from lightning_modules.blocks.attention import TemporalSelfAttention, masked_attention

LAYOUTS = ("dual", "single")


class InterClipTemporalLayer(TemporalSelfAttention):
    """Temporal self-attention over [motion frames ; noisy frames] with learnable type embeddings (§3.2).

    forward(x (B,T,C,H,W), motion (B,M,C,H,W), motion_keep (B,) bool) -> (B,T,C,H,W). ``motion`` comes
    newest first, as the TSM returns it; the layer lays it out in time order, oldest first, so that
    the newest motion frame sits at position M-1, right before the first noisy frame at M."""

    def __init__(self, channels: int, heads: int):
        super().__init__(channels, heads, num_types=2)

    def forward(self, x: torch.Tensor, prefix: torch.Tensor | None = None,
                prefix_keep: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(x, None if prefix is None else prefix.flip(1), prefix_keep)


class IntraClipTemporalLayer(TemporalSelfAttention):
    """Temporal self-attention over the noisy frames of the current clip only (§3.2).

    forward(x (B,T,C,H,W)) -> (B,T,C,H,W)."""

    def __init__(self, channels: int, heads: int):
        super().__init__(channels, heads, num_types=0)


class AudioCrossAttention(nn.Module):
    """Cross-attention with noisy features as queries and the frame's audio embedding c_audio as keys
    and values (§3.3); the result is added to the features (zero-initialised output).

    forward(x (B,T,C,H,W), audio (B,T,L,D)) -> (B,T,C,H,W), L = 5-frame window tokens."""

    def __init__(self, channels: int, audio_dim: int, heads: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.attn = Attention(query_dim=channels, cross_attention_dim=audio_dim, heads=heads,
                              dim_head=channels // heads, bias=False)
        nn.init.zeros_(self.attn.to_out[0].weight)
        nn.init.zeros_(self.attn.to_out[0].bias)

    def forward(self, x: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = x.shape
        q = x.permute(0, 1, 3, 4, 2).reshape(b * t, h * w, c)
        out = masked_attention(self.attn, self.norm(q), audio.reshape(b * t, audio.shape[2], audio.shape[3]))
        return x + out.reshape(b, t, h, w, c).permute(0, 1, 4, 2, 3)


class LoopyTemporalBlock(nn.Module):
    """The temporal and audio layers attached after one residual block of the denoising U-Net.

    Args:
        channels: feature channels C at this resolution.
        audio_dim: width D of the audio embedding tokens.
        heads: attention heads.
        layout: 'dual' (inter- + intra-clip, Loopy) or 'single' (one joint layer, previous methods).
        use_audio: False drops the audio cross-attention.
    """

    def __init__(self, channels: int, audio_dim: int, heads: int, layout: str = "dual", use_audio: bool = True):
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"model.temporal.layout must be one of {LAYOUTS}, got {layout!r}")
        if channels % heads:
            raise ValueError(f"model.temporal.heads ({heads}) must divide the U-Net width {channels}")
        self.layout = layout
        self.inter = InterClipTemporalLayer(channels, heads)
        self.audio = AudioCrossAttention(channels, audio_dim, heads) if use_audio else None
        self.intra = IntraClipTemporalLayer(channels, heads) if layout == "dual" else None

    def forward(self, x: torch.Tensor, motion: torch.Tensor | None, motion_keep: torch.Tensor | None,
                audio: torch.Tensor | None) -> torch.Tensor:
        """:param x: (B,T,C,H,W). :param motion: (B,M,C,H,W) reference-net features of the motion frames,
        newest first.
        :param motion_keep: (B,) bool. :param audio: (B,T,L,D) or None. :returns: (B,T,C,H,W)."""
        x = self.inter(x, motion, motion_keep)
        if self.audio is not None and audio is not None:
            x = self.audio(x, audio)
        if self.intra is not None:
            x = self.intra(x)
        return x
