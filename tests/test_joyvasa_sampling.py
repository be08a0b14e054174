"""JoyVASA sampling: CFG (Eq. 3), x0-prediction DDIM, and seamless sliding windows (§3.4)."""

import pytest
import torch
from diffusers import DDIMScheduler

from lightning_modules.joyvasa.audio_to_motion import AudioToMotionDiT, sliding_window_motion
from lightning_modules.sampling import combine_guidance, ddim_sample


def x0_window(denoise, noise, scheduler, num_steps):
    """One window of x0-prediction DDIM, as the module runs it."""
    return ddim_sample(lambda x, t: denoise(x, t.expand(x.shape[0])), noise, scheduler, num_steps,
                       prediction_type="sample")

torch.set_num_threads(1)


def tiny_dit(**kw):
    torch.manual_seed(0)
    return AudioToMotionDiT(motion_dim=10, audio_dim=6, width=16, layers=1, heads=2, w_cur=8, w_pre=3,
                            dropout=0.0, **kw).eval()


def test_cfg_formula():
    a, n = torch.tensor([3.0, -1.0]), torch.tensor([1.0, 1.0])
    assert torch.equal(combine_guidance([a, n], [1.0]), a)
    assert torch.equal(combine_guidance([a, n], [0.0]), n)
    # 1 + 2.5*2 = 6, 1 + 2.5*(-2) = -4
    assert torch.allclose(combine_guidance([a, n], [2.5]), n + 2.5 * (a - n))
    assert torch.allclose(combine_guidance([a, n], [2.5]), torch.tensor([6.0, -4.0]))


def test_guided_is_eq3_over_two_denoiser_calls():
    dit = tiny_dit()
    g = torch.Generator().manual_seed(0)
    x_t, audio = torch.randn(2, 8, 10, generator=g), torch.randn(2, 8, 6, generator=g)
    x_prev, a_prev = torch.randn(2, 3, 10, generator=g), torch.randn(2, 3, 6, generator=g)
    t = torch.tensor([5, 700])
    with torch.no_grad():
        cond = dit(x_t, t, audio, x_prev, a_prev, audio_keep=torch.ones(2, dtype=torch.bool))
        null = dit(x_t, t, audio, x_prev, a_prev, audio_keep=torch.zeros(2, dtype=torch.bool))
        guided = dit.guided(x_t, t, audio, x_prev, a_prev, 3.0)
    assert guided.shape == (2, 3 + 8, 10)
    assert not torch.allclose(cond, null)  # the audio matters
    assert torch.allclose(guided, null + 3.0 * (cond - null), atol=1e-5)


def test_denoiser_shapes_start_features_and_truncation():
    dit = tiny_dit()
    g = torch.Generator().manual_seed(1)
    x_t, audio = torch.randn(2, 5, 10, generator=g), torch.randn(2, 5, 6, generator=g)  # truncated window
    x_prev, a_prev = torch.randn(2, 3, 10, generator=g), torch.randn(2, 3, 6, generator=g)
    t = torch.tensor([1, 1])
    with torch.no_grad():
        first = dit(x_t, t, audio)  # first window: learnable start features
        mixed = dit(x_t, t, audio, x_prev, a_prev, is_start=torch.tensor([True, False]))
        given = dit(x_t, t, audio, x_prev, a_prev)
    assert first.shape == (2, 8, 10)
    assert torch.allclose(mixed[0], first[0], atol=1e-6) and torch.allclose(mixed[1], given[1], atol=1e-6)
    with pytest.raises(ValueError, match="model.dit.width"):
        AudioToMotionDiT(10, 6, width=15, heads=2)


def test_ddim_with_x0_prediction_reaches_the_predicted_motion():
    sched = DDIMScheduler(num_train_timesteps=1000, prediction_type="sample", clip_sample=False)
    target = torch.linspace(-2, 2, 30).view(1, 10, 3)
    out = x0_window(lambda x, t: target, torch.randn(1, 10, 3), sched, 25)
    assert torch.allclose(out, target, atol=1e-4)
    with pytest.raises(ValueError, match="prediction_type"):
        x0_window(lambda x, t: target, torch.randn(1, 10, 3), DDIMScheduler(), 5)


def test_sliding_windows_join_without_seam():
    """A window model that continues its previous motion by the audio's increments: joined windows must
    equal the one-piece cumulative sum, so the step across every window edge is an ordinary step."""
    w_cur, w_pre, n = 8, 3, 29  # 4 windows, the last one cut
    i = torch.arange(n, dtype=torch.float32)
    audio = torch.stack([0.1 * torch.cos(i / 5), i], -1)[None]  # channel 1 carries the frame index
    calls = []

    def window(a_cur, x_prev, a_prev):
        calls.append(None if a_prev is None else a_prev[0, :, 1].tolist())
        start = torch.zeros(1, 1, 1) if x_prev is None else x_prev[:, -1:]
        if x_prev is not None:  # the previous motion handed over is the last w_pre generated frames
            assert x_prev.shape[1] == w_pre
        return start + a_cur[..., :1].cumsum(1)

    motion = sliding_window_motion(window, audio, w_cur, w_pre)
    expect = audio[..., :1].cumsum(1)
    assert motion.shape == (1, n, 1)
    assert torch.allclose(motion, expect, atol=1e-5)
    edges = [w_cur * k for k in range(1, 4)]
    step = motion[0, :, 0].diff().abs()
    assert step[[e - 1 for e in edges]].max() <= 0.1 + 1e-5  # bound: |a| <= 0.1 per frame, at edges too
    assert calls[0] is None and calls[1] == [5.0, 6.0, 7.0] and calls[3] == [21.0, 22.0, 23.0]


def test_trained_dit_windows_are_continuous():
    """A tiny DiT trained briefly on audio-locked smooth motion keeps the edge step within 2x the
    median step inside windows (measured: 1.1x trained, 4.0x untrained)."""
    torch.manual_seed(0)
    w_cur, w_pre = 12, 4
    dit = AudioToMotionDiT(motion_dim=2, audio_dim=2, width=32, layers=2, heads=4, w_cur=w_cur, w_pre=w_pre,
                           dropout=0.0)
    sched = DDIMScheduler(num_train_timesteps=100, prediction_type="sample", clip_sample=False,
                          beta_schedule="linear", beta_start=1e-4, beta_end=0.05)
    opt = torch.optim.Adam(dit.parameters(), lr=3e-3)

    def data(b, n, phase):
        ph = phase[:, None] + 0.25 * torch.arange(n)[None]
        return torch.stack([ph.sin(), ph.cos()], -1), torch.stack([ph.sin(), ph.cos()], -1)  # motion, audio

    for _ in range(250):
        m, a = data(16, w_pre + w_cur, torch.rand(16) * 6.28)
        t = torch.randint(0, 100, (16,))
        x_t = sched.add_noise(m[:, w_pre:], torch.randn_like(m[:, w_pre:]), t)
        pred = dit(x_t, t, a[:, w_pre:], m[:, :w_pre], a[:, :w_pre])
        loss = (pred - m).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    dit.eval()
    _, audio = data(1, 4 * w_cur, torch.zeros(1))
    gen = torch.Generator().manual_seed(0)

    def window(a_cur, x_prev, a_prev):
        noise = torch.randn(1, a_cur.shape[1], 2, generator=gen)
        return x0_window(lambda x, t: dit.guided(x, t, a_cur, x_prev, a_prev, 1.0)[:, w_pre:], noise, sched,
                         10)

    motion = sliding_window_motion(window, audio, w_cur, w_pre)[0]
    step = motion.diff(dim=0).norm(dim=-1)
    edges = torch.tensor([w_cur * k - 1 for k in range(1, 4)])
    inner = torch.ones_like(step, dtype=torch.bool)
    inner[edges] = False
    assert step[edges].max() <= 2.0 * step[inner].median(), (step[edges], step[inner].median())
