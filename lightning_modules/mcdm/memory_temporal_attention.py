"""Memory-efficient temporal attention, MTA (MCDM §3.4, Eqs. 4-5, Figure 2).

A motion memory M, updated per frame by ``M_f = alpha M_{f-1} + (1 - alpha) F_ac^ref`` (Eq. 5) and
initialised with F_ac^ref at the first frame (Eq. 4), is concatenated along time with the
present-clip features F_pc^ref; Performer fast attention (FAVOR+) runs along time and the lower
half (the present-clip positions) is the output F_m. Only the last memory state is carried from one
clip to the next, so generation runs in constant memory whatever the video length.
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules.blocks.attention import sinusoidal_positions
from lightning_modules.blocks.performer import PerformerAttention


def memory_weights(frames: int, alpha: float, carried: bool, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed form of the recurrence over one clip: ``M = W @ F + c * M_0``.

    With a carried memory M_0: ``M_f = alpha^f M_0 + sum_{j<=f} (1-alpha) alpha^(f-j) F_j``.
    Without (first clip, Eq. 4): M_1 = F_1, then Eq. 5.
    :returns: W (T, T) lower triangular, c (T,)."""
    f = torch.arange(frames, device=device, dtype=torch.float64)
    power = (f[:, None] - f[None, :]).clamp(min=0)
    w = torch.tril((1 - alpha) * alpha ** power)
    c = alpha ** (f + 1)
    if not carried:  # M_1 = F_1 replaces alpha M_0 + (1-alpha) F_1: F_1 gets the weight alpha^(f-1)
        w[:, 0] = alpha ** f
        c = torch.zeros_like(c)
    return w.float(), c.float()


def update_memory(features: torch.Tensor, alpha: float, memory: torch.Tensor | None = None) -> torch.Tensor:
    """Eqs. 4-5 for every frame of a clip at once.

    :param features: F_ac^ref (N, T, ...) per frame. :param memory: M_0 (N, ...) carried from the
    previous clip, or None at the start of a video. :returns: (N, T, ...) memories M_1..M_T."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"model.mta.alpha must lie in [0, 1], got {alpha}")
    t = features.shape[1]
    w, c = memory_weights(t, alpha, memory is not None, features.device)
    flat = features.reshape(features.shape[0], t, -1)
    out = torch.einsum("ft,ntd->nfd", w.to(flat.dtype), flat)
    if memory is not None:
        out = out + c.to(flat.dtype)[None, :, None] * memory.reshape(memory.shape[0], 1, -1)
    return out.view(features.shape)


class MemoryEfficientTemporalAttention(nn.Module):
    """MTA along time for every spatial position of a U-Net feature map.

    Args:
        channels: C. heads: attention heads. nb_features: FAVOR+ random features per head.
        alpha: Eq. 5's weight (paper 0.1). fast: False uses exact softmax attention (for checks).

    ``forward(f_ac_ref, f_pc_ref, memory)``: both (N, T, L, C) with N videos, T frames, L = H*W
    positions; memory (N, L, C) or None. Returns (F_m (N, T, L, C), new memory M_T (N, L, C)).
    The output projection starts at zero so an untrained MTA leaves the U-Net unchanged.
    """

    def __init__(self, channels: int, heads: int = 8, nb_features: int = 64, alpha: float = 0.1):
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"model.mta.alpha must lie in [0, 1], got {alpha}")
        self.alpha = alpha
        self.norm = nn.LayerNorm(channels)
        self.attn = PerformerAttention(channels, heads, nb_features)
        nn.init.zeros_(self.attn.to_out.weight)
        nn.init.zeros_(self.attn.to_out.bias)

    def forward(self, f_ac_ref: torch.Tensor, f_pc_ref: torch.Tensor, memory: torch.Tensor | None = None):
        n, t, l, c = f_pc_ref.shape
        mem = update_memory(f_ac_ref, self.alpha, memory)                       # (N, T, L, C)
        seq = torch.cat([mem, f_pc_ref], dim=1)                                 # F_m^cat (N, 2T, L, C)
        seq = seq + sinusoidal_positions(2 * t, c, seq.device).to(seq.dtype)[None, :, None]
        seq = seq.permute(0, 2, 1, 3).reshape(n * l, 2 * t, c)                  # attention along time
        out = self.attn(self.norm(seq)).view(n, l, 2 * t, c).permute(0, 2, 1, 3)
        return out[:, t:], mem[:, -1]                                           # lower half; M_T


class StandardTemporalAttention(nn.Module):
    """The 'w/o MTA' ablation (MCDM §4.3, following AnimateAnyone): softmax self-attention along
    time over F_ac^ref + F_pc^ref, no memory. Same call signature as the MTA; returns memory None."""

    def __init__(self, channels: int, heads: int = 8):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)
        nn.init.zeros_(self.attn.out_proj.weight)
        nn.init.zeros_(self.attn.out_proj.bias)

    def forward(self, f_ac_ref: torch.Tensor, f_pc_ref: torch.Tensor, memory: torch.Tensor | None = None):
        n, t, l, c = f_pc_ref.shape
        seq = (f_ac_ref + f_pc_ref) + sinusoidal_positions(t, c, f_pc_ref.device).to(f_pc_ref.dtype)[None, :, None]
        seq = self.norm(seq.permute(0, 2, 1, 3).reshape(n * l, t, c))
        out = self.attn(seq, seq, seq, need_weights=False)[0]
        return out.view(n, l, t, c).permute(0, 2, 1, 3), None
