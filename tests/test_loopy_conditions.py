"""Audio-to-latents (§3.3), condition masks and dropout (§3.4), variances (appendix B.1), audio embeddings."""

import numpy as np
import pytest
import torch

from lightning_modules.loopy.audio_encoder import Wav2VecAudioEncoder, frame_windows
from lightning_modules.loopy.audio_to_latents import AudioToLatents
from lightning_modules.loopy.condition_masks import ConditionMasks
from tests.loopy_tiny import TINY_WAV2VEC, tiny_module


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


def _capture_a2l_conditions(module):
    """Record the (movement, expression) conditions the module hands to its audio-to-latents module."""
    seen = {}
    forward = module.a2l.forward

    def spy(audio, movement=None, expression=None, choice=None):
        seen.update(movement=movement, expression=expression)
        return forward(audio, movement, expression, choice)

    module.a2l.forward = spy
    return seen


def _conditions(module, landmarks):
    """Head-movement and expression variance as the A2L module receives them, before log1p."""
    seen = _capture_a2l_conditions(module)
    b = landmarks.shape[0]
    module.motion_latents(torch.zeros(b, 16), torch.full((b,), 1), landmarks)
    return torch.expm1(seen["movement"]).double(), torch.expm1(seen["expression"]).double()


def test_a2l_variances_by_hand():
    """A rigid head shift of x = 0, .1, 0, -.1 and two brow points (iBUG 19, 24) moving alike.

    Glo (Eq. 3): the nose's squared deviations 0.02 / 4 frames x 1000 = 5.
    Exp (Eqs. 4-5): each brow point has e = dx + dy = -0.10, -0.08, -0.10, -0.08 relative to the nose,
    d = +.02, -.02, +.02 (mean .02/3), squared deviations (.04/3)^2 + (.08/3)^2 + (.04/3)^2 = .0096/9,
    / 3 differences x 1000 = 32/90 per point; the rigid shift cancels; summed over the points: 64/90."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.7, size=(68, 2))
    track = np.repeat(base[None], 4, axis=0)
    nose = base[30]
    for t, dx in enumerate([0.10, 0.12, 0.10, 0.12]):
        track[t, 19] = track[t, 24] = nose + [dx, -0.2]      # above the nose (y grows downwards)
    track += np.array([0.0, 0.1, 0.0, -0.1])[:, None, None] * np.array([1.0, 0.0])
    mov, exp = _conditions(tiny_module(), torch.from_numpy(track).float()[None])
    assert float(mov[0]) == pytest.approx(5.0, rel=1e-4)
    assert float(exp[0]) == pytest.approx(64 / 90, rel=1e-3)


def test_a2l_variances_equal_the_glo_exp_metrics_on_the_same_track():
    """Appendix B.1: the A2L conditions are the evaluation's Glo and Exp (one implementation)."""
    from metrics.motion import glo_exp

    rng = np.random.default_rng(3)
    t = 12
    base = rng.uniform(0.3, 0.7, size=(68, 2))
    tracks = []
    for _ in range(2):  # a talking face: head sway, brows, blinks, moving mouth and jaw
        tr = np.repeat(base[None], t, axis=0) + rng.normal(0, 0.002, size=(t, 68, 2))
        tr += rng.normal(0, 0.02, size=(t, 1, 2)).cumsum(0)
        tr[:, 17:27, 1] += 0.01 * np.sin(np.arange(t) / 2.0)[:, None]
        tr[:, 36:48, 1] += rng.normal(0, 0.005, size=(t, 12))
        tr[:, 48:68] += rng.normal(0, 0.02, size=(t, 20, 2))
        tr[:, 3:14, 1] += rng.normal(0, 0.01, size=(t, 11))
        tracks.append(tr)
    mov, exp = _conditions(tiny_module(), torch.from_numpy(np.stack(tracks)).float())
    for i, tr in enumerate(tracks):
        want = glo_exp(tr)
        assert float(mov[i]) == pytest.approx(want["Glo"], rel=1e-3)
        assert float(exp[i]) == pytest.approx(want["Exp"], rel=1e-3)


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
