"""Temporal segment module (Loopy §3.2, Eq. 2)."""

import pytest
import torch

from lightning_modules.loopy.temporal_segment import TemporalSegmentModule, coverage, segment_indices


def test_default_indices_match_hand_computed_list():
    # s = 4, r = 2, 5 segments: segment k starts at 4*(2^k - 1) and samples every 2^k frames
    expected = [0, 1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 28, 36, 44, 52, 60, 76, 92, 108]
    assert segment_indices(4, 2, 5) == expected
    assert coverage(4, 2, 5) == 124 == 4 + 8 + 16 + 32 + 64
    tsm = TemporalSegmentModule()
    assert (tsm.num_input_frames, tsm.num_output_frames) == (124, 20)


@pytest.mark.parametrize("s,r,cover", [(1, 2, 31), (2, 2, 62), (3, 2, 93), (4, 1, 20)])
def test_table3_stride_variants(s, r, cover):
    idx = segment_indices(s, r, 5)
    assert coverage(s, r, 5) == cover and len(idx) == 5 * s
    assert idx == sorted(set(idx)) and idx[-1] < cover
    if r == 1:
        assert idx == list(range(20))


def _frames(n=124, b=2):
    # frame j carries the value j everywhere, so selections are readable
    return torch.arange(n, dtype=torch.float32).view(1, n, 1, 1, 1).expand(b, n, 2, 3, 3).clone()


def test_uniform_selects_eq2_frames():
    out, mask = TemporalSegmentModule()(_frames())
    assert out.shape == (2, 20, 2, 3, 3)
    assert out[0, :, 0, 0, 0].tolist() == [float(i) for i in segment_indices(4, 2, 5)]
    assert mask.eq(1).all()


def test_mean_pools_each_window():
    out, _ = TemporalSegmentModule(abstraction="mean")(_frames())
    idx, sizes = segment_indices(4, 2, 5), [1] * 4 + [2] * 4 + [4] * 4 + [8] * 4 + [16] * 4
    expected = [sum(range(i, i + w)) / w for i, w in zip(idx, sizes)]
    assert torch.allclose(out[0, :, 0, 0, 0], torch.tensor(expected))


def test_random_samples_inside_windows_and_varies():
    tsm = TemporalSegmentModule(abstraction="random").train()
    idx, sizes = torch.tensor(segment_indices(4, 2, 5)), 2 ** (torch.arange(20) // 4)
    draws = torch.stack([tsm(_frames(b=1))[0][0, :, 0, 0, 0] for _ in range(50)])
    assert ((draws >= idx) & (draws < idx + sizes)).all()
    assert draws[:, -1].unique().numel() > 5            # the 16-frame window is really sampled
    assert torch.equal(draws[:, :4], idx[:4].float().expand(50, 4))  # 1-frame windows are fixed
    tsm.eval()  # deterministic at sampling time: the window's first frame
    assert tsm(_frames(b=1))[0][0, :, 0, 0, 0].tolist() == idx.float().tolist()


def test_disabled_keeps_newest_plain_frames_and_pads_short_history():
    out, _ = TemporalSegmentModule(enabled=False, plain_frames=4)(_frames())
    assert out[0, :, 0, 0, 0].tolist() == [0.0, 1.0, 2.0, 3.0]
    out, mask = TemporalSegmentModule()(_frames(n=10), torch.ones(2, 10))
    assert out.shape[1] == 20 and mask[0].tolist() == [1.0] * 7 + [0.0] * 13  # index 10+ beyond the video
    assert out[0, 7:].abs().sum() == 0


def test_bad_config_names_the_key():
    with pytest.raises(ValueError, match="model.tsm.abstraction"):
        TemporalSegmentModule(abstraction="max")
    with pytest.raises(ValueError, match="model.tsm.stride"):
        TemporalSegmentModule(stride=0)
