"""Frechet distance: closed form for Gaussians, pytorch-fid agreement, torchmetrics/DDP states."""
import numpy as np
import pytest
from pytorch_fid.fid_score import calculate_frechet_distance
from scipy.linalg import sqrtm

from metrics.frechet import (
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


def test_dimension_mismatch_is_an_error():
    with pytest.raises(ValueError, match="dimensions differ"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))


def test_low_rank_route_equals_covariance_route():
    # Fewer samples than dimensions (the FID-on-a-few-videos case): same value as pytorch-fid.
    rng = np.random.default_rng(3)
    fa, fb = rng.normal(size=(30, 40)), rng.normal(0.5, 1.3, size=(25, 40))
    ref = calculate_frechet_distance(fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False))
    assert frechet_low_rank(fa, fb) == pytest.approx(float(ref), rel=1e-6)
    assert frechet_from_features(fa, fb) == pytest.approx(float(ref), rel=1e-6)


def test_symmetric_route_equals_scipy_sqrtm_to_float_precision():
    # well-conditioned covariances (more rows than dimensions): pytorch-fid's sqrtm value, to ~1e-10
    rng = np.random.default_rng(4)
    d = 64
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    fa, fb = rng.normal(size=(400, d)) @ mix, rng.normal(0.2, 1.1, size=(350, d)) @ mix.T
    mu1, s1, mu2, s2 = fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False)
    ref = calculate_frechet_distance(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(float(ref), rel=1e-10)
    assert frechet_from_features(fa, fb) == pytest.approx(float(ref), rel=1e-10)
    # one set smaller than D (its rows factor its covariance), the other larger; sqrtm of the now
    # singular product is only good to ~1e-8, the eigenvalue form below is exact
    small = fb[:40]
    ref_mixed = calculate_frechet_distance(mu1, s1, small.mean(0), np.cov(small, rowvar=False))
    assert frechet_from_features(fa, small) == pytest.approx(float(ref_mixed), rel=1e-6)
    c = (small - small.mean(0)) / np.sqrt(len(small) - 1)
    tr = np.sqrt(np.clip(np.linalg.eigvalsh(c @ s1 @ c.T), 0, None)).sum()
    diff = mu1 - small.mean(0)
    exact = diff @ diff + np.trace(s1) + (c * c).sum() - 2 * tr
    assert frechet_from_features(fa, small) == pytest.approx(exact, rel=1e-9)  # sqrt of a rounding-level zero


def test_biased_covariance_option_divides_by_n():
    # stylegan-v FeatureStats.get_mean_cov: raw second moment / N minus the outer product of the mean
    rng = np.random.default_rng(5)
    fa, fb = rng.normal(size=(24, 6)), rng.normal(0.4, 1.0, size=(24, 6))
    cov_n = lambda x: x.T @ x / len(x) - np.outer(x.mean(0), x.mean(0))  # noqa: E731
    ref = calculate_frechet_distance(fa.mean(0), cov_n(fa), fb.mean(0), cov_n(fb))
    assert frechet_from_features(fa, fb, ddof=0) == pytest.approx(float(ref), rel=1e-9)
    assert frechet_from_features(fa, fb, ddof=0) != pytest.approx(frechet_from_features(fa, fb), rel=1e-3)
    np.testing.assert_allclose(gaussian_stats(fa, ddof=0)[1], cov_n(fa), atol=1e-12)


def test_singular_and_degenerate_sets():
    import time

    from metrics.frechet import DegenerateSet

    rng = np.random.default_rng(6)
    with pytest.raises(DegenerateSet, match="at least 2"):
        frechet_from_features(rng.normal(size=(1, 2048)), rng.normal(size=(5, 2048)))
    # 2048-d, rank-deficient covariances on both sides: exact and fast (no D x D sqrtm)
    fa, fb = rng.normal(size=(3000, 2048))[:, :2048], rng.normal(size=(60, 2048))
    fa[:, 1000:] = 0.0  # half the dimensions never vary
    t0 = time.perf_counter()
    d = frechet_from_features(fa, fb)
    assert time.perf_counter() - t0 < 60
    s1, s2 = np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
    # independent value: Tr (S1 S2)^(1/2) from the N x N side of the smaller set
    cb = (fb - fb.mean(0)) / np.sqrt(len(fb) - 1)
    tr = np.sqrt(np.clip(np.linalg.eigvalsh(cb @ s1 @ cb.T), 0, None)).sum()
    diff = fa.mean(0) - fb.mean(0)
    assert d == pytest.approx(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr, rel=1e-9)
