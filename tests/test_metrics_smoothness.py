"""Smo (VBench motion smoothness): scoring maths, interpolator interface, AMT-S layout and loader."""
import time

import numpy as np
import pytest
import torch

from core.video_io import Video
from metrics.landmarks import VideoSkipped
from metrics.smoothness import (
    AMTS,
    LinearBlendInterpolator,
    SmoothnessScorer,
    interpolate_odd_frames,
    load_amt_s,
    motion_smoothness,
    vfi_score,
)

torch.set_num_threads(1)


def test_static_video_is_one():
    frames = np.repeat(np.random.default_rng(0).integers(0, 256, (1, 20, 24, 3), dtype=np.uint8), 9, 0)
    assert motion_smoothness(frames, LinearBlendInterpolator()) == 1.0


def test_jitter_by_hand():
    # even frames 0, odd frames 100: the blend predicts 0, the original odd frames are 100
    frames = np.zeros((6, 16, 16, 3), np.uint8)
    frames[1::2] = 100
    # kept 0, 2, 4 -> predicted 1, 3 (frame 5 has no right neighbour and is not scored)
    assert motion_smoothness(frames, LinearBlendInterpolator()) == pytest.approx((255 - 100) / 255)
    jittered = np.repeat(frames[:1], 6, 0).copy()
    jittered[3] = 40  # one jittered frame among the scored odd frames: mean diff (0 + 40) / 2
    assert motion_smoothness(jittered, LinearBlendInterpolator()) == pytest.approx((255 - 20) / 255)


def test_linear_fade_is_one_and_truncation():
    frames = (np.arange(7)[:, None, None, None] * 10 * np.ones((1, 8, 8, 3))).astype(np.uint8)
    assert motion_smoothness(frames, LinearBlendInterpolator()) == pytest.approx(1.0)
    # midpoint of 0 and 1 is 0.5 -> uint8 truncates to 0, as tensor2img does
    two = np.zeros((3, 4, 4, 3), np.uint8)
    two[2] = 1
    assert interpolate_odd_frames(two, LinearBlendInterpolator()).max() == 0


def test_interpolator_interface_padding_and_embt():
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, img0, img1, embt, scale_factor=1.0, eval=True):
            seen.append((img0.shape, embt.flatten().tolist(), float(img0.max()), scale_factor, eval))
            return {"imgt_pred": img1}

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 20, 30, 3), dtype=np.uint8)
    out = interpolate_odd_frames(frames, Spy())
    assert out.shape == (2, 20, 30, 3)  # unpadded, one per kept pair
    shape, embt, vmax, sf, ev = seen[0]
    assert tuple(shape) == (2, 3, 32, 32) and embt == [0.5, 0.5] and vmax <= 1.0 and sf == 1.0 and ev
    # predicting the next kept frame: scored against odd frames 1, 3
    np.testing.assert_array_equal(out, frames[2::2])
    ref = np.mean([np.abs(frames[1].astype(int) - frames[2]).mean(), np.abs(frames[3].astype(int) - frames[4]).mean()])
    assert vfi_score(frames, out) == pytest.approx((255 - ref) / 255)


# key shapes of amt-s.pth (VBench third_party/amt, AMT-S config), 2.99 M parameters
AMT_S_SHAPES = {
    "feat_encoder.conv1.weight": (32, 3, 7, 7), "feat_encoder.layer2.0.downsample.0.weight": (64, 32, 1, 1),
    "feat_encoder.conv2.weight": (84, 96, 1, 1), "encoder.pyramid1.0.1.weight": (20,),
    "encoder.pyramid4.0.0.weight": (56, 44, 3, 3), "decoder4.convblock.0.0.weight": (112, 113, 3, 3),
    "decoder4.convblock.1.conv2.0.weight": (20, 20, 3, 3), "decoder4.convblock.2.weight": (112, 48, 4, 4),
    "decoder3.convblock.0.0.weight": (132, 136, 3, 3), "decoder1.convblock.2.weight": (60, 24, 4, 4),
    "update4.convc1.weight": (64, 392, 1, 1), "update4.gru.0.weight": (76, 116, 3, 3),
    "update3.flow_head.2.weight": (4, 76, 3, 3), "update2.feat_head.2.weight": (20, 76, 3, 3),
    "comb_block.0.weight": (18, 9, 3, 3), "comb_block.1.weight": (18,),
}


def test_amt_s_layout_and_loader(tmp_path):
    state = AMTS().state_dict()
    for k, shape in AMT_S_SHAPES.items():
        assert tuple(state[k].shape) == shape, k
    assert sum(v.numel() for k, v in state.items()) == pytest.approx(2.99e6, rel=0.01)
    g = torch.Generator().manual_seed(0)
    rnd = {k: torch.randn(v.shape, generator=g) * 0.05 for k, v in state.items()}
    torch.save({"state_dict": rnd}, tmp_path / "amt-s.pth")
    m = load_amt_s(str(tmp_path / "amt-s.pth"))
    assert all(torch.equal(m.state_dict()[k], v) for k, v in rnd.items())
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        out = m(x, x.roll(3, -1), torch.full((1, 1, 1, 1), 0.5), scale_factor=1.0, eval=True)["imgt_pred"]
    assert out.shape == x.shape and torch.isfinite(out).all() and 0 <= out.min() and out.max() <= 1
    bad = dict(rnd)
    bad["comb_block.0.w"] = bad.pop("comb_block.0.weight")
    torch.save({"state_dict": bad}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="AMT-S layout"):
        load_amt_s(str(tmp_path / "bad.pth"))
    torch.save(rnd, tmp_path / "plain.pth")
    with pytest.raises(ValueError, match="state_dict"):
        load_amt_s(str(tmp_path / "plain.pth"))


def test_amt_s_with_zero_weights_is_the_linear_blend(tmp_path):
    # all weights 0: flows 0, masks sigmoid(0) = 0.5, residuals 0 -> (img0 + img1) / 2
    zero = {k: torch.zeros_like(v) for k, v in AMTS().state_dict().items()}
    torch.save({"state_dict": zero}, tmp_path / "amt-s.pth")
    sc = SmoothnessScorer({"amt_s": str(tmp_path / "amt-s.pth")}, standin=False)
    assert sc.backbone == str(tmp_path / "amt-s.pth")
    frames = np.random.default_rng(0).integers(0, 256, (5, 128, 128, 3), dtype=np.uint8)
    blend = interpolate_odd_frames(frames, LinearBlendInterpolator())
    amt = interpolate_odd_frames(frames, sc.model)
    assert np.abs(amt.astype(int) - blend).max() <= 1  # float rounding at the uint8 cut
    static = Video(frames=np.repeat(frames[:1], 5, 0), fps=25.0)
    assert sc.score_video(static)["Smo"] == pytest.approx(1.0, abs=1 / 255)
    with pytest.raises(VideoSkipped, match="at least 128x128"):
        sc.score_video(Video(frames=frames[:, :64, :64], fps=25.0))
    with pytest.raises(FileNotFoundError, match="amt_s"):
        SmoothnessScorer({}, standin=False)


def test_scorer():
    sc = SmoothnessScorer()
    assert sc.backbone == "standin:linear-blend" and sc.kind == "per_video" and not sc.needs_gt
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (50, 64, 64, 3), dtype=np.uint8)
    t0 = time.perf_counter()
    r = sc.score_video(Video(frames=frames, fps=25.0))
    assert time.perf_counter() - t0 < 2.0
    assert 0 < r["Smo"] < 0.9  # white noise video is far from smooth
    with pytest.raises(VideoSkipped, match="at least 3"):
        sc.score_video(Video(frames=frames[:1], fps=25.0))
    assert sc.score_video(Video(frames=np.repeat(frames[:1], 5, 0), fps=25.0))["Smo"] == pytest.approx(1.0)
