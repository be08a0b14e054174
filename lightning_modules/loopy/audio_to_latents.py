"""Audio-to-latents module (A2L), Loopy §3.3 and Figure 4.

A set of 128 learnable embeddings serves as keys and values; the condition — audio, head-movement
variance or expression variance — is mapped by its own FC layer to a single query token, all at 256
channels. The attended value ("motion latents") is projected to the timestep-embedding width (1280
for SD 1.5) and added to the timestep embedding. Training draws one of the three conditions with
equal probability; sampling uses audio only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CONDITIONS = ("audio", "movement", "expression")


class AudioToLatents(nn.Module):
    """Maps one condition to motion latents through attention over learnable embeddings.

    Args:
        audio_dim: width of the pooled audio feature (query input of the audio FC).
        out_dim: timestep-embedding width the motion latents are added to (1280 in SD 1.5).
        num_embeddings: learnable key/value embeddings (128 in the paper).
        dim: Q/K/V width (256 in the paper).
        heads: attention heads (the paper does not say; 1 by default).
    """

    def __init__(self, audio_dim: int, out_dim: int = 1280, num_embeddings: int = 128, dim: int = 256,
                 heads: int = 1):
        super().__init__()
        if dim % heads:
            raise ValueError(f"model.a2l.dim ({dim}) must be divisible by model.a2l.heads ({heads})")
        self.heads = heads
        self.embeddings = nn.Parameter(torch.randn(num_embeddings, dim) * dim ** -0.5)
        # one FC per condition: audio feature / scalar variance -> a 1-token query
        self.query = nn.ModuleDict({"audio": nn.Linear(audio_dim, dim), "movement": nn.Linear(1, dim),
                                    "expression": nn.Linear(1, dim)})
        self.to_k, self.to_v = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj_out = nn.Linear(dim, out_dim)

    @staticmethod
    def sample_conditions(batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(batch,) long in {0: audio, 1: movement, 2: expression}, each with probability 1/3 (§3.3)."""
        return torch.randint(0, len(CONDITIONS), (batch,), generator=generator)

    def forward(self, audio: torch.Tensor, movement: torch.Tensor | None = None,
                expression: torch.Tensor | None = None, choice: torch.Tensor | None = None) -> torch.Tensor:
        """:param audio: (B, audio_dim) pooled audio feature of the clip.
        :param movement: (B,) head-movement variance; :param expression: (B,) expression variance.
        :param choice: (B,) long condition index per sample (None = audio only, as at sampling).
        :returns: (B, out_dim) motion latents."""
        q = self.query["audio"](audio)
        if choice is not None:
            if movement is None or expression is None:
                raise ValueError("audio-to-latents: training with a sampled condition needs both variances")
            q_mov = self.query["movement"](movement[:, None].to(q.dtype))
            q_exp = self.query["expression"](expression[:, None].to(q.dtype))
            c = choice.to(q.device)[:, None]
            q = torch.where(c == 1, q_mov, torch.where(c == 2, q_exp, q))
        b, d, h = q.shape[0], q.shape[1], self.heads
        k = self.to_k(self.embeddings).view(1, -1, h, d // h).transpose(1, 2).expand(b, -1, -1, -1)
        v = self.to_v(self.embeddings).view(1, -1, h, d // h).transpose(1, 2).expand(b, -1, -1, -1)
        out = F.scaled_dot_product_attention(q.view(b, 1, h, d // h).transpose(1, 2), k, v)
        return self.proj_out(out.transpose(1, 2).reshape(b, d))
