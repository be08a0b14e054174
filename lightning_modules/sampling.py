"""Sampling for the three portrait diffusion models: diffusers DDIM, classifier-free guidance over a cascade
of conditions, and the long-video loop that generates clip after clip from the previous clips' latents.

Loopy (§3.4 "DDIM with 25 denoising steps"), MCDM and JoyVASA (§3.4, its x0-predicting motion model) all
sample with :func:`ddim_sample` on a diffusers ``DDIMScheduler``: DDIM's update reads the scheduler's
``prediction_type``, so JoyVASA's clean-motion predictor (``sample``) needs no sampler of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from diffusers import DDIMScheduler
from tqdm.auto import tqdm

# Stable Diffusion 1.5's noise schedule (scheduler_config.json of the SD 1.5 release)
SD15_SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                     beta_schedule="scaled_linear",
                     clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon")


def make_ddim(schedule: dict | None = None) -> DDIMScheduler:
    """A diffusers ``DDIMScheduler`` with SD 1.5's schedule, updated by ``schedule``."""
    return DDIMScheduler(**{**SD15_SCHEDULE, **dict(schedule or {})})


def diffusion_target(scheduler, z0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """What the denoiser regresses, by the scheduler's ``prediction_type`` (the same key DDIM reads
    when sampling): ``epsilon`` the noise (SD 1.5 and the papers' Eq. 1), ``v_prediction``
    alpha*eps - sigma*z0, ``sample`` z0 itself. Shapes of ``z0``; ``t`` is per leading item."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(z0, noise, t)
    if kind == "sample":
        return z0
    raise ValueError(f"noise schedule prediction_type {kind!r} is not one of epsilon, v_prediction, sample")


def diffusion_loss(scheduler, pred: torch.Tensor, target: torch.Tensor, t: torch.Tensor,
                   snr_gamma: float | None = None, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error of a denoiser's prediction (the papers' Eq. 1 in the scheduler's parameterisation),
    or with Min-SNR-gamma weights (Hang et al., ICCV 2023) when ``snr_gamma`` is set.

    Min-SNR weighs each item's error on the clean sample by ``min(SNR_t, gamma)``; in the regressed target's
    terms that is ``min(SNR, gamma) / SNR`` on epsilon, ``min(SNR, gamma) / (SNR + 1)`` on v and
    ``min(SNR, gamma)`` on the sample itself, so one error on the clean sample costs the same whichever the
    ``prediction_type``. A CPU-scale training recipe (``model.stages[i].snr_gamma``), not a paper's loss.

    :param pred, target: (N, ...). :param t: (N,) diffusion steps.
    :param weights: per-element weights broadcastable to ``pred`` (e.g. (N, 1, h, w) from
        ``lightning_modules.blocks.mouth_weights``) or None; the squared errors are multiplied by them and
        averaged over the elements as before (not divided by the weights' sum).
    :returns: the scalar loss (a plain mean of the per-item weighted errors, as in diffusers' training scripts).
    """
    squared = (pred - target) ** 2 if weights is None else weights * (pred - target) ** 2
    if snr_gamma is None:
        return squared.mean()
    from diffusers.training_utils import compute_snr  # imported here: slow to import, rarely needed

    snr = compute_snr(scheduler, t).to(pred.dtype)
    clipped = snr.clamp(max=float(snr_gamma))
    kind = scheduler.config.prediction_type
    weight = {"epsilon": clipped / snr, "v_prediction": clipped / (snr + 1), "sample": clipped}.get(kind)
    if weight is None:
        raise ValueError(f"noise schedule prediction_type {kind!r} is not one of epsilon, v_prediction, sample")
    per_item = squared.flatten(1).mean(1)
    return (weight * per_item).mean()


def combine_guidance(predictions: Sequence[torch.Tensor], scales: Sequence[float]) -> torch.Tensor:
    """Classifier-free guidance over a cascade of conditions, the one combination of the three models.

    ``predictions`` run from the most to the least conditioned, ``scales[i]`` weighs the step from
    ``predictions[i + 1]`` to ``predictions[i]``: ``e = sum_i s_i (e_i - e_{i+1}) + e_last``.

    - MCDM (classifier-free guidance on F_pc) and JoyVASA (Eq. 3, lambda_c): ``[cond, uncond], [s]`` gives
      ``uncond + s (cond - uncond)``;
    - Loopy §3.4: ``[e_audio, e_ref, e_base], [audio_ratio, ref_ratio]`` gives
      ``audio_ratio (e_audio - e_ref) + ref_ratio (e_ref - e_base) + e_base`` (e_ref drops audio, e_base
      also the reference).
    """
    if len(scales) != len(predictions) - 1:
        raise ValueError(f"combine_guidance: {len(predictions)} predictions need one scale per pair "
                         f"({len(predictions) - 1}), got {len(scales)}")
    out = scales[0] * (predictions[0] - predictions[1])
    for i in range(1, len(scales)):
        out = out + scales[i] * (predictions[i] - predictions[i + 1])
    return out + predictions[-1]


@torch.no_grad()
def ddim_sample(eps_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], noise: torch.Tensor,
                scheduler: DDIMScheduler, num_steps: int = 25, progress: bool = False,
                prediction_type: str | None = None) -> torch.Tensor:
    """DDIM (Song et al., 2021) from ``noise`` with ``num_steps`` steps through diffusers.

    :param eps_fn: (z_t, t) -> the denoiser's prediction of the scheduler's ``prediction_type`` (noise,
        v or clean sample), guidance included; ``t`` is the step's 0-d timestep tensor.
    :param noise: initial Gaussian latents, any shape. :returns: z_0 of the same shape.
    :param prediction_type: what ``eps_fn`` predicts, when the caller depends on it (JoyVASA's D predicts
        clean motion, ``sample``): a scheduler configured otherwise is refused."""
    if prediction_type is not None and scheduler.config.prediction_type != prediction_type:
        raise ValueError(f"the denoiser predicts {prediction_type!r} but the DDIM scheduler's "
                         f"prediction_type is {scheduler.config.prediction_type!r}")
    scheduler.set_timesteps(num_steps, device=noise.device)
    z = noise * scheduler.init_noise_sigma
    for t in tqdm(scheduler.timesteps, desc="ddim", disable=not progress, leave=False):
        z = scheduler.step(eps_fn(z, t), t, z).prev_sample
    return z


@torch.no_grad()
def generate_long_video(clip_fn: Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor], num_frames: int,
                        clip_len: int, history_len: int, frame_shape: tuple, batch: int = 1,
                        device=None, dtype=torch.float32, progress: bool = True) -> torch.Tensor:
    """Generate ``num_frames`` latents clip after clip (Loopy §3.4 "Inference").

    ``clip_fn(index, history, history_mask)`` returns the next clip's latents (B, clip_len, *frame_shape);
    ``history`` (B, history_len, *frame_shape) holds the previously generated latents newest first —
    taken directly from the predicted latents, never re-encoded — and zeros where nothing has been
    generated yet (``history_mask`` 0 there). The last clip is cut to length.
    :returns: (B, num_frames, *frame_shape)."""
    if num_frames < 1 or clip_len < 1:
        raise ValueError(f"num_frames ({num_frames}) and clip_len ({clip_len}) must be positive")
    history = torch.zeros(batch, history_len, *frame_shape, device=device, dtype=dtype)
    mask = torch.zeros(batch, history_len, device=device, dtype=dtype)
    clips, done = [], 0
    n_clips = -(-num_frames // clip_len)
    for i in tqdm(range(n_clips), desc="clips", disable=not progress, leave=False):
        clip = clip_fn(i, history, mask)
        clips.append(clip)
        done += clip_len
        new = clip.flip(1)  # newest first
        history = torch.cat([new, history], 1)[:, :history_len]
        mask = torch.cat([torch.ones(batch, clip_len, device=device, dtype=dtype), mask], 1)[:, :history_len]
    return torch.cat(clips, 1)[:, :num_frames]
