"""Frechet distance: closed form for Gaussians, pytorch-fid agreement, torchmetrics/DDP states."""
import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from scipy.linalg import sqrtm

from metrics.frechet import (
    FrechetDistance,
    frechet_distance,
    frechet_from_features,
    frechet_low_rank,
    gaussian_stats,
)


def test_closed_form_diagonal_gaussians():
    # For commuting (diagonal) covariances: |mu1-mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2.
    mu1, mu2 = np.array([1.0, -2.0, 0.5]), np.array([0.0, 1.0, 0.5])
    s1, s2 = np.array([4.0, 1.0, 9.0]), np.array([1.0, 1.0, 0.25])
    expected = 1 + 9 + 0 + (2 - 1) ** 2 + 0 + (3 - 0.5) ** 2
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-9)


def test_closed_form_general_covariances():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    s1, s2 = a @ a.T + np.eye(4), b @ b.T + np.eye(4)
    r = sqrtm(s1)  # Tr sqrt(S1 S2) = Tr sqrt(R S2 R) with R = S1^(1/2), an independent formula
    expected = 4.0 + np.trace(s1) + np.trace(s2) - 2 * np.trace(sqrtm(r @ s2 @ r)).real
    assert frechet_distance(np.zeros(4), s1, np.full(4, 1.0), s2) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(np.zeros(4), s1, np.zeros(4), s1) == pytest.approx(0.0, abs=1e-6)


def test_matches_pytorch_fid_on_same_features():
    rng = np.random.default_rng(1)
    fa, fb = rng.normal(size=(300, 16)), rng.normal(0.3, 1.2, size=(250, 16))
    mine = frechet_from_features(fa, fb)
    ref = calculate_frechet_distance(fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False))
    assert mine == pytest.approx(float(ref), rel=1e-6)
    mu, sigma = gaussian_stats(fa)
    np.testing.assert_allclose(sigma, np.cov(fa, rowvar=False))


def test_torchmetrics_states_are_cat_and_match_function():
    rng = np.random.default_rng(2)
    fa, fb = rng.normal(size=(40, 5)), rng.normal(1.0, 1.0, size=(30, 5))
    m = FrechetDistance()
    m.update(fa[:20], real=False)
    m.update(fa[20:], real=False)
    m.update(fb, real=True)
    assert float(m.compute()) == pytest.approx(frechet_from_features(fa, fb), rel=1e-9)
    # DDP gathers feature lists by concatenation, so the distance is computed on the union.
    assert m._reductions["fake_features"].__name__ == "dim_zero_cat"
    m.reset()
    assert m.fake_features == [] and m.real_features == []


def test_dimension_mismatch_is_an_error():
    with pytest.raises(ValueError, match="dimensions differ"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        FrechetDistance().update(torch.zeros(3), real=True)


def test_low_rank_route_equals_covariance_route():
    # Fewer samples than dimensions (the FID-on-a-few-videos case): same value as pytorch-fid.
    rng = np.random.default_rng(3)
    fa, fb = rng.normal(size=(30, 40)), rng.normal(0.5, 1.3, size=(25, 40))
    ref = calculate_frechet_distance(fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False))
    assert frechet_low_rank(fa, fb) == pytest.approx(float(ref), rel=1e-6)
    assert frechet_from_features(fa, fb) == pytest.approx(float(ref), rel=1e-6)
