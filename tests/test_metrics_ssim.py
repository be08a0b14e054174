"""SSIM equals scikit-image's (Wang et al. settings) on the same frames."""
import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from metrics.base import VideoSkipped
from metrics.ssim import SSIM, SSIMScorer, ssim_frames


def _pair(seed, shape=(3, 40, 48, 3)):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, shape), 0, 255).astype(np.uint8)
    return a, b


def _sk(a, b):
    return structural_similarity(a / 255.0, b / 255.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=1.0, channel_axis=-1)


def test_frame_ssim_equals_skimage():
    a, b = _pair(0)
    t = lambda x: torch.from_numpy(x).permute(0, 3, 1, 2).double() / 255
    mine = ssim_frames(t(a), t(b)).numpy()
    ref = [_sk(a[i], b[i]) for i in range(len(a))]
    np.testing.assert_allclose(mine, ref, atol=1e-4)
    assert np.abs(mine - ref).max() < 1e-5  # float32 maps, float64 means


def test_scorer_and_metric_average_over_frames():
    a, b = _pair(1)

    class V:
        frames = a
    class G:
        frames = b
    ref = np.mean([_sk(b[i], a[i]) for i in range(len(a))])
    assert SSIMScorer().score_video(V, G)["SSIM"] == pytest.approx(ref, abs=1e-4)
    m = SSIM()
    t = lambda x: torch.from_numpy(x).permute(0, 3, 1, 2).double() / 255
    m.update(t(a[:2]), t(b[:2]))
    m.update(t(a[2:]), t(b[2:]))
    assert float(m.compute()) == pytest.approx(ref, abs=1e-4)
    assert SSIMScorer().score_video(V, V)["SSIM"] == pytest.approx(1.0)


def test_frame_size_mismatch_is_skipped():
    a, _ = _pair(2)
    b, _ = _pair(3, shape=(3, 32, 48, 3))
    with pytest.raises(VideoSkipped, match="frame size mismatch"):
        SSIMScorer().score_video(a, b)
