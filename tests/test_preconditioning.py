"""EDM preconditioning of an x0 denoiser (lightning_modules/blocks/preconditioning.py), checked against
closed forms of Karras et al. 2022 and Bayes' rule on Gaussian data, not against its own formulas."""
import pytest
import torch
from diffusers import DDPMScheduler

from lightning_modules.blocks.preconditioning import EDMPreconditioning
from lightning_modules.sampling import SD15_SCHEDULE

SD = 0.32
STEPS = torch.tensor([1, 21, 101, 301, 601, 999])


def _schedule() -> DDPMScheduler:
    return DDPMScheduler(**{k: v for k, v in SD15_SCHEDULE.items() if k not in ("set_alpha_to_one", "steps_offset")})


def _noisy(n=200_000, seed=0):
    """Gaussian clean latents of std SD noised by diffusers at each of STEPS: (x0, noise, z_t), (len(STEPS), n)."""
    g = torch.Generator().manual_seed(seed)
    x0 = SD * torch.randn(len(STEPS), n, generator=g, dtype=torch.float64)
    noise = torch.randn(len(STEPS), n, generator=g, dtype=torch.float64)
    zt = _schedule().add_noise(x0, noise, STEPS)
    return x0, noise, zt


def test_network_input_has_unit_variance_at_every_noise_level():
    """EDM's c_in: the network sees inputs of unit variance whatever the noise level (Karras 2022, App. B.6)."""
    x0, _, zt = _noisy()
    _, _, c_in = EDMPreconditioning(SD, _schedule().alphas_cumprod).scalings(STEPS, 2)
    std = (c_in.double() * zt).std(dim=1)
    assert torch.allclose(std, torch.ones_like(std), atol=0.01), std


def test_network_target_has_unit_variance_at_every_noise_level():
    """EDM's c_skip / c_out: the residual the network must output, (x0 - c_skip z_t) / c_out, has unit variance."""
    x0, _, zt = _noisy()
    c_skip, c_out, _ = EDMPreconditioning(SD, _schedule().alphas_cumprod).scalings(STEPS, 2)
    target = (x0 - c_skip.double() * zt) / c_out.double()
    std = target.std(dim=1)
    assert torch.allclose(std, torch.ones_like(std), atol=0.01), std


def test_skip_branch_alone_is_the_posterior_mean_of_gaussian_data():
    """With F = 0 the wrapped denoiser is c_skip z_t; for Gaussian x0 of std SD that is E[x0 | z_t], the
    least-squares slope of x0 on z_t (Bayes), so F only has to learn what is not Gaussian. At t = 1 it
    passes the input through almost unchanged."""
    x0, _, zt = _noisy()
    pre = EDMPreconditioning(SD, _schedule().alphas_cumprod)
    d = pre.denoise(lambda z, steps: torch.zeros_like(z), zt.float(), STEPS)
    slope = (x0 * zt).sum(1) / (zt * zt).sum(1)  # regression of x0 on z_t through the origin
    assert torch.allclose((d.double() / zt).mean(1), slope, rtol=0, atol=0.003), ((d.double() / zt).mean(1), slope)
    assert (d[0] - zt[0].float()).abs().max() < 0.02 * zt[0].abs().max()


def test_network_gets_the_scaled_input_and_step():
    seen = {}

    def net(z, steps, extra, flag=False):
        seen.update(z=z, steps=steps, extra=extra, flag=flag)
        return torch.ones_like(z)

    pre = EDMPreconditioning(SD, _schedule().alphas_cumprod)
    z = torch.randn(2, 3, 4)
    steps = torch.tensor([5, 900])
    out = pre.denoise(net, z, steps, "cond", flag=True)
    c_skip, c_out, c_in = pre.scalings(steps, 3)
    assert torch.allclose(seen["z"], c_in * z) and seen["steps"] is steps and seen["extra"] == "cond" and seen["flag"]
    assert torch.allclose(out, c_skip * z + c_out)


def test_bad_sigma_data_and_prediction_type_are_refused():
    with pytest.raises(ValueError, match=r"model\.preconditioning\.sigma_data must be > 0"):
        EDMPreconditioning(0.0, _schedule().alphas_cumprod)


def test_loopy_refuses_preconditioning_of_an_epsilon_model():
    from tests.loopy_tiny import tiny_module

    with pytest.raises(ValueError, match=r"model\.preconditioning wraps a clean-latent.*prediction_type: sample"):
        tiny_module(preconditioning={"sigma_data": SD})


def test_loopy_trains_and_samples_through_the_preconditioning():
    """Both the training loss (model_step) and the guided sampler call the wrapped denoiser; with F = 0
    the module's prediction is the skip branch alone."""
    from tests.loopy_tiny import make_batch, tiny_module

    model = tiny_module(preconditioning={"sigma_data": SD}, noise_schedule={"prediction_type": "sample"})
    calls = []
    inner = model.precond.denoise
    model.precond.denoise = lambda *a, **k: calls.append(a[2]) or inner(*a, **k)
    model.set_stage("stage2")
    assert torch.isfinite(model.model_step(make_batch()))
    model.eval()
    model.generate(make_batch()["reference"], torch.randn(2, 8 * 640) * 0.1, 8)
    assert len(calls) == 1 + 2 * 2  # one training forward, 2 clips x 2 DDIM steps (3 guidance rows each)
    assert calls[1].shape == (3 * 2,)
    model.dual_unet.forward = lambda z, steps, *a, **k: torch.zeros_like(z)
    z, steps = torch.randn(2, 3, 4, 2, 2), torch.tensor([1, 500])
    c_skip, _, _ = model.precond.scalings(steps, z.dim())
    assert torch.allclose(model.denoise(z, steps, None), c_skip * z)
