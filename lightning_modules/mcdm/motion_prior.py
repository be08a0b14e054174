"""Present-clip motion-prior diffusion model (MCDM §3.3, Eq. 3).

Audio tokens (frozen wav2vec2) and the reference's image token (frozen CLIP, repeated over time) are
fused by FiLM into correlation tokens; with the timestep and the noisy head/lip/expression tokens they
pass L blocks of (multimodal causal transformer block, temporal interaction block) and the model
predicts the added noise (epsilon-prediction MSE, Eq. 3). With landmark guidance the head token is a
clean condition (landmark token) and only lip and expression tokens are noised.

Per frame f the sequence holds four tokens [correlation, head, lip, expression]. The multimodal block
(DiT, Peebles & Xie 2023, adaLN-zero on the timestep) attends over all tokens of frames <= f; the
temporal interaction block (AnimateAnyone's temporal layer, Hu 2024) attends along time per token
type, also causally, so no output of frame f ever sees a later frame.
"""

from __future__ import annotations

import torch
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn

from lightning_modules.blocks.attention import sinusoidal_positions

TOKENS_PER_FRAME = 4  # correlation, head, lip, expression


class FiLM(nn.Module):
    """Feature-wise linear modulation (Perez et al., 2018): audio tokens (B,T,Da) modulated by the image
    token (B,Di): ``(1 + gamma(img)) * W a + beta(img)`` -> correlation tokens (B,T,dim)."""

    def __init__(self, audio_dim: int, image_dim: int, dim: int):
        super().__init__()
        self.audio = nn.Linear(audio_dim, dim)
        self.gamma_beta = nn.Linear(image_dim, 2 * dim)

    def forward(self, audio: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.gamma_beta(image)[:, None].chunk(2, dim=-1)
        return (1 + gamma) * self.audio(audio) + beta


def frame_causal_mask(frames: int, tokens_per_frame: int, device=None) -> torch.Tensor:
    """Bool (T*k, T*k) attention mask, True where attention is NOT allowed (a later frame)."""
    frame = torch.arange(frames * tokens_per_frame, device=device) // tokens_per_frame
    return frame[None, :] > frame[:, None]


class MultimodalCausalBlock(nn.Module):
    """DiT block with adaLN-zero: x (B, N, dim), cond (B, dim), mask (N, N) bool -> (B, N, dim)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(dim, elementwise_affine=False), nn.LayerNorm(dim, elementwise_affine=False)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        s1, b1, g1, s2, b2, g2 = self.ada(cond)[:, None].chunk(6, dim=-1)
        h = self.n1(x) * (1 + s1) + b1
        x = x + g1 * self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + g2 * self.mlp(self.n2(x) * (1 + s2) + b2)


class TemporalInteractionBlock(nn.Module):
    """Pre-norm causal self-attention along time per token type: x (B, T, k, dim) -> same shape."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, k, d = x.shape
        seq = x.transpose(1, 2).reshape(b * k, t, d)
        h = self.norm(seq)
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        seq = seq + self.attn(h, h, h, attn_mask=causal, need_weights=False)[0]
        return seq.view(b, k, t, d).transpose(1, 2)


class PresentClipMotionPrior(nn.Module):
    """epsilon_theta(z_t, t, F_p) of Eq. 3.

    Args:
        audio_dim: wav2vec2 feature width per frame. image_dim: CLIP image-embedding width.
        motion_dim: width of a head/lip/expression token. dim: transformer width.
        layers: L (paper: 8). heads: attention heads.

    ``forward(noisy, t, audio, image, head_cond=None, guided=None)``:
    noisy (B, T, 3, motion_dim) head/lip/expression tokens; t (B,); audio (B, T, audio_dim);
    image (B, image_dim); head_cond (B, T, motion_dim) clean landmark tokens; guided (B,) bool, True
    where head_cond replaces the noisy head token. Returns the predicted noise (B, T, 3, motion_dim).
    """

    def __init__(self, audio_dim: int, image_dim: int, motion_dim: int, dim: int = 256, layers: int = 8,
                 heads: int = 4):
        super().__init__()
        if dim % heads:
            raise ValueError(f"model.motion_prior.dim={dim} is not divisible by model.motion_prior.heads={heads}")
        self.film = FiLM(audio_dim, image_dim, dim)
        self.time_proj = Timesteps(dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embed = TimestepEmbedding(dim, dim)
        self.motion_in = nn.Linear(motion_dim, dim)
        self.type_embed = nn.Parameter(torch.zeros(TOKENS_PER_FRAME + 1, dim))  # +1: clean landmark head token
        nn.init.normal_(self.type_embed, std=0.02)
        self.blocks = nn.ModuleList(MultimodalCausalBlock(dim, heads) for _ in range(layers))
        self.temporal = nn.ModuleList(TemporalInteractionBlock(dim, heads) for _ in range(layers))
        self.out_norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, motion_dim)

    def forward(self, noisy, t, audio, image, head_cond=None, guided=None) -> torch.Tensor:
        b, frames = noisy.shape[:2]
        motion = noisy
        types = self.type_embed[1:TOKENS_PER_FRAME].expand(b, frames, -1, -1)
        if head_cond is not None and guided is not None:
            g = guided.view(b, 1, 1, 1).to(noisy.dtype)
            motion = torch.cat([g * head_cond[:, :, None] + (1 - g) * noisy[:, :, :1], noisy[:, :, 1:]], 2)
            head_type = g * self.type_embed[TOKENS_PER_FRAME] + (1 - g) * self.type_embed[1]
            types = torch.cat([head_type.expand(b, frames, 1, -1), types[:, :, 1:]], 2)
        corr = self.film(audio, image)[:, :, None] + self.type_embed[0]
        x = torch.cat([corr, self.motion_in(motion) + types], dim=2)                    # (B, T, 4, dim)
        x = x + sinusoidal_positions(frames, x.shape[-1], x.device).to(x.dtype)[None, :, None]
        cond = self.time_embed(self.time_proj(t.reshape(-1).expand(b)).to(x.dtype))     # (B, dim)
        mask = frame_causal_mask(frames, TOKENS_PER_FRAME, x.device)
        for block, temporal in zip(self.blocks, self.temporal):
            x = block(x.flatten(1, 2), cond, mask).view(b, frames, TOKENS_PER_FRAME, -1)
            x = temporal(x)
        return self.out(self.out_norm(x[:, :, 1:]))
