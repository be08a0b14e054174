"""Dual U-Net (§3.1): reference attention, motion-frame features for the inter-clip layer, SD loading,
and the paper-scale model on the meta device."""

import pytest
import torch
from omegaconf import OmegaConf

from lightning_modules.build import build_model
from lightning_modules.loopy import LoopyModule
from lightning_modules.loopy.dual_unet import DualUNet
from lightning_modules.loopy.temporal_layers import LoopyTemporalBlock
from tests.loopy_tiny import REPO, TINY_UNET, tiny_kwargs, wake_zero_inits


def _dual(**kw):
    torch.manual_seed(0)
    d = DualUNet(dict(TINY_UNET), audio_dim=16, temporal_heads=2, **kw).eval()
    wake_zero_inits(d)
    return d


def test_every_residual_block_has_temporal_layers_and_every_self_attention_reads_the_reference():
    d = _dual()
    n_res = sum(1 for n, _ in d.denoising_unet.named_modules() if n.endswith(tuple(f"resnets.{i}" for i in range(3))))
    assert len(d.temporal) == n_res == 8  # down 1 + 1, mid 2, up 2 + 2 (layers_per_block + 1 per up block)
    assert all(isinstance(b, LoopyTemporalBlock) and b.intra is not None for b in d.temporal.values())
    single = _dual(layout="single")
    assert all(b.intra is None for b in single.temporal.values())
    ref = torch.randn(2, 192, 4, 4)
    feats = d.encode_reference(ref)
    attn1 = [n for n in d.denoising_unet.attn_processors if n.endswith("attn1.processor")]
    assert sorted(feats.attn) == sorted(attn1) and len(attn1) > 0
    assert all(v.shape[0] == 2 for v in feats.attn.values())


def test_reference_features_enter_spatial_attention_unless_dropped():
    d = _dual()
    z, t = torch.randn(2, 1, 192, 4, 4), torch.tensor([10, 900])
    with torch.no_grad():
        fa, fb = d.encode_reference(torch.randn(2, 192, 4, 4)), d.encode_reference(torch.randn(2, 192, 4, 4))
        keep = torch.tensor([True, False])
        ea, eb = d(z, t, fa, keep, temporal=False), d(z, t, fb, keep, temporal=False)
    assert not torch.allclose(ea[0], eb[0], atol=1e-5)      # kept: output depends on the reference
    assert torch.allclose(ea[1], eb[1], atol=1e-6)          # dropped: no reference keys at all


def test_motion_features_enter_inter_clip_layer_only_in_stage2_and_with_reference():
    d = _dual()
    ref, z, t = torch.randn(2, 192, 4, 4), torch.randn(2, 3, 192, 4, 4), torch.tensor([300, 300])
    audio = torch.randn(2, 3, 5, 16)
    with torch.no_grad():
        fa, fb = d.encode_reference(ref, torch.randn(2, 5, 192, 4, 4)), d.encode_reference(ref, torch.randn(2, 5, 192, 4, 4))
        assert all(v.shape[:2] == (2, 5) for v in fa.motion.values()) and len(fa.motion) == len(d.temporal)
        keep = torch.tensor([True, False])
        ea, eb = d(z, t, fa, keep, audio), d(z, t, fb, keep, audio)
        assert not torch.allclose(ea[0], eb[0], atol=1e-5)
        assert torch.allclose(ea[1], eb[1], atol=1e-6)      # reference dropped -> motion frames dropped too
        sa, sb = d(z, t, fa, keep, audio, temporal=False), d(z, t, fb, keep, audio, temporal=False)
        assert torch.allclose(sa, sb, atol=1e-6)            # stage 1: no temporal layers
        ec = d(z, t, fa, keep, torch.randn_like(audio))
        assert not torch.allclose(ea, ec, atol=1e-5)        # audio cross-attention is live


def test_sd_folder_loads_into_both_nets(tmp_path):
    from diffusers import AutoencoderKL, UNet2DConditionModel

    torch.manual_seed(5)
    unet_cfg = {**TINY_UNET, "in_channels": 4, "out_channels": 4}
    unet = UNet2DConditionModel(**unet_cfg)
    vae = AutoencoderKL(block_out_channels=[8, 8], down_block_types=["DownEncoderBlock2D"] * 2,
                        up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=4, norm_num_groups=4, sample_size=32)
    unet.save_pretrained(tmp_path / "sd" / "unet")
    vae.save_pretrained(tmp_path / "sd" / "vae")
    m = LoopyModule(**tiny_kwargs(pretrained={"path": str(tmp_path / "sd")}, unet={"in_channels": 4, "out_channels": 4}))
    saved = unet.state_dict()
    for net in (m.dual_unet.reference_net, m.dual_unet.denoising_unet):
        loaded = net.state_dict()
        assert set(saved) == set(loaded)
        assert all(torch.equal(saved[k], loaded[k]) for k in saved)
    assert all(torch.equal(v, m.codec.vae.state_dict()[k]) for k, v in vae.state_dict().items())
    assert m.codec.factor == 2 and m.codec.latent_channels == 4
    with pytest.raises(FileNotFoundError, match="model.pretrained.path"):
        LoopyModule(**tiny_kwargs(pretrained={"path": str(tmp_path / "nothing")}))


def test_paper_scale_on_meta_device_has_sd15_shapes():
    model_cfg = OmegaConf.load(REPO / "experiments/configs/model/loopy.yaml")
    with torch.device("meta"):
        m = build_model(model_cfg)
    assert isinstance(m, LoopyModule)
    counts = m.parameter_counts()
    # SD 1.5's U-Net has 859,520,964 parameters; the reference net copies its structure
    assert counts["denoising_unet"] == counts["reference_net"] == 859_520_964
    assert m.dual_unet.time_embed_dim == 1280 and m.a2l.proj_out.out_features == 1280
    assert m.audio_encoder.feature_dim == 13 * 768                   # wav2vec2-base, all hidden states
    assert (m.tsm.num_input_frames, m.tsm.num_output_frames) == (124, 20)
    widths = sorted({b.inter.norm.normalized_shape[0] for b in m.dual_unet.temporal.values()})
    assert widths == [320, 640, 1280] and len(m.dual_unet.temporal) == 22
    assert all(v > 0 for k, v in counts.items() if k != "latent_codec_frozen")


def test_deep_copy_runs_its_own_layers():
    import copy

    d = _dual()
    c = copy.deepcopy(d)
    ref, z, t = torch.randn(1, 192, 4, 4), torch.randn(1, 2, 192, 4, 4), torch.tensor([300])
    audio = torch.randn(1, 2, 5, 16)
    with torch.no_grad():
        feats = c.encode_reference(ref, torch.randn(1, 3, 192, 4, 4))
        assert (c.reference_calls, d.reference_calls) == (1, 0) and len(feats.motion) == len(c.temporal)
        # identical weights: identical outputs (a hook still bound to the original would skip its layers)
        assert torch.allclose(c(z, t, feats, None, audio), d(z, t, feats, None, audio), atol=1e-6)
        for p in c.temporal.parameters():
            p.mul_(3.0)
        out_c, out_d = c(z, t, feats, None, audio), d(z, t, feats, None, audio)
    assert not torch.allclose(out_c, out_d, atol=1e-5)   # the copy runs its own (scaled) temporal layers


def test_inter_clip_layer_sees_motion_frames_oldest_first():
    """The TSM hands motion frames newest first; the inter-clip layer must lay them out in time order,
    oldest at position 0 and the newest at M-1, next to the first noisy frame (position M)."""
    from lightning_modules.blocks.attention import TemporalSelfAttention
    from lightning_modules.loopy.temporal_layers import InterClipTemporalLayer

    torch.manual_seed(0)
    layer = InterClipTemporalLayer(8, 2)
    torch.nn.init.normal_(layer.attn.to_out[0].weight, std=0.5)   # a trained layer: output not zero
    x = torch.randn(1, 3, 8, 2, 2)
    m0, m1, m2, m3 = torch.randn(4, 1, 1, 8, 2, 2)               # m0 the newest ... m3 the oldest
    newest_first = torch.cat([m0, m1, m2, m3], 1)                # what the TSM returns
    time_order = torch.cat([m3, m2, m1, m0], 1)                  # written out by hand
    got = layer(x, newest_first)
    # the base layer takes its prefix as given, position 0 first (its docstring: oldest to newest)
    torch.testing.assert_close(got, TemporalSelfAttention.forward(layer, x, time_order))
    assert not torch.allclose(got, TemporalSelfAttention.forward(layer, x, newest_first), atol=1e-4)
