"""Attention kinds shared by the portrait models, built on diffusers' ``Attention`` projections.

* :class:`MaskedAttnProcessor` – plain multi-head attention with a boolean key mask.
* :class:`KVBankProcessor` – the reference-attention of dual U-Nets (AnimateAnyone, EMO, Loopy §3.1):
  in ``write`` mode the processor records the self-attention input of a layer; in ``read`` mode
  the matching layer of another U-Net concatenates the recorded tokens to its keys/values along the
  spatial axis, optionally masked per sample (condition dropout).
* :class:`TemporalSelfAttention` – self-attention along time for every spatial position, with an
  optional prefix of extra frames (motion frames) and learnable token-type embeddings.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention
from torch import nn


def masked_attention(attn: Attention, query_in: torch.Tensor, kv_in: torch.Tensor,
                     key_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Multi-head attention with ``attn``'s projections.

    :param query_in: (N, Lq, C) query tokens.
    :param kv_in: (N, Lk, Ckv) key/value tokens.
    :param key_mask: (N, Lk) bool, True where a key may be attended; None attends to all.
    :returns: (N, Lq, C_out).
    """
    if attn.group_norm is not None or attn.spatial_norm is not None or attn.norm_cross:
        raise ValueError("masked_attention supports attention layers without group/spatial/cross norms "
                         "(the Stable Diffusion 1.5 transformer blocks); got a layer that uses one")
    q, k, v = attn.to_q(query_in), attn.to_k(kv_in), attn.to_v(kv_in)
    n, heads = q.shape[0], attn.heads
    q, k, v = (x.view(n, x.shape[1], heads, x.shape[2] // heads).transpose(1, 2) for x in (q, k, v))
    mask = None if key_mask is None else key_mask[:, None, None, :].to(torch.bool)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out = out.transpose(1, 2).reshape(n, query_in.shape[1], -1).to(query_in.dtype)
    out = attn.to_out[1](attn.to_out[0](out))
    if attn.residual_connection:
        out = out + query_in
    return out / attn.rescale_output_factor


class MaskedAttnProcessor:
    """diffusers attention processor: self- or cross-attention with a boolean key mask (N, Lk)."""

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states=None,
                 attention_mask=None, **kwargs) -> torch.Tensor:
        kv = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        return masked_attention(attn, hidden_states, kv, attention_mask)


class KVBankProcessor:
    """Reference attention processor shared through a ``bank`` dict (Loopy §3.1, dual U-Net).

    ``mode="write"``: store this layer's self-attention input ``(N, L, C)`` under ``name`` and attend
    normally. ``mode="read"``: if ``bank`` holds tokens ``(N_ref, L_ref, C)`` for ``name``, repeat
    them to the query batch (``N = N_ref * frames``, frame-major inside each sample) and append them
    to the keys/values; ``bank["__keep__"]`` (N_ref,) bool drops them per sample (reference dropout,
    §3.4: the denoising U-Net then does not concatenate reference features).
    Cross-attention calls (``encoder_hidden_states`` given) pass through unchanged.
    """

    def __init__(self, bank: dict, name: str, mode: str):
        if mode not in ("write", "read"):
            raise ValueError(f"KVBankProcessor mode must be 'write' or 'read', got {mode!r}")
        self.bank, self.name, self.mode = bank, name, mode

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states=None,
                 attention_mask=None, **kwargs) -> torch.Tensor:
        if encoder_hidden_states is not None:
            return masked_attention(attn, hidden_states, encoder_hidden_states)
        if self.mode == "write":
            if self.bank.get("__recording__", False):
                self.bank[self.name] = hidden_states
            return masked_attention(attn, hidden_states, hidden_states)
        ref = self.bank.get(self.name)
        if ref is None:
            return masked_attention(attn, hidden_states, hidden_states)
        n, frames = hidden_states.shape[0], hidden_states.shape[0] // ref.shape[0]
        if frames * ref.shape[0] != n:
            raise ValueError(f"reference tokens for {self.name} have batch {ref.shape[0]}, which does not "
                             f"divide the denoising batch {n}")
        ref = ref.repeat_interleave(frames, dim=0)
        keys = torch.cat([hidden_states, ref], dim=1)
        keep = self.bank.get("__keep__")
        mask = None
        if keep is not None:
            mask = torch.ones(n, keys.shape[1], dtype=torch.bool, device=keys.device)
            mask[:, hidden_states.shape[1]:] = keep.to(keys.device).repeat_interleave(frames)[:, None]
        return masked_attention(attn, hidden_states, keys, mask)


def sinusoidal_positions(length: int, dim: int, device=None) -> torch.Tensor:
    """(length, dim) sinusoidal position encodings (Vaswani et al., 2017)."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    steps = torch.arange(0, dim, 2, device=device, dtype=torch.float32)
    freqs = torch.exp(steps * (-math.log(10000.0) / dim))
    enc = torch.zeros(length, dim, device=device)
    enc[:, 0::2] = torch.sin(pos * freqs)
    enc[:, 1::2] = torch.cos(pos * freqs)[:, : dim // 2]
    return enc


class TemporalSelfAttention(nn.Module):
    """Pre-norm residual self-attention along time, per spatial position.

    Input ``x`` (B, T, C, H, W) and optional ``prefix`` (B, M, C, H, W) of extra frames (e.g. motion
    frames) that act as additional tokens; only the T frames of ``x`` are returned, updated.
    With ``num_types > 0`` a learnable embedding per token type (prefix = 0, x = 1) is added, and a
    sinusoidal position encoding gives the order (prefix tokens first, oldest to newest).
    The output projection starts at zero, so inserting the layer leaves a trained image model unchanged.

    Args:
        channels: C.
        heads: attention heads (C must divide evenly).
        num_types: number of learnable token-type embeddings (0 for none).
    """

    def __init__(self, channels: int, heads: int, num_types: int = 0):
        super().__init__()
        if channels % heads:
            raise ValueError(f"temporal attention: channels {channels} not divisible by heads {heads}")
        self.norm = nn.LayerNorm(channels)
        self.attn = Attention(query_dim=channels, heads=heads, dim_head=channels // heads, bias=False)
        nn.init.zeros_(self.attn.to_out[0].weight)
        nn.init.zeros_(self.attn.to_out[0].bias)
        self.type_embedding = nn.Parameter(torch.zeros(num_types, channels)) if num_types else None
        if self.type_embedding is not None:
            nn.init.normal_(self.type_embedding, std=0.02)

    def forward(self, x: torch.Tensor, prefix: torch.Tensor | None = None,
                prefix_keep: torch.Tensor | None = None) -> torch.Tensor:
        """:param x: (B, T, C, H, W). :param prefix: (B, M, C, H, W) or None.
        :param prefix_keep: (B,) bool; False removes that sample's prefix from the keys.
        :returns: (B, T, C, H, W)."""
        b, t, c, h, w = x.shape
        tokens = x.permute(0, 3, 4, 1, 2).reshape(b * h * w, t, c)
        m = 0
        if prefix is not None:
            m = prefix.shape[1]
            pre = prefix.permute(0, 3, 4, 1, 2).reshape(b * h * w, m, c)
            tokens = torch.cat([pre, tokens], dim=1)
        z = self.norm(tokens) + sinusoidal_positions(m + t, c, tokens.device).to(tokens.dtype)
        if self.type_embedding is not None:
            types = torch.cat([self.type_embedding[0].expand(m, c), self.type_embedding[-1].expand(t, c)])
            z = z + types.to(z.dtype)
        mask = None
        if prefix is not None and prefix_keep is not None:
            mask = torch.ones(b, m + t, dtype=torch.bool, device=x.device)
            mask[:, :m] = prefix_keep.to(x.device)[:, None]
            mask = mask.repeat_interleave(h * w, dim=0)
        out = masked_attention(self.attn, z[:, m:], z, mask)
        out = tokens[:, m:] + out
        return out.reshape(b, h, w, t, c).permute(0, 3, 4, 1, 2)
