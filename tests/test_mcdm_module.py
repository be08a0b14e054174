"""MCDM LightningModule: stage freezing (§3.5), training losses, constant-state long-video sampling,
pretrained loaders on folders written in the official layouts, configs."""

import os

import pytest
import torch
from omegaconf import OmegaConf

from lightning_modules.build import build_model
from lightning_modules.mcdm import MCDMModule

torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

UNET = dict(sample_size=4, in_channels=192, out_channels=192, block_out_channels=[16, 32], layers_per_block=1,
            attention_head_dim=8, cross_attention_dim=16, norm_num_groups=8,
            down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"], up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"])
WAV2VEC = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
               conv_dim=[16] * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
CLIP = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32,
            patch_size=8, projection_dim=16)


def mcdm_kwargs(**over) -> dict:
    """Every constructor key of a tiny MCDM (CPU, seconds; the module has no defaults); ``over`` merges into
    the groups."""
    kw = dict(num_frames=4, fps=25.0, stages=[{"name": "stage1"}, {"name": "stage2"}, {"name": "stage3"}],
              pretrained={"path": None},
              latent={"factor": 8, "vae": None, "vae_path": None, "autoencoder": None},
              unet=UNET,
              archived={"enabled": True, "encoder": "vae_patchify", "aggregator": "frame_aligned",
                        "num_frames": 2, "num_tokens": 4, "num_queries": 2, "patch_size": 2},
              present={"source": "motion", "heads": 2},
              mta={"kind": "memory", "heads": 2, "nb_features": 8, "alpha": 0.1},
              motion_prior={"layers": 1, "dim": 16, "heads": 2, "motion_dim": 8, "encoder_hidden": 16,
                            "landmark_drop": 0.5, "use_landmarks": False},
              audio={"wav2vec_path": None, "random_config": WAV2VEC, "context_frames": 1},
              image={"clip_path": None, "random_config": CLIP}, optim={"lr": 1e-3, "weight_decay": 0.01},
              guidance={"scale": 2.0, "present_drop": 0.1}, sampling={"num_steps": 2}, noise_schedule={})
    for k, v in over.items():
        kw[k] = {**kw[k], **v} if isinstance(v, dict) else v
    return kw


def make_module(**over) -> MCDMModule:
    torch.manual_seed(0)
    return MCDMModule(**mcdm_kwargs(**over))


def make_batch(b=2, t=4, m=3, size=32):
    g = torch.Generator().manual_seed(1)
    return dict(frames=torch.rand(b, t, 3, size, size, generator=g) * 2 - 1,
                reference=torch.rand(b, 3, size, size, generator=g) * 2 - 1,
                motion_frames=torch.rand(b, m, 3, size, size, generator=g) * 2 - 1,
                motion_mask=torch.tensor([[1.0, 1.0, 0.0]] * b), audio=torch.randn(b, (t + 2) * 640, generator=g),
                landmarks=0.3 + 0.4 * torch.rand(b, t, 68, 2, generator=g), landmark_mask=torch.ones(b),
                meta=[{}] * b)


@pytest.fixture(scope="module")
def module():
    return make_module()


def _trainable(mod):
    return {n.split(".")[0] + ("." + n.split(".")[1] if n.startswith("unet.") else "")
            for n, p in mod.named_parameters() if p.requires_grad}


def test_stage_freezing(module):
    module.set_stage("stage1")
    assert _trainable(module) == {"archived", "unet.unet"}
    module.set_stage("stage2")
    assert _trainable(module) == {"motion_prior", "motion_encoders"}
    module.set_stage("stage3")
    assert _trainable(module) == {"unet.present_ref", "unet.temporal"}
    for frozen in (module.audio_encoder, module.image_encoder, module.codec):
        assert not any(p.requires_grad for p in frozen.parameters())
    with pytest.raises(ValueError, match="stage4"):
        module.set_stage("stage4")


@pytest.mark.parametrize("stage", ["stage1", "stage2", "stage3"])
def test_training_step_updates_only_the_stage(module, stage):
    module.set_stage(stage)
    opt = module.configure_optimizers()
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    loss = module.prior_loss(make_batch()) if stage == "stage2" else module.denoise_loss(make_batch())
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    opt.step()
    opt.zero_grad()
    changed = {n for n, p in module.named_parameters() if not torch.equal(p, before[n])}
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert changed and changed <= trainable


def test_long_video_state_is_constant_and_memory_carries(module):
    module.eval()
    ref, audio = make_batch(b=1)["reference"], torch.randn(1, 11 * 640)
    got = []
    out = module.generate(ref, audio, 10, 25.0, on_clip=lambda i, v: got.append(v.shape), progress=False)
    assert out is None and [s[1] for s in got] == [4, 4, 2]      # streamed, last clip cut to length
    sizes = {k: v.shape for k, v in module.unet._memory.items()}
    assert sizes and all(s[0] == 2 for s in sizes.values())      # cond + uncond branch, one state each
    # the memory has one state per layer, whatever the video length
    module.generate(ref, audio, 4, 25.0, progress=False)
    assert {k: v.shape for k, v in module.unet._memory.items()} == sizes
    video = module.predict_step({"reference": ref, "audio": audio, "num_frames": torch.tensor([6]), "fps": 25.0})["video"]
    assert video.shape == (1, 6, 3, 32, 32) and video.min() >= -1 and video.max() <= 1


@pytest.mark.parametrize("over", [{"archived": {"enabled": False}}, {"present": {"source": "audio"}},
                                  {"mta": {"kind": "standard"}}, {"archived": {"aggregator": "qformer"}},
                                  {"archived": {"encoder": "reference_unet"}}])
def test_ablation_variants_train_and_sample(over):
    mod = make_module(**over)
    mod.set_stage("stage3")
    loss = mod.denoise_loss(make_batch())
    loss.backward()
    assert torch.isfinite(loss)
    mod.eval()
    assert mod.generate(make_batch(b=1)["reference"], torch.randn(1, 6 * 640), 5, 25.0, progress=False).shape[1] == 5


def test_bad_config_names_the_key():
    with pytest.raises(ValueError, match="model.mta.kind"):
        make_module(mta={"kind": "sparse"})
    with pytest.raises(ValueError, match="model.archived.num_tokens"):
        make_module(archived={"num_tokens": 256}).denoise_loss(make_batch())


def test_pretrained_loaders_read_official_layouts(tmp_path):
    from diffusers import UNet2DConditionModel
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from lightning_modules.mcdm.denoising_unet import build_sd_unet
    from lightning_modules.mcdm.image_encoder import ClipImageEncoder

    torch.manual_seed(3)
    UNet2DConditionModel(**UNET).save_pretrained(tmp_path / "sd" / "unet")
    unet = build_sd_unet(str(tmp_path / "sd"), None)
    ref = UNet2DConditionModel.from_pretrained(tmp_path / "sd", subfolder="unet")
    assert all(torch.equal(a, b) for a, b in zip(unet.state_dict().values(), ref.state_dict().values()))
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**CLIP))
    clip.save_pretrained(tmp_path / "clip")
    enc = ClipImageEncoder(str(tmp_path / "clip"))
    key = "vision_model.embeddings.patch_embedding.weight"
    assert torch.equal(enc.model.state_dict()[key], clip.state_dict()[key])
    with pytest.raises(FileNotFoundError, match="model.image.clip_path"):
        ClipImageEncoder(str(tmp_path / "missing"))


def test_configs_compose_for_every_variant():
    model = OmegaConf.load(os.path.join(ROOT, "experiments/configs/model/mcdm.yaml"))
    assert model.archived.num_frames == 16 and model.archived.num_tokens == 256 and model.archived.num_queries == 16
    assert model.mta.alpha == 0.1 and model.motion_prior.layers == 8 and model.optim.lr == 1e-5
    for name in ("ablation/mcdm_components", "ablation/mcdm_variants", "ablation/mcdm_alpha", "table/mcdm_long_term"):
        exp = OmegaConf.load(os.path.join(ROOT, f"experiments/configs/{name}.yaml")).experiment
        for label, over in exp.variants.items():
            cfg = model.copy()
            for key, value in over.items():
                assert key.startswith("model."), (name, label, key)
                assert OmegaConf.select(cfg, key[len("model."):]) is not None, (name, label, key)
                OmegaConf.update(cfg, key[len("model."):], value)


def test_paper_scale_on_meta_device_reports_parameter_counts(monkeypatch):
    """scale=paper shapes (§4.1) without weights or memory: SD 1.5 U-Net + VAE, wav2vec2-base, CLIP ViT-L/14."""
    for var in ("MCDM_SD15_PATH", "MCDM_WAV2VEC2_PATH", "MCDM_CLIP_PATH"):
        monkeypatch.delenv(var, raising=False)
    with torch.device("meta"):
        m = build_model(OmegaConf.load(os.path.join(ROOT, "experiments/configs/model/mcdm.yaml")))
    assert isinstance(m, MCDMModule)
    counts = m.parameter_counts()
    # transformers builds wav2vec2's masked_spec_embed with torch.Tensor(), which ignores the device context
    on_cpu = [n for n, p in m.named_parameters() if not p.is_meta]
    assert on_cpu == ["audio_encoder.model.masked_spec_embed"], on_cpu
    assert counts["unet"] == 859_520_964                                 # SD 1.5's U-Net, unchanged
    assert counts["image_encoder_frozen"] == 303_966_208                # CLIP ViT-L/14 vision tower
    assert counts["audio_encoder_frozen"] == 94_371_712                 # wav2vec2-base
    assert counts["latent_codec_frozen"] == 83_653_863                  # SD 1.5 VAE
    for part in ("archived_clip", "present_reference_attention", "memory_temporal_attention", "motion_prior"):
        assert counts[part] > 1_000_000, counts


def _loss(mod, batch, seed=0):
    """Stage-3 loss with the same noise, timesteps and guidance dropout for every call."""
    torch.manual_seed(seed)
    with torch.no_grad():
        return float(mod.denoise_loss(batch))


def _replaced(batch, key, seed=7):
    other = dict(batch)
    other[key] = torch.rand(batch[key].shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return other


def test_without_archived_frames_the_denoiser_still_sees_the_reference():
    """Table 4 "w/o F_a" omits the historical frames only (§4.3): the archived-clip prior stays, every
    slot filled from the reference, so the stage-3 loss depends on the reference and not on the history."""
    mod = make_module(archived={"enabled": False})
    mod.set_stage("stage3")
    batch = make_batch()
    base = _loss(mod, batch)
    assert _loss(mod, _replaced(batch, "reference")) != base
    assert _loss(mod, _replaced(batch, "motion_frames")) == base
    full = make_module()
    full.set_stage("stage3")
    assert _loss(full, _replaced(batch, "motion_frames")) != _loss(full, batch)  # the full model reads them


def test_b2_motion_memory_is_fed_by_the_reference_unet():
    """Table 5 B2 (reference U-Net instead of VAE + patchify) has no F_ac; its motion memory holds what the
    reference attention draws from the reference U-Net, so it is not zero and follows the reference."""
    mod = make_module(archived={"encoder": "reference_unet"})
    mod.set_stage("stage3")
    batch = make_batch()

    def memory(b):
        _loss(mod, b)
        return {k: v.clone() for k, v in mod.unet._pending.items()}

    first, other = memory(batch), memory(_replaced(batch, "reference"))
    assert first and all(v.abs().amax() > 0 for v in first.values())
    assert any(not torch.allclose(first[k], other[k]) for k in first)


def _wake_mta(mod, std=0.5):
    """Trained MTA layers: non-zero output projections (they start at zero, a no-op)."""
    g = torch.Generator().manual_seed(2)
    for layer in mod.unet.temporal.values():
        with torch.no_grad():
            layer.attn.to_out.weight.copy_(torch.randn(layer.attn.to_out.weight.shape, generator=g) * std)


def test_a_clip_changes_when_the_memory_from_the_previous_clip_changes():
    """§3.4 / §3.5 Inference: the MTA memory carries from one clip to the next. Changing the memory the
    first clip leaves behind must change the second clip, and nothing of the first."""
    mod = make_module()
    _wake_mta(mod)
    mod.eval()
    ref = make_batch(b=1)["reference"]
    audio = torch.randn(1, 11 * 640, generator=torch.Generator().manual_seed(3))
    commit = mod.unet.commit_memory

    def clips(perturb: bool):
        def perturbed_commit():
            commit()
            if perturb:
                mod.unet._memory = {k: 3 * v + 1 for k, v in mod.unet._memory.items()}

        out = []
        mod.unet.commit_memory = perturbed_commit
        try:
            torch.manual_seed(0)
            mod.generate(ref, audio, 8, 25.0, on_clip=lambda i, v: out.append(v), progress=False)
        finally:
            del mod.unet.commit_memory
        return out

    plain, perturbed = clips(False), clips(True)
    assert len(plain) == 2
    assert torch.equal(plain[0], perturbed[0])
    assert (plain[1] - perturbed[1]).abs().amax() > 1e-3
