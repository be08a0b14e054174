"""LoopyModule: both training stages (§3.4), the ablation switches, Lightning fit/predict."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from tests.loopy_tiny import make_batch, tiny_module, wake_zero_inits


def _grads(m):
    return {name for name, p in m.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}


def test_stage1_trains_image_model_only():
    m = tiny_module()
    m.set_stage("stage1")
    opt = m.configure_optimizers()
    loss = m.model_step(make_batch())
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    g = _grads(m)
    assert any(n.startswith("dual_unet.denoising_unet.") for n in g)
    assert any(n.startswith("dual_unet.reference_net.") for n in g)     # reference attention is trained
    assert not any("temporal" in n or n.startswith(("a2l", "audio_proj")) for n in g)
    trainable = {id(p) for group in opt.param_groups for p in group["params"]}
    assert not any(id(p) in trainable for p in m.dual_unet.temporal.parameters())
    assert not any(p.requires_grad for p in m.audio_encoder.parameters())


def test_stage2_trains_all_modules():
    m = tiny_module()
    wake_zero_inits(m)  # zero-initialised audio output layers pass no gradient to audio_proj at step 0
    m.set_stage("stage2")
    m.configure_optimizers()
    loss = m.model_step(make_batch(m=8))
    loss.backward()
    g = _grads(m)
    for prefix in ("dual_unet.temporal.", "audio_proj.", "a2l.", "dual_unet.denoising_unet.", "dual_unet.reference_net."):
        assert any(n.startswith(prefix) for n in g), prefix
    assert not any(n.startswith("audio_encoder.") for n in g)


@pytest.mark.parametrize("over,check", [
    (dict(a2l={"enabled": False}), lambda m: m.a2l is None),
    (dict(temporal={"layout": "single"}), lambda m: all(b.intra is None for b in m.dual_unet.temporal.values())),
    (dict(tsm={"enabled": False, "plain_frames": 4}), lambda m: m.tsm.num_output_frames == 4),
    (dict(tsm={"abstraction": "mean"}), lambda m: m.tsm.abstraction == "mean"),
])
def test_ablation_switches_train(over, check):
    m = tiny_module(**over)
    assert check(m)
    m.set_stage("stage2")
    m.configure_optimizers()
    assert torch.isfinite(m.model_step(make_batch(b=1, m=3)))


def test_missing_landmarks_is_a_clear_error():
    m = tiny_module()
    batch = make_batch(b=1)
    batch.pop("landmarks")
    with pytest.raises(ValueError, match="landmarks"):
        m.model_step(batch)
    with pytest.raises(ValueError, match="model.stages"):
        m.set_stage("stage3")
    with pytest.raises(ValueError, match="model.variance: only 'scale'"):
        tiny_module(variance={"nose_index": 99})
    with pytest.raises(ValueError, match="iBUG-68 layout"):
        m.model_step(make_batch(b=1, k=5))


def test_two_stage_fit_and_predict_with_lightning(tmp_path):
    m = tiny_module(sampling={"num_steps": 2})
    train = DataLoader([make_batch(b=1, seed=i) for i in range(2)], batch_size=None)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    for stage in ("stage1", "stage2"):
        m.set_stage(stage)
        L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False, default_root_dir=tmp_path).fit(m, train)
    after = m.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith("dual_unet.temporal.") for k in changed) and any("denoising_unet" in k for k in changed)
    item = {"reference": torch.rand(1, 3, 32, 32) * 2 - 1, "audio": torch.randn(1, 6 * 640), "num_frames": torch.tensor([6]),
            "fps": torch.tensor([25.0]), "meta": [{"video_id": "x"}]}
    out = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False).predict(m, DataLoader([item], batch_size=None))
    assert out[0]["video"].shape == (1, 6, 3, 32, 32)
    assert out[0]["video"].min() >= -1 and out[0]["video"].max() <= 1


class _BlackIsNotZeroCodec(torch.nn.Module):
    """Pixel unshuffle plus 0.5: like the SD VAE, a black frame does not encode to a zero latent."""

    def __init__(self, factor: int = 8):
        super().__init__()
        from lightning_modules.blocks.latent_codec import PixelUnshuffleCodec

        self.inner = PixelUnshuffleCodec(factor)
        self.latent_channels = self.inner.latent_channels

    def encode(self, images):
        return self.inner.encode(images) + 0.5

    def decode(self, latents):
        return self.inner.decode(latents - 0.5)


@pytest.mark.parametrize("abstraction", ["uniform", "mean"])
def test_missing_motion_frames_are_zero_latents_in_training_as_at_sampling(abstraction):
    """§3.4: ungenerated motion frames are all-zero features at sampling; training must match.

    TSM s = 2, r = 2, 2 segments over 6 preceding frames (newest first): outputs stand for frames
    0 | 1 | 2-3 | 4-5. Three real frames, then the video's start: with uniform abstraction output 3
    (frame 4) is missing; with mean pooling output 2 is frame 2 averaged with a zero, output 3 zero."""
    m = tiny_module(tsm={"abstraction": abstraction},
                    masks={"motion_frames_mask": 0.0, "reference_drop": 0.0})
    m.codec = _BlackIsNotZeroCodec(8)
    m.set_stage("stage2")
    batch = make_batch(b=1, m=8)
    batch["motion_mask"] = torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    batch["motion_frames"][:, 3:] = 0.0            # the batch contract: padded frames are exactly 0
    seen = {}
    encode_reference = m.dual_unet.encode_reference

    def spy(reference, motion=None):
        seen["motion"] = motion
        return encode_reference(reference, motion)

    m.dual_unet.encode_reference = spy
    m.model_step(batch)
    motion, real = seen["motion"][0], m.codec.encode(batch["motion_frames"][0, :3])
    assert torch.equal(motion[3], torch.zeros_like(motion[3]))
    torch.testing.assert_close(motion[:2], real[:2])
    torch.testing.assert_close(motion[2], real[2] if abstraction == "uniform" else real[2] / 2)


@pytest.mark.parametrize("schedule,expected", [(None, 1.0), ("constant", 1.0), ("linear", 0.0), ("cosine", 0.0)])
def test_a_stage_lr_schedule_sets_the_rate_at_the_stages_end(tmp_path, schedule, expected):
    """model.stages[i].lr_schedule (experiments.run.stage_lr_schedule): the rate follows diffusers' schedule
    over the stage's max_steps, ending at 0 for a decay; without one it stays model.optim.lr."""
    from experiments.run import stage_lr_schedule

    m = tiny_module()
    m.set_stage("stage2")
    train = DataLoader([make_batch(b=1, seed=i) for i in range(3)], batch_size=None)
    trainer = L.Trainer(max_steps=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    stage = {"name": "stage2", "max_steps": 3, **({"lr_schedule": schedule} if schedule else {})}
    with stage_lr_schedule(m, stage, 1):
        trainer.fit(m, train)
    assert m.lr_schedule is None  # handed back after the stage
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(expected * m.optim.lr, abs=1e-12)


def test_an_unknown_lr_schedule_or_a_module_without_one_is_refused_naming_the_key():
    from experiments.run import stage_lr_schedule

    with pytest.raises(ValueError, match=r"model\.stages\[1\]\.lr_schedule: unknown schedule 'cosin'.*cosine"):
        with stage_lr_schedule(tiny_module(), {"name": "stage2", "max_steps": 3, "lr_schedule": "cosin"}, 1):
            pass
    with pytest.raises(ValueError, match=r"model\.stages\[0\]\.lr_schedule: Module takes no"):
        with stage_lr_schedule(torch.nn.Module(), {"name": "main", "max_steps": 3, "lr_schedule": "cosine"}, 0):
            pass


def test_a_stage_snr_gamma_weighs_loopys_diffusion_loss_for_that_stage_only():
    """model.stages[i].snr_gamma (experiments.run.stage_loss_keys): Loopy's training loss takes Min-SNR
    weights during the stage and the plain MSE after it. With epsilon targets a gamma above every SNR
    weighs nothing (lightning_modules.sampling.diffusion_loss), a small one changes the loss."""
    from experiments.run import stage_loss_keys

    m = tiny_module(noise_schedule={"prediction_type": "epsilon"})
    m.set_stage("stage2")
    batch = make_batch()

    def loss():
        torch.manual_seed(0)
        with torch.no_grad():
            return m.model_step(batch).item()

    plain = loss()
    with stage_loss_keys(m, {"name": "stage2", "max_steps": 1, "snr_gamma": 1e9}, 1):
        assert loss() == pytest.approx(plain, rel=1e-5)
    with stage_loss_keys(m, {"name": "stage2", "max_steps": 1, "snr_gamma": 0.01}, 1):
        assert m.snr_gamma == 0.01
        assert loss() < 0.5 * plain  # weights min(SNR, 0.01) / SNR, far below 1 but at the last few steps
    assert m.snr_gamma is None and loss() == plain  # handed back after the stage
    with pytest.raises(ValueError, match=r"model\.stages\[0\]\.snr_gamma: Module has no Min-SNR"):
        with stage_loss_keys(torch.nn.Module(), {"name": "main", "max_steps": 3, "snr_gamma": 5}, 0):
            pass
