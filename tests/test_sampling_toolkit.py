"""One sampling toolkit for the three models (lightning_modules/sampling.py): DDIM through diffusers'
DDIMScheduler and one classifier-free guidance combination.

The expected values are derived by hand from DDIM (Song et al., 2021, Eq. 12 with sigma = 0):
x_prev = sqrt(a_prev) * x0_hat + sqrt(1 - a_prev) * eps_hat, with a = the cumulative alpha product of
the schedule's betas, on the timesteps diffusers' "leading" spacing gives for 2 steps of 1000.
"""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from lightning_modules.sampling import SD15_SCHEDULE, combine_guidance, ddim_sample, make_ddim


def _alphas_cumprod(kind: str, b0: float, b1: float, n: int = 1000) -> list[float]:
    if kind == "scaled_linear":  # SD 1.5: betas linear in sqrt
        betas = [(math.sqrt(b0) + (math.sqrt(b1) - math.sqrt(b0)) * i / (n - 1)) ** 2 for i in range(n)]
    else:
        betas = [b0 + (b1 - b0) * i / (n - 1) for i in range(n)]
    out, acc = [], 1.0
    for b in betas:
        acc *= 1.0 - b
        out.append(acc)
    return out


def _denoiser(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A fixed, non-trivial prediction: depends on the sample and on the timestep."""
    return 0.3 * x + 0.001 * float(t) - 0.2


def test_ddim_epsilon_two_steps_equals_the_hand_derived_update():
    """Loopy / MCDM: SD 1.5's schedule (steps_offset 1, set_alpha_to_one false), epsilon prediction."""
    a = _alphas_cumprod("scaled_linear", 0.00085, 0.012)
    x = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    out = ddim_sample(_denoiser, x.clone(), make_ddim(), 2)
    # leading spacing, offset 1: timesteps 501 then 1; after 1 the final alpha is a[0]
    # (set_alpha_to_one false)
    ref = x.clone()
    for t, prev in ((501, 1), (1, None)):
        at, ap = a[t], (a[prev] if prev is not None else a[0])
        eps = _denoiser(ref, torch.tensor(t))
        x0 = (ref - math.sqrt(1 - at) * eps) / math.sqrt(at)
        ref = math.sqrt(ap) * x0 + math.sqrt(1 - ap) * eps
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_ddim_sample_prediction_two_steps_equals_the_hand_derived_update():
    """JoyVASA: the motion schedule (linear betas 1e-4..0.02, x0 prediction) through DDIMScheduler.from_config
    of its DDPM training scheduler: no offset, final alpha 1."""
    ddpm = DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                         prediction_type="sample", clip_sample=False)
    a = _alphas_cumprod("linear", 1e-4, 0.02)
    x = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]], dtype=torch.float64)
    seen = []

    def denoise(z, t):
        seen.append(t.shape)
        return _denoiser(z, t)

    out = ddim_sample(denoise, x.clone(), DDIMScheduler.from_config(ddpm.config), 2)
    ref = x.clone()
    for t, ap in ((500, a[0]), (0, 1.0)):
        at = a[t]
        x0 = _denoiser(ref, torch.tensor(t))
        eps = (ref - math.sqrt(at) * x0) / math.sqrt(1 - at)
        ref = math.sqrt(ap) * x0 + math.sqrt(1 - ap) * eps
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    assert seen == [torch.Size([])] * 2  # the timestep comes as diffusers gives it; callers expand it


def test_sd15_schedule_is_the_release_config():
    assert SD15_SCHEDULE["beta_schedule"] == "scaled_linear" and SD15_SCHEDULE["steps_offset"] == 1
    assert make_ddim({"prediction_type": "sample"}).config.prediction_type == "sample"


def test_guidance_is_the_cascade_of_the_papers():
    """Two branches: uncond + s (cond - uncond) (MCDM, JoyVASA Eq. 3); three branches: Loopy §3.4,
    e = a (e_audio - e_ref) + r (e_ref - e_base) + e_base."""
    cond, uncond = torch.tensor([2.0, 4.0]), torch.tensor([1.0, 1.0])
    assert torch.equal(combine_guidance([cond, uncond], [2.0]), torch.tensor([3.0, 7.0]))
    assert torch.equal(combine_guidance([cond, uncond], [1.0]), cond)
    assert torch.equal(combine_guidance([cond, uncond], [0.0]), uncond)
    e_audio, e_ref, e_base = torch.tensor([3.0]), torch.tensor([2.0]), torch.tensor([0.5])
    # 5 * (3 - 2) + 3 * (2 - 0.5) + 0.5 = 10
    assert torch.equal(combine_guidance([e_audio, e_ref, e_base], [5.0, 3.0]), torch.tensor([10.0]))
    with pytest.raises(ValueError, match="one scale per pair"):
        combine_guidance([cond, uncond], [1.0, 2.0])


def _sd15(prediction_type: str) -> DDPMScheduler:
    cfg = {k: v for k, v in SD15_SCHEDULE.items() if k not in ("set_alpha_to_one", "steps_offset")}
    return DDPMScheduler(**{**cfg, "prediction_type": prediction_type})


@pytest.mark.parametrize("gamma", [0.5, 1.0, 5.0])
def test_min_snr_weights_the_clean_sample_error_alike_in_every_parameterisation(gamma):
    """Min-SNR-gamma (Hang et al. 2023): an error d on the clean sample costs min(SNR_t, gamma) * mean(d^2)
    per item, SNR_t = a/(1 - a) with a the schedule's cumulative alpha product (derived here from SD 1.5's
    betas), whether the denoiser regresses epsilon, v or the sample."""
    from lightning_modules.sampling import diffusion_loss, diffusion_target

    g = torch.Generator().manual_seed(0)
    z0, noise = torch.randn(6, 4, 3, 3, generator=g), torch.randn(6, 4, 3, 3, generator=g)
    x0_hat = z0 + 0.3 * torch.randn(6, 4, 3, 3, generator=g)
    t = torch.tensor([0, 10, 250, 500, 800, 999])
    a = torch.tensor(_alphas_cumprod("scaled_linear", 0.00085, 0.012), dtype=torch.float64)[t].view(-1, 1, 1, 1)
    snr = (a / (1 - a)).flatten()
    expected = (torch.clamp(snr, max=gamma) * ((x0_hat - z0).double() ** 2).flatten(1).mean(1)).mean()
    zt = a.sqrt() * z0 + (1 - a).sqrt() * noise
    eps_hat = (zt - a.sqrt() * x0_hat) / (1 - a).sqrt()
    preds = {"sample": x0_hat, "epsilon": eps_hat, "v_prediction": a.sqrt() * eps_hat - (1 - a).sqrt() * x0_hat}
    for kind, pred in preds.items():
        sched = _sd15(kind)
        target = diffusion_target(sched, z0, noise, t)
        loss = diffusion_loss(sched, pred.float(), target, t, gamma)
        assert loss.item() == pytest.approx(expected.item(), rel=1e-4), kind


def test_without_gamma_the_loss_is_the_plain_mse_and_a_huge_gamma_is_the_epsilon_loss():
    """snr_gamma None is Eq. 1's MSE; gamma above every SNR weighs an x0 error by SNR, which is the plain
    epsilon loss (eps error = sqrt(SNR) * x0 error)."""
    from lightning_modules.sampling import diffusion_loss

    g = torch.Generator().manual_seed(1)
    pred, target = torch.randn(5, 2, 3, 3, generator=g), torch.randn(5, 2, 3, 3, generator=g)
    t = torch.tensor([3, 100, 400, 700, 990])
    plain = torch.nn.functional.mse_loss(pred, target)
    assert diffusion_loss(_sd15("sample"), pred, target, t, None).item() == pytest.approx(plain.item())
    assert diffusion_loss(_sd15("epsilon"), pred, target, t, 1e9).item() == pytest.approx(plain.item(), rel=1e-5)
    with pytest.raises(ValueError, match="prediction_type 'flow'"):
        sched = _sd15("epsilon")
        sched.register_to_config(prediction_type="flow")
        diffusion_loss(sched, pred, target, t, 1.0)
