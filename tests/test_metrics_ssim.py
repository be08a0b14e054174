"""SSIM equals scikit-image's (Wang et al. settings) on the same frames."""
import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from metrics.base import VideoSkipped
from metrics.ssim import SSIMScorer, ssim_frames


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


def test_scorer_averages_over_frames():
    a, b = _pair(1)

    class V:
        frames = a
    class G:
        frames = b
    ref = np.mean([_sk(b[i], a[i]) for i in range(len(a))])
    assert SSIMScorer().score_video(V, G)["SSIM"] == pytest.approx(ref, abs=1e-4)
    assert SSIMScorer().score_video(V, V)["SSIM"] == pytest.approx(1.0)


def test_frame_size_mismatch_is_skipped():
    a, _ = _pair(2)
    b, _ = _pair(3, shape=(3, 32, 48, 3))
    with pytest.raises(VideoSkipped, match="frame size mismatch"):
        SSIMScorer().score_video(a, b)


def test_ssim_at_frame_k_is_that_frame_alone():
    a, b = _pair(4, shape=(6, 40, 48, 3))
    s = SSIMScorer(at_frames=[1, 4, 9], mean=False).score_video(a, b)
    # frame numbers are 1-based; frame 9 is past the 6-frame video and gives no value
    assert set(s) == {"SSIM@1", "SSIM@4"}
    assert s["SSIM@1"] == pytest.approx(_sk(a[0], b[0]), abs=1e-5)
    assert s["SSIM@4"] == pytest.approx(_sk(a[3], b[3]), abs=1e-5)
    with pytest.raises(VideoSkipped, match="shorter than every requested"):
        SSIMScorer(at_frames=[7], mean=False).score_video(a, b)
    with pytest.raises(ValueError, match="1-based"):
        SSIMScorer(at_frames=[0])


def test_evaluate_folders_reports_ssim_at_frames(tmp_path):
    from core.video_io import write_video
    from metrics.evaluate import evaluate_folders

    rng = np.random.default_rng(5)
    for d in ("pred", "gt"):
        (tmp_path / d).mkdir()
    for i, n in enumerate((8, 4)):
        # smooth frames (8x8 noise upsampled), which H.264 keeps nearly intact
        gt = np.repeat(np.repeat(rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8), 4, axis=1), 4, axis=2)
        pred = gt.copy()
        pred[2:] = 255 - pred[2:]  # frames 3.. differ, frames 1-2 are exact
        write_video(tmp_path / "gt" / f"v{i}.mp4", gt, fps=25)
        write_video(tmp_path / "pred" / f"v{i}.mp4", pred, fps=25)
    r = evaluate_folders(tmp_path / "pred", tmp_path / "gt", metrics=["SSIM@1", "SSIM@6"], n_boot=50, progress=False)
    assert "SSIM" not in r.per_video.columns  # the all-frame mean was not asked for
    assert r.summary["SSIM@1"]["n"] == 2 and r.summary["SSIM@6"]["n"] == 1  # v1 has only 4 frames
    assert r.summary["SSIM@1"]["mean"] > 0.9 > r.summary["SSIM@6"]["mean"]
    with pytest.raises(ValueError, match="SSIM@k"):
        evaluate_folders(tmp_path / "pred", tmp_path / "gt", metrics=["SSIM@0"], progress=False)
