"""Audio-driven motion sequence generation with diffusion (JoyVASA §3.3.1, Eqs. 2-3; Fig. 2).

The denoiser D is a transformer decoder (paper: 6 layers, 8 heads, width 512, §4.2). Its query
tokens are the motion of both windows -- the previous window's clean motion X^0_{-W_pre:0} (or the
learnable start features X_start for the first window) followed by the current noisy motion
X^t_{0:W_cur} -- plus the diffusion-step embedding; its memory is the audio of both windows
A_{-W_pre:W_cur} (or A_start for the missing previous audio). Each motion frame cross-attends to
the audio frames around its own time (an alignment band), so a window of any length lines up with
its audio. D predicts the clean motion of both windows, X_hat^0_{-W_pre:W_cur} (Eq. 2), not noise.

Sampling (§3.4) runs diffusers' DDIM with ``prediction_type="sample"`` window after window; each
window is conditioned on the last W_pre generated frames, and guidance follows Eq. 3.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn
from tqdm.auto import tqdm

from lightning_modules.blocks.attention import sinusoidal_positions
from lightning_modules.sampling import combine_guidance


class AudioToMotionDiT(nn.Module):
    """Denoiser D of Eq. 2.

    Args:
        motion_dim: D, numbers per frame (70 for LivePortrait's 21 keypoints).
        audio_dim: width of the frozen wav2vec2 features.
        width: transformer width (512).
        layers: decoder layers (6).
        heads: attention heads (8).
        w_cur: current window W_cur (100). w_pre: previous window W_pre (25).
        ff_mult: feed-forward expansion. dropout: transformer dropout.
        align_band: a motion frame attends to audio frames within +-align_band of its own time.
    """

    def __init__(self, motion_dim: int, audio_dim: int, width: int = 512, layers: int = 6, heads: int = 8,
                 w_cur: int = 100, w_pre: int = 25, ff_mult: int = 4, dropout: float = 0.1, align_band: int = 1):
        super().__init__()
        if width % heads:
            raise ValueError(f"model.dit.width ({width}) must be divisible by model.dit.heads ({heads})")
        if w_cur < 1 or w_pre < 0:
            raise ValueError(f"model.windows: w_cur must be >= 1 and w_pre >= 0, got {w_cur}, {w_pre}")
        self.motion_dim, self.audio_dim, self.width = motion_dim, audio_dim, width
        self.w_cur, self.w_pre, self.align_band = w_cur, w_pre, align_band
        self.motion_in = nn.Linear(motion_dim, width)
        self.audio_in = nn.Linear(audio_dim, width)
        self.time_proj = Timesteps(width, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_mlp = TimestepEmbedding(width, width)
        # learnable start features X_start, A_start for the first window (§3.3.1)
        self.x_start = nn.Parameter(torch.zeros(w_pre, motion_dim))
        self.a_start = nn.Parameter(torch.zeros(w_pre, audio_dim))
        # the "empty" audio condition of CFG (Eq. 3), used when audio is dropped (p = 0.1 in training)
        self.a_null = nn.Parameter(torch.zeros(1, audio_dim))
        layer = nn.TransformerDecoderLayer(width, heads, ff_mult * width, dropout, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.out = nn.Linear(width, motion_dim)
        nn.init.normal_(self.x_start, std=0.02)
        nn.init.normal_(self.a_start, std=0.02)

    def _alignment_mask(self, n: int, device) -> torch.Tensor:
        """(n, n) bool, True = blocked: frame i sees audio frames |i - j| <= align_band."""
        idx = torch.arange(n, device=device)
        return (idx[:, None] - idx[None]).abs() > self.align_band

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, audio: torch.Tensor, x_prev: torch.Tensor | None = None,
                audio_prev: torch.Tensor | None = None, is_start: torch.Tensor | None = None,
                audio_keep: torch.Tensor | None = None) -> torch.Tensor:
        """X_hat^0_{-W_pre:W_cur} = D(X^t_{0:W_cur}, X^0_{-W_pre:0}, A_{-W_pre:W_cur}, t)  (Eq. 2).

        :param x_t: noisy current motion (B, n, D), n <= W_cur (shorter = truncated window).
        :param t: (B,) diffusion steps.
        :param audio: current-window audio features (B, n, A).
        :param x_prev: previous clean motion (B, W_pre, D), chronological; None = first window.
        :param audio_prev: previous-window audio (B, W_pre, A); None = first window.
        :param is_start: (B,) bool, rows whose previous window is replaced by the start features.
        :param audio_keep: (B,) bool, False = audio condition is empty (CFG).
        :returns: (B, W_pre + n, D) clean motion of both windows."""
        b, n, _ = x_t.shape
        if audio.shape[:2] != (b, n):
            raise ValueError(f"audio features {tuple(audio.shape)} must match the motion window {tuple(x_t.shape[:2])}")
        wp = self.w_pre
        start_x = self.x_start[None].expand(b, -1, -1)
        start_a = self.a_start[None].expand(b, -1, -1)
        if x_prev is None or audio_prev is None:
            x_prev, audio_prev = start_x, start_a
        else:
            if is_start is not None:
                s = is_start.view(b, 1, 1).to(torch.bool)
                x_prev, audio_prev = torch.where(s, start_x, x_prev), torch.where(s, start_a, audio_prev)
        a = torch.cat([audio_prev, audio], 1)                                         # (B, W_pre + n, A)
        if audio_keep is not None:
            a = torch.where(audio_keep.view(b, 1, 1).to(torch.bool), a, self.a_null.expand_as(a))
        pos = sinusoidal_positions(wp + n, self.width, x_t.device)
        temb = self.time_mlp(self.time_proj(t).to(x_t.dtype))[:, None]
        query = self.motion_in(torch.cat([x_prev, x_t], 1)) + pos + temb
        memory = self.audio_in(a) + pos
        h = self.decoder(query, memory, memory_mask=self._alignment_mask(wp + n, x_t.device))
        return self.out(h)

    def guided(self, x_t, t, audio, x_prev, audio_prev, scale: float) -> torch.Tensor:
        """Eq. 3 in one batched forward: rows (audio, empty audio) -> guided clean motion (B, W_pre + n, D)."""
        b = x_t.shape[0]
        keep = torch.cat([torch.ones(b, dtype=torch.bool), torch.zeros(b, dtype=torch.bool)]).to(x_t.device)
        dup = (lambda v: None if v is None else torch.cat([v, v]))
        x0 = self(dup(x_t), torch.cat([t, t]), dup(audio), dup(x_prev), dup(audio_prev), audio_keep=keep)
        return combine_guidance(x0.chunk(2), [scale])  # X_hat = D(.., 0) + lambda_c (D(.., A) - D(.., 0))


@torch.no_grad()
def sliding_window_motion(window_fn: Callable[..., torch.Tensor], audio: torch.Tensor, w_cur: int, w_pre: int,
                          progress: bool = False) -> torch.Tensor:
    """Motion for audio of any length, window after window (§3.4).

    ``window_fn(audio_cur (B,n,A), x_prev (B,W_pre,D) | None, audio_prev (B,W_pre,A) | None)`` returns
    the current window's clean motion (B, n, D); ``x_prev`` is None for the first window (start
    features) and then the last W_pre generated frames, ``audio_prev`` their audio. The last window is
    padded by repeating the final audio frame and cut to length.
    :param audio: (B, N, A) per-frame audio features. :returns: (B, N, D)."""
    b, n_total, _ = audio.shape
    if n_total < 1:
        raise ValueError("sliding_window_motion: the audio spans no video frame")
    n_win = -(-n_total // w_cur)
    pad = n_win * w_cur - n_total
    if pad:
        audio = torch.cat([audio, audio[:, -1:].expand(-1, pad, -1)], 1)
    out: list[torch.Tensor] = []
    for i in tqdm(range(n_win), desc="motion windows", disable=not progress, leave=False):
        lo = i * w_cur
        cur = audio[:, lo:lo + w_cur]
        if i == 0 or w_pre == 0 or lo < w_pre:
            x_prev = a_prev = None
        else:
            x_prev = torch.cat(out, 1)[:, -w_pre:]
            a_prev = audio[:, lo - w_pre:lo]
        out.append(window_fn(cur, x_prev, a_prev))
    return torch.cat(out, 1)[:, :n_total]
