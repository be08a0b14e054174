"""EDM preconditioning of a clean-sample (x0) denoiser on a variance-preserving schedule.

Karras et al., "Elucidating the Design Space of Diffusion-Based Generative Models" (NeurIPS 2022),
section 5 and Table 1: the network F is wrapped as ``D(x; s) = c_skip(s) x + c_out(s) F(c_in(s) x; s)``
with ``c_skip = sd^2 / (s^2 + sd^2)``, ``c_out = s sd / sqrt(s^2 + sd^2)``, ``c_in = 1 / sqrt(s^2 + sd^2)``
for noise level ``s`` and data standard deviation ``sd``. On a VP schedule (SD 1.5's, diffusers'
``alphas_cumprod`` = a_t) the noisy latent ``z_t = sqrt(a_t) z0 + sqrt(1 - a_t) eps`` is that EDM input
scaled by sqrt(a_t): ``x = z_t / sqrt(a_t)`` with ``s = sqrt((1 - a_t) / a_t)``.

Why it was tried (README "SynthTalk laboratory"): the CPU preset's unwrapped x0 U-Net (32 channels for 48
latent channels) did not copy its input even at the lowest noise level (x0 error 0.087 rms at t = 1, where
the input itself is off by 0.041, the same error as at t = 101), so DDIM's last steps could add no detail
beyond what the conditions predict. With ``c_skip -> 1`` as ``s -> 0`` the wrapped denoiser passes its
input through where the input is already clean, and F only learns the residual. Measured and left off:
at the CPU budget F did not learn to remove the noise the skip branch passes (SSIM 0.44 vs 0.58).
"""
from __future__ import annotations

import torch


def edm_scalings(alphas_cumprod: torch.Tensor, sigma_data: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(c_skip, c_out, c_in)`` for VP noise levels ``alphas_cumprod`` (any shape), each already divided
    by sqrt(a_t) where it multiplies ``z_t`` (so ``D = c_skip * z_t + c_out * F(c_in * z_t)``)."""
    if sigma_data <= 0:
        raise ValueError(f"model.preconditioning.sigma_data must be > 0, got {sigma_data}")
    a = alphas_cumprod.double()
    s2 = (1 - a) / a  # EDM noise level squared
    sd2 = float(sigma_data) ** 2
    root_a = a.sqrt()
    c_skip = sd2 / (s2 + sd2) / root_a
    c_out = (s2 * sd2 / (s2 + sd2)).sqrt()
    c_in = 1 / (s2 + sd2).sqrt() / root_a
    return c_skip.float(), c_out.float(), c_in.float()


class EDMPreconditioning(torch.nn.Module):
    """Wraps an x0 network: ``denoise(net, z_t, steps, *args)`` -> the clean-latent estimate.

    :param sigma_data: standard deviation of the clean latents (the stand-in codec's SynthTalk latents: 0.32).
    :param alphas_cumprod: (T,) the training schedule's a_t, indexed by the integer steps.
    ``z_t``: (B, ...) with steps (B,) — or a 0-d step shared by the batch.
    """

    def __init__(self, sigma_data: float, alphas_cumprod: torch.Tensor):
        super().__init__()
        self.sigma_data = float(sigma_data)
        edm_scalings(alphas_cumprod[:1], self.sigma_data)  # validates sigma_data
        self.register_buffer("alphas_cumprod", alphas_cumprod.detach().clone().float(), persistent=False)

    def scalings(self, steps: torch.Tensor, ndim: int) -> tuple[torch.Tensor, ...]:
        a = self.alphas_cumprod.to(steps.device)[steps.long()]
        shape = a.shape + (1,) * (ndim - a.dim())
        return tuple(c.reshape(shape) for c in edm_scalings(a, self.sigma_data))

    def denoise(self, net, z_t: torch.Tensor, steps: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        c_skip, c_out, c_in = self.scalings(steps, z_t.dim())
        return c_skip * z_t + c_out * net(c_in * z_t, steps, *args, **kwargs)


__all__ = ["EDMPreconditioning", "edm_scalings"]
