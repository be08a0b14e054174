"""Sampling (§3.4 "Inference"): three-branch CFG, DDIM through diffusers, the long-video loop."""

import torch

from lightning_modules.sampling import (
    combine_guidance,
    ddim_sample,
    diffusion_target,
    generate_long_video,
    make_ddim,
)
from tests.loopy_tiny import tiny_module, wake_zero_inits


def test_cfg_combination_equals_formula_on_known_tensors():
    e_audio, e_ref, e_base = torch.tensor([3.0, 1.0]), torch.tensor([2.0, 1.5]), torch.tensor([1.0, -1.0])
    out = combine_guidance([e_audio, e_ref, e_base], [5.0, 3.0])
    # 5*(3-2) + 3*(2-1) + 1 = 9 ;  5*(1-1.5) + 3*(1.5+1) - 1 = 4
    assert out.tolist() == [9.0, 4.0]
    # ratios 1 -> plain conditional
    assert torch.equal(combine_guidance([e_audio, e_ref, e_base], [1.0, 1.0]), e_audio)


def test_batched_guidance_equals_three_separate_forwards():
    m = tiny_module(guidance={"audio_ratio": 5.0, "ref_ratio": 3.0}).eval()
    wake_zero_inits(m)
    torch.manual_seed(0)
    ref, motion = torch.randn(1, 192, 4, 4), torch.randn(1, 6, 192, 4, 4)
    z, audio, lat = torch.randn(1, 4, 192, 4, 4), torch.randn(1, 4, 5, 16), torch.randn(1, m.dual_unet.time_embed_dim)
    with torch.no_grad():
        feats = m.dual_unet.encode_reference(ref, motion)
        guided = m.guided_eps(z, torch.tensor(500), feats, audio, lat)
        t, one, zero = torch.tensor([500]), torch.tensor([True]), torch.tensor([False])
        e_audio = m.dual_unet(z, t, feats, one, audio, lat)
        e_ref = m.dual_unet(z, t, feats, one, torch.zeros_like(audio), torch.zeros_like(lat))
        e_base = m.dual_unet(z, t, feats, zero, torch.zeros_like(audio), torch.zeros_like(lat))
    assert not torch.allclose(e_audio, e_ref, atol=1e-4) and not torch.allclose(e_ref, e_base, atol=1e-4)
    assert torch.allclose(guided, combine_guidance([e_audio, e_ref, e_base], [5.0, 3.0]), atol=1e-4)


def test_ddim_uses_the_requested_number_of_steps():
    sched, calls = make_ddim(), []
    out = ddim_sample(lambda z, t: calls.append(int(t)) or torch.zeros_like(z), torch.randn(2, 3), sched, 25)
    assert len(calls) == 25 and calls == sorted(calls, reverse=True) and out.shape == (2, 3)


def test_long_video_feeds_predicted_latents_newest_first():
    seen = []

    def clip_fn(i, history, mask):
        seen.append((history.clone(), mask.clone()))
        return torch.full((1, 3, 2), float(i + 1)) + torch.arange(3.0).view(1, 3, 1) / 10  # frames i+1.0, .1, .2

    out = generate_long_video(clip_fn, num_frames=8, clip_len=3, history_len=5, frame_shape=(2,), progress=False)
    assert out.shape == (1, 8, 2) and len(seen) == 3
    assert seen[0][0].abs().sum() == 0 and seen[0][1].sum() == 0        # zeros until generated
    assert torch.allclose(seen[1][0][0, :, 0], torch.tensor([1.2, 1.1, 1.0, 0.0, 0.0])) and seen[1][1][0].tolist() == [1, 1, 1, 0, 0]
    assert torch.allclose(seen[2][0][0, :, 0], torch.tensor([2.2, 2.1, 2.0, 1.2, 1.1]))
    assert torch.allclose(out[0, :, 0], torch.tensor([1.0, 1.1, 1.2, 2.0, 2.1, 2.2, 3.0, 3.1]))


def test_long_generation_reuses_cached_reference_features():
    m = tiny_module(sampling={"num_steps": 3}).eval()
    calls = []
    m.dual_unet.reference_net.register_forward_hook(lambda *a: calls.append(1))
    denoise = []
    m.dual_unet.denoising_unet.register_forward_hook(lambda mod, args, out: denoise.append(args[0].shape[0]))
    video = m.predict_step({"reference": torch.rand(1, 3, 32, 32) * 2 - 1, "audio": torch.randn(1, 10 * 640),
                            "num_frames": torch.tensor([10]), "fps": 25.0})["video"]
    assert video.shape == (1, 10, 3, 32, 32) and video.abs().max() <= 1
    assert len(calls) == 3                          # ceil(10 / 4) clips -> one reference-net call each
    assert denoise == [3 * 4] * 9                   # 3 clips x 3 steps, CFG branches batched (3 x 4 frames)


def test_diffusion_target_per_prediction_type():
    """epsilon -> the noise; v -> sqrt(a)*eps - sqrt(1-a)*z0; sample -> z0; and DDIM inverts each exactly."""
    import pytest

    z0, noise = torch.randn(3, 4, 2, 2), torch.randn(3, 4, 2, 2)
    t = torch.tensor([10, 500, 990])
    for kind in ("epsilon", "v_prediction", "sample"):
        sch = make_ddim({"prediction_type": kind})
        a = sch.alphas_cumprod[t].view(-1, 1, 1, 1)
        expected = {"epsilon": noise, "sample": z0, "v_prediction": a.sqrt() * noise - (1 - a).sqrt() * z0}[kind]
        target = diffusion_target(sch, z0, noise, t)
        torch.testing.assert_close(target, expected)
        # a perfect prediction of that target lets one DDIM step (eta=0) to t=0-ish recover z0 exactly
        zt = sch.add_noise(z0, noise, t)
        for i in range(3):
            sch.set_timesteps(1000)
            x0 = sch.step(target[i:i + 1], int(t[i]), zt[i:i + 1]).pred_original_sample
            torch.testing.assert_close(x0, z0[i:i + 1], rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match="prediction_type"):
        diffusion_target(type("S", (), {"config": type("C", (), {"prediction_type": "flow"})()})(), z0, noise, t)
