"""Image <-> latent codecs: the Stable Diffusion VAE from a local diffusers folder, a small VAE of the
same class trained on the data set itself (``lightning_modules/autoencoder.py``, the CPU-scale stand-in
for SD's VAE), or an exactly invertible stand-in (pixel unshuffle) for runs without any VAE."""

from __future__ import annotations

import logging
import os

import torch
from torch import nn

log = logging.getLogger(__name__)


class PixelUnshuffleCodec(nn.Module):
    """Exactly invertible stand-in autoencoder: (B,3,H,W) -> (B,3f²,H/f,W/f), no parameters.

    Same spatial factor as SD's VAE (f = 8) by default, so the U-Net sees SD-like latent sizes.
    """

    def __init__(self, factor: int = 8):
        super().__init__()
        if factor < 1:
            raise ValueError(f"model.latent.factor must be >= 1, got {factor}")
        self.factor = factor
        self.latent_channels = 3 * factor * factor
        self.down, self.up = nn.PixelUnshuffle(factor), nn.PixelShuffle(factor)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """:param images: (N,3,H,W) in [-1,1]. :returns: (N,3f²,H/f,W/f)."""
        if images.shape[-1] % self.factor or images.shape[-2] % self.factor:
            raise ValueError(f"image size {tuple(images.shape[-2:])} is not divisible by the latent factor "
                             f"{self.factor} (model.latent.factor)")
        return self.down(images)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.up(latents).clamp(-1, 1)


class VAECodec(nn.Module):
    """Stable Diffusion ``AutoencoderKL``, frozen; latents are scaled by its ``scaling_factor``
    (0.18215 for SD 1.5). Built from a local diffusers folder (``<path>/vae``) or, without weights,
    from ``config`` with random weights (paper shapes only; logged loudly)."""

    def __init__(self, path: str | None = None, subfolder: str | None = "vae", config: dict | None = None,
                 key: str = "model.pretrained.path"):
        super().__init__()
        from diffusers import AutoencoderKL

        if path:
            folder = os.path.join(path, subfolder) if subfolder else path
            if not os.path.isfile(os.path.join(folder, "config.json")):
                raise FileNotFoundError(f"no diffusers VAE at {folder!r} (expected config.json and weights); "
                                        f"set {key} to a diffusers AutoencoderKL folder "
                                        f"({'a Stable Diffusion 1.5 folder with vae/' if subfolder else 'vae/'}), "
                                        f"or null")
            self.vae = AutoencoderKL.from_pretrained(path, subfolder=subfolder)
        else:
            log.warning("No VAE weights given (model.pretrained.path is null): the Stable Diffusion VAE of "
                        "model.latent.vae is RANDOMLY INITIALISED.")
            self.vae = AutoencoderKL(**dict(config or {}))
        self.vae.requires_grad_(False).eval()
        self.scale = float(self.vae.config.scaling_factor)
        self.latent_channels = int(self.vae.config.latent_channels)
        self.factor = 2 ** (len(self.vae.config.block_out_channels) - 1)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(images).latent_dist.mean * self.scale

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents / self.scale).sample.clamp(-1, 1)

    def train(self, mode: bool = True):  # the VAE stays frozen in eval mode
        super().train(mode)
        self.vae.eval()
        return self


def build_latent_codec(pretrained_path: str | None, factor: int = 8,
                       vae_config: dict | None = None, vae_path: str | None = None,
                       autoencoder: dict | None = None) -> nn.Module:
    """The SD VAE from a diffusers folder; else a VAE folder of its own (``vae_path``: the data set's
    trained autoencoder, see ``lightning_modules/autoencoder.py``); else a randomly initialised VAE of
    ``vae_config`` (paper shapes) or, when that is null, the invertible stand-in codec. Both fallbacks
    log loudly. ``autoencoder`` (the config of a trained autoencoder) without ``vae_path`` is an error:
    the runner trains it and fills the path in."""
    if pretrained_path:
        return VAECodec(pretrained_path)
    if autoencoder and not vae_path:
        raise ValueError("model.latent.autoencoder asks for the data set's trained autoencoder, but "
                         "model.latent.vae_path is null: run through `python -m experiments.run` (which trains "
                         "and caches it) or set model.latent.vae_path to its folder")
    if vae_path:
        return VAECodec(vae_path, subfolder=None, key="model.latent.vae_path")
    if vae_config:
        return VAECodec(config=vae_config)
    log.warning("No VAE weights given (model.pretrained.path is null): using the invertible pixel-unshuffle "
                "stand-in codec (factor %d) instead of the Stable Diffusion VAE.", factor)
    return PixelUnshuffleCodec(factor)
