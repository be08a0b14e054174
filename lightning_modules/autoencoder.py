"""A small autoencoder trained on the data set's own frames, in the role of Stable Diffusion 1.5's VAE
at CPU scale.

Loopy (§3.1) and MCDM (§3.2) denoise in the latent space of SD's frozen VAE. Without its weights the
CPU presets used an exactly invertible pixel-unshuffle codec, whose latents are rearranged pixels
(48 channels at 32 px): the denoiser then regresses raw pixels and its samples blur. This module trains
the same class as SD's VAE, diffusers' ``AutoencoderKL``, at small widths on the training frames, and
saves it as a diffusers folder that :class:`lightning_modules.blocks.latent_codec.VAECodec` loads like
SD's. Loss: mean squared reconstruction error plus a small KL term (SD's VAE adds LPIPS and a patch
GAN, which the CPU scale has no budget for). After training, ``scaling_factor`` is set so that the
latents have unit standard deviation, as SD's 0.18215 does for its VAE.
"""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset


class FrameDataset(Dataset):
    """Single frames ``(3, H, W)`` in [-1, 1] from uint8 ``[N, H, W, 3]`` arrays, flipped at random
    (a face seen in a mirror is still a face of the data set)."""

    def __init__(self, frames, flip: bool = True):
        self.frames, self.flip = frames, flip

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> torch.Tensor:
        x = torch.from_numpy(self.frames[i]).permute(2, 0, 1).float().div(127.5).sub(1.0)
        if self.flip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return x


class AutoencoderModule(L.LightningModule):
    """Trains ``diffusers.AutoencoderKL(**config)`` on frames.

    Args:
        config: ``AutoencoderKL`` keyword arguments (widths, ``latent_channels``, block types).
        lr: AdamW learning rate.
        kl_weight: weight of the KL term (SD's VAE uses 1e-6).
        deterministic: decode the posterior mean in training (True) or a sample of it (SD's VAE).
    """

    def __init__(self, config: dict, lr: float = 1e-3, kl_weight: float = 1e-6, deterministic: bool = True):
        super().__init__()
        from diffusers import AutoencoderKL

        self.vae = AutoencoderKL(**dict(config))
        self.lr, self.kl_weight, self.deterministic = float(lr), float(kl_weight), bool(deterministic)

    @property
    def factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        post = self.vae.encode(batch).latent_dist
        # the posterior mean, as the denoisers encode with it (VAECodec): a sampled latent starts with unit
        # noise (the encoder's initial log-variance is ~0) and a short schedule then learns only a blur
        rec = self.vae.decode(post.mode() if self.deterministic else post.sample()).sample
        mse = F.mse_loss(rec, batch)
        loss = mse + self.kl_weight * post.kl().mean()
        self.log("train/loss_autoencoder", loss, prog_bar=True, batch_size=batch.shape[0])
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.vae.parameters(), lr=self.lr)

    @torch.no_grad()
    def latent_std(self, frames: torch.Tensor, batch: int = 64) -> float:
        """Standard deviation of the posterior means of ``frames`` (N, 3, H, W)."""
        lat = torch.cat([self.vae.encode(frames[i:i + batch]).latent_dist.mean for i in range(0, len(frames), batch)])
        return float(lat.std())

    @torch.no_grad()
    def psnr(self, frames: torch.Tensor, batch: int = 64) -> float:
        """Reconstruction PSNR (dB, peak 255) of ``frames`` (N, 3, H, W) in [-1, 1] through the posterior
        means, each reconstruction rounded to uint8 as a video file would store it."""
        se, n = 0.0, 0
        for i in range(0, len(frames), batch):
            x = frames[i:i + batch]
            rec = self.vae.decode(self.vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
            a = ((x + 1) * 127.5).round()
            b = ((rec + 1) * 127.5).round()
            se += float(((a - b) ** 2).sum())
            n += a.numel()
        mse = se / max(n, 1)
        return float("inf") if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)
