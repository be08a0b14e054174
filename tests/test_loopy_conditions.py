"""Audio-to-latents (§3.3), condition masks and dropout (§3.4), variances (appendix B.1), audio embeddings."""

import numpy as np
import pytest
import torch

from lightning_modules.loopy.audio_encoder import Wav2VecAudioEncoder, frame_windows
from lightning_modules.loopy.audio_to_latents import AudioToLatents
from lightning_modules.loopy.condition_masks import ConditionMasks
from lightning_modules.loopy.motion_variance import expression_variance, head_movement_variance
from tests.loopy_tiny import TINY_WAV2VEC


def test_a2l_paper_shapes_and_parameters():
    a2l = AudioToLatents(audio_dim=768)
    assert a2l.embeddings.shape == (128, 256)
    assert {k: v.out_features for k, v in a2l.query.items()} == {"audio": 256, "movement": 256, "expression": 256}
    out = a2l(torch.randn(3, 768))
    assert out.shape == (3, 1280)


def test_a2l_condition_sampling_is_uniform():
    c = AudioToLatents.sample_conditions(60000, torch.Generator().manual_seed(0))
    freq = torch.bincount(c, minlength=3).float() / c.numel()
    assert torch.allclose(freq, torch.full((3,), 1 / 3), atol=0.01)


def test_a2l_routes_each_sample_to_its_condition():
    torch.manual_seed(0)
    a2l = AudioToLatents(audio_dim=8, out_dim=12, num_embeddings=16, dim=8)
    audio, mov, exp = torch.randn(3, 8), torch.rand(3), torch.rand(3)
    choice = torch.tensor([0, 1, 2])
    out = a2l(audio, mov, exp, choice)
    other = a2l(torch.randn(3, 8), mov, exp, choice)  # audio changes: only the audio row may change
    assert not torch.allclose(out[0], other[0]) and torch.allclose(out[1:], other[1:])
    assert torch.allclose(out[0], a2l(audio)[0])      # audio-only (sampling) path equals choice 0
    swapped = a2l(audio, exp, mov, choice)             # variances swapped: rows 1 and 2 change
    assert not torch.allclose(out[1:], swapped[1:])


def test_condition_mask_rates():
    keep = ConditionMasks()(200000, generator=torch.Generator().manual_seed(0))
    rate = lambda x: 1 - x.float().mean().item()  # noqa: E731
    assert rate(keep.audio) == pytest.approx(0.10, abs=0.004)
    assert rate(keep.motion_latents) == pytest.approx(0.10, abs=0.004)
    assert rate(keep.reference) == pytest.approx(0.15, abs=0.004)
    # motion frames: dropped with the reference, otherwise masked 40 % independently
    assert not keep.motion_frames[~keep.reference].any()
    assert 1 - keep.motion_frames[keep.reference].float().mean().item() == pytest.approx(0.40, abs=0.005)
    both = (~keep.audio & ~keep.reference).float().mean().item()
    assert both == pytest.approx(0.10 * 0.15, abs=0.002)  # independent draws


def test_condition_mask_bad_probability_names_key():
    with pytest.raises(ValueError, match="model.masks.reference_drop"):
        ConditionMasks(reference_drop=1.5)


def test_variances_match_closed_forms():
    rng = np.random.default_rng(0)
    lm = rng.random((2, 12, 5, 2)).astype(np.float32)
    lm[:, :, 0, 1] = 0.5                       # nose at index 0 in the middle
    lm[:, :, 1:3, 1] = rng.uniform(0.1, 0.4, (2, 12, 2))   # two upper-face points
    lm[:, :, 3:, 1] = rng.uniform(0.6, 0.9, (2, 12, 2))    # mouth points (below the nose): excluded
    nose = lm[:, :, 0]
    glo = ((nose - nose.mean(1, keepdims=True)) ** 2).sum(-1).mean(1) * 1000
    e = ((lm[:, :, 1:3] - lm[:, :, :1]).sum(-1)).sum(-1)
    d = np.diff(e, axis=1)
    exp = ((d - d.mean(1, keepdims=True)) ** 2).mean(1) * 1000
    t = torch.from_numpy(lm)
    assert np.allclose(head_movement_variance(t, 0).numpy(), glo, rtol=1e-5)
    assert np.allclose(expression_variance(t, 0).numpy(), exp, rtol=1e-4)


def test_five_frame_audio_window():
    f = torch.arange(6, dtype=torch.float32).view(1, 6, 1)
    w = frame_windows(f)[0, :, :, 0]
    assert w.shape == (6, 5)
    assert w[2].tolist() == [0, 1, 2, 3, 4] and w[0].tolist() == [0, 0, 0, 1, 2] and w[5].tolist() == [3, 4, 5, 5, 5]


def test_wav2vec_loader_reads_a_saved_checkpoint(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(3)
    ref = Wav2Vec2Model(Wav2Vec2Config(**TINY_WAV2VEC))
    ref.save_pretrained(tmp_path / "w2v")
    enc = Wav2VecAudioEncoder(str(tmp_path / "w2v"))
    for (k, a), b in zip(ref.state_dict().items(), enc.model.state_dict().values()):
        assert torch.equal(a, b), k
    feats = enc(torch.randn(2, 16000), num_frames=25)
    assert feats.shape == (2, 25, 16 * 3)  # every hidden state (embeddings + 2 layers) concatenated
    with pytest.raises(FileNotFoundError, match="model.audio.wav2vec_path"):
        Wav2VecAudioEncoder(str(tmp_path / "missing"))
