"""Glo / Exp / DGlo / DExp (Loopy appendix B.1) on hand-made keypoint tracks."""
import numpy as np
import pytest
import torch

from metrics.landmarks import IBUG_NOSE_TIP, IBUG_UPPER37, WHOLEBODY_NOSE_TIP, WHOLEBODY_UPPER37, VideoSkipped
from metrics.landmarks.mediapipe_backend import MESH_NOSE_TIP, MESH_TO_IBUG68
from metrics.motion import dglo_dexp, exp_metric, glo, glo_exp

torch.set_num_threads(1)


def _still_face(T=4):
    """A face at rest: 68 points spread over [0.3, 0.7]^2, identical in every frame."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.7, size=(68, 2))
    return np.repeat(base[None], T, axis=0)


def test_keypoint_index_sets():
    assert len(IBUG_UPPER37) == 37 and len(set(IBUG_UPPER37)) == 37
    assert not set(IBUG_UPPER37) & set(range(48, 68)), "mouth must be excluded"
    assert not set(IBUG_UPPER37) & set(range(3, 14)), "lower jaw must be excluded"
    assert WHOLEBODY_NOSE_TIP == 53 and min(WHOLEBODY_UPPER37) == 23 and max(WHOLEBODY_UPPER37) == 23 + 47
    assert len(set(MESH_TO_IBUG68)) == 68 and MESH_NOSE_TIP == 4 and IBUG_NOSE_TIP == 30


def test_glo_by_hand():
    # x = 0.5, 0.6, 0.5, 0.4 (mean 0.5), y fixed: sum of squares 0.02, / 4 frames, x 1000 = 5
    nose = np.array([[0.5, 0.5], [0.6, 0.5], [0.5, 0.5], [0.4, 0.5]])
    assert glo(nose) == pytest.approx(5.0)
    # y moves too: y = 0.2, 0.2, 0.4, 0.4 -> sum sq 4 * 0.01 = 0.04 -> 10 more
    nose[:, 1] = [0.2, 0.2, 0.4, 0.4]
    assert glo(nose) == pytest.approx(15.0)


def test_exp_by_hand():
    pts = _still_face(4)
    nose = pts[0, IBUG_NOSE_TIP]
    # brow point 19 relative to the nose: dx = 0.10, 0.12, 0.10, 0.12 ; dy = 0.2
    # e = 0.30, 0.32, 0.30, 0.32 ; d = +0.02, -0.02, +0.02 ; mean 0.02/3
    # deviations 0.04/3, -0.08/3, 0.04/3 ; sum sq = 0.0096/9 ; / 3 diffs ; x 1000 = 32/90
    for t, dx in enumerate([0.10, 0.12, 0.10, 0.12]):
        pts[t, 19] = nose + [dx, 0.2]
    assert exp_metric(pts) == pytest.approx(32 / 90)
    # a still face has Exp 0
    assert exp_metric(_still_face(4)) == pytest.approx(0.0)


def test_exp_ignores_mouth_and_lower_jaw_and_global_motion():
    pts = _still_face(6)
    rng = np.random.default_rng(1)
    pts[:, 48:68] += rng.normal(0, 0.02, size=(6, 20, 2))  # talking mouth
    pts[:, 3:14] += rng.normal(0, 0.02, size=(6, 11, 2))   # moving chin
    assert exp_metric(pts) == pytest.approx(0.0, abs=1e-12)
    shift = rng.normal(0, 0.05, size=(6, 1, 2))             # rigid head translation
    moved = pts + shift
    assert exp_metric(moved) == pytest.approx(0.0, abs=1e-12)
    expected_glo = ((shift[:, 0] - shift[:, 0].mean(0)) ** 2).sum() / 6 * 1000
    assert glo_exp(moved)["Glo"] == pytest.approx(expected_glo)


def test_exp_sums_over_keypoints():
    # two upper points with the same motion give twice the Exp of one
    one, two = _still_face(5), _still_face(5)
    wiggle = np.array([0.0, 0.01, -0.01, 0.02, 0.0])
    one[:, 20, 0] += wiggle
    two[:, 20, 0] += wiggle
    two[:, 40, 1] += wiggle
    assert exp_metric(two) == pytest.approx(2 * exp_metric(one))
    assert exp_metric(one) > 0


def test_dglo_dexp_pair():
    gt = _still_face(4)
    pred = _still_face(4)
    pred[:, :, 0] += np.array([0.0, 0.1, 0.0, -0.1])[:, None]  # Glo 5 for pred, 0 for gt
    pred[:, 19, 1] += np.array([0.0, 0.01, 0.0, 0.01])
    p, g = glo_exp(pred), glo_exp(gt)
    assert p["Glo"] == pytest.approx(5.0) and g["Glo"] == pytest.approx(0.0)
    d = dglo_dexp(p, g)
    assert d["DGlo"] == pytest.approx(5.0)
    assert d["DExp"] == pytest.approx(p["Exp"]) and d["DExp"] > 0
    assert dglo_dexp(g, p) == d  # absolute difference: symmetric


def test_nan_frames_are_dropped_and_too_few_skip():
    pts = _still_face(5)
    pts[:, :, 0] += np.array([0.0, 0.1, 0.0, -0.1, 0.0])[:, None]
    with_gap = pts.copy()
    with_gap[4] = np.nan
    assert glo(with_gap[:, IBUG_NOSE_TIP]) == pytest.approx(5.0)  # 4 valid frames
    only_one = np.full_like(pts, np.nan)
    only_one[0] = pts[0]
    with pytest.raises(VideoSkipped, match="at least 2"):
        glo(only_one[:, IBUG_NOSE_TIP])
    alternating = pts.copy()
    alternating[1::2] = np.nan
    with pytest.raises(VideoSkipped, match="consecutive"):
        exp_metric(alternating)
