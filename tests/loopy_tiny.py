"""Tiny Loopy configurations and synthetic batches for the Loopy tests (CPU, seconds)."""

from __future__ import annotations

from pathlib import Path

import torch

from lightning_modules.loopy import LoopyModule

REPO = Path(__file__).resolve().parents[1]

TINY_UNET = dict(in_channels=192, out_channels=192, block_out_channels=[16, 32], layers_per_block=1,
                 attention_head_dim=8, cross_attention_dim=16, norm_num_groups=8,
                 down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"], up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"])
TINY_WAV2VEC = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                    conv_dim=[16] * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)


def tiny_kwargs(**over) -> dict:
    """Every constructor key of a tiny Loopy (the module has no defaults); ``over`` merges into the groups."""
    kw = dict(num_frames=4, fps=25.0, pretrained={"path": None},
              latent={"factor": 8, "vae": None, "vae_path": None, "autoencoder": None}, unet=dict(TINY_UNET),
              tsm=dict(stride=2, expand_ratio=2, num_segments=2, abstraction="uniform", enabled=True,
                       plain_frames=4),
              temporal=dict(layout="dual", heads=2),
              audio=dict(wav2vec_path=None, random_config=dict(TINY_WAV2VEC), sample_rate=16000, dim=16,
                         window_before=2, window_after=2),
              a2l=dict(enabled=True, num_embeddings=8, dim=16, heads=1), variance=dict(scale=1000.0),
              masks=dict(audio_drop=0.1, motion_latents_drop=0.1, reference_drop=0.15,
                         motion_frames_mask=0.4),
              guidance=dict(audio_ratio=5.0, ref_ratio=3.0), sampling=dict(num_steps=2, progress=False),
              noise_schedule={}, optim=dict(lr=1e-3, weight_decay=1e-2, betas=[0.9, 0.999]))
    for key, value in over.items():
        kw[key] = {**kw.get(key, {}), **value} if isinstance(value, dict) else value
    return kw


def tiny_module(**over) -> LoopyModule:
    torch.manual_seed(0)
    return LoopyModule(**tiny_kwargs(**over))


def wake_zero_inits(module: torch.nn.Module, std: float = 0.2) -> None:
    """Give the zero-initialised output projections of the temporal/audio layers random weights, so
    tests see their effect (after training they are non-zero too)."""
    g = torch.Generator().manual_seed(1)
    for name, p in module.named_parameters():
        if "temporal" in name and "to_out.0" in name:
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g) * std)


def make_batch(b: int = 2, t: int = 4, m: int = 8, size: int = 32, k: int = 68, context: int = 2, seed: int = 0) -> dict:
    """A training batch following the batch contract (datamodules/clips.py)."""
    g = torch.Generator().manual_seed(seed)
    return {"frames": torch.rand(b, t, 3, size, size, generator=g) * 2 - 1,
            "reference": torch.rand(b, 3, size, size, generator=g) * 2 - 1,
            "motion_frames": torch.rand(b, m, 3, size, size, generator=g) * 2 - 1,
            "motion_mask": torch.ones(b, m),
            "audio": torch.randn(b, (t + 2 * context) * 640, generator=g) * 0.1,
            "landmarks": torch.rand(b, t, k, 2, generator=g),
            "landmark_mask": torch.ones(b),
            "meta": [{"fps": 25.0, "video_id": f"v{i}"} for i in range(b)]}
