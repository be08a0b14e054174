"""Frechet distance between two Gaussians fitted to feature sets: the one implementation shared by
FID, FVD-I, FVD-R and E-FID.

    d^2 = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^{1/2})          (Heusel et al. 2017, eq. 6)

Statistics in float64: the mean, and the covariance with ``ddof=1`` (``np.cov``: pytorch-fid 0.3.0
for FID, DisCo's ``fid_from_feats`` for FVD-R / FVD-I) or ``ddof=0`` (divide by N: stylegan-v's
``FeatureStats.get_mean_cov`` for its FVD; metric_protocols.md sections 2-3).

The trace term. pytorch-fid takes ``scipy.linalg.sqrtm(S_1 S_2)`` of a non-symmetric D x D product,
retrying with ``eps * I`` when that is not finite; on a singular covariance (fewer samples than
dimensions, one frame, identical frames) that Schur iteration is slow (minutes per call at D = 2048)
and inexact. Here: S_1 = F_1 F_1^T with F_1 from a symmetric eigendecomposition (or, with fewer rows
than dimensions, the centred rows themselves); the eigenvalues of S_1 S_2 are those of the symmetric
PSD matrix F_1^T S_2 F_1 (F_1 a Cholesky factor when S_1 is positive definite), so Tr (S_1 S_2)^{1/2}
is the sum of their square roots, or, when S_2 has a
row factor F_2 too, the nuclear norm of F_1^T F_2. For well-conditioned covariances this equals
pytorch-fid's value to float precision (tests/test_metrics_frechet.py, tests/test_reference_fid.py);
on singular ones it is the exact value where ``sqrtm`` is not.

A set with fewer than two rows has no covariance: :class:`DegenerateSet` (a ValueError) says so.
"""
from __future__ import annotations

import numpy as np

MIN_ROWS = 2


class DegenerateSet(ValueError):
    """A feature set too small for a Gaussian fit (fewer than two rows)."""


def _rows(features, what: str = "features") -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"{what} must be a non-empty [N, D] array, got shape {x.shape}")
    return x


def gaussian_stats(features: np.ndarray, ddof: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and covariance ``[D, D]`` of features ``[N, D]`` (rows = samples), divided by N - ddof."""
    x = _rows(features)
    if x.shape[0] <= ddof:
        return x.mean(0), np.zeros((x.shape[1], x.shape[1]))
    return x.mean(0), np.atleast_2d(np.cov(x, rowvar=False, ddof=ddof))


def _psd_factor(sigma: np.ndarray) -> np.ndarray:
    """F with sigma = F F^T: the Cholesky factor of a positive definite sigma (a third of the cost of
    an eigendecomposition), else eigenvectors scaled by the square roots of the positive eigenvalues."""
    sym = (sigma + sigma.T) / 2
    try:
        return np.linalg.cholesky(sym)
    except np.linalg.LinAlgError:  # singular (rank < D): the symmetric eigendecomposition handles it exactly
        pass
    w, v = np.linalg.eigh(sym)
    keep = w > 0  # rounding makes the zero eigenvalues of a singular covariance slightly negative
    return v[:, keep] * np.sqrt(w[keep])


def _trace_sqrt_factor(f1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr (F_1 F_1^T S_2)^{1/2} = sum of sqrt(eigenvalues of the symmetric F_1^T S_2 F_1)."""
    if f1.shape[1] == 0:
        return 0.0
    m = f1.T @ sigma2 @ f1
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    # eigenvalues within rounding of zero (the usual rank tolerance) are zero: their square roots
    # would otherwise add ~1e-8 each (sqrt of 1e-16) to the trace
    ev[ev < ev.max(initial=0.0) * len(ev) * np.finfo(np.float64).eps] = 0.0
    return float(np.sqrt(ev).sum())


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr (S_1 S_2)^{1/2} of two symmetric PSD matrices via symmetric eigendecompositions (float64)."""
    return _trace_sqrt_factor(_psd_factor(np.asarray(sigma1, np.float64)), np.asarray(sigma2, np.float64))


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (float64)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"feature dimensions differ: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt_product(sigma1, sigma2))


def frechet_low_rank(feats_a: np.ndarray, feats_b: np.ndarray, ddof: int = 1) -> float:
    """The same distance through the N x N side, exact when there are fewer samples than dimensions.

    With centred features A, B: S_1 = A^T A / (n_a - ddof), S_2 = B^T B / (n_b - ddof), and the
    non-zero eigenvalues of S_1 S_2 are the squared singular values of A B^T / sqrt((n_a - ddof)(n_b - ddof)),
    so Tr (S_1 S_2)^{1/2} is the nuclear norm of that matrix: no D x D matrix is formed.
    """
    a, b = _rows(feats_a), _rows(feats_b)
    if min(a.shape[0], b.shape[0]) < MIN_ROWS:
        raise DegenerateSet(f"a Frechet distance needs at least {MIN_ROWS} feature rows per set, "
                            f"got {a.shape[0]} and {b.shape[0]}")
    ca, cb = a - a.mean(0), b - b.mean(0)
    na, nb = a.shape[0] - ddof, b.shape[0] - ddof
    diff = a.mean(0) - b.mean(0)
    tr_sqrt = np.linalg.svd(ca @ cb.T, compute_uv=False).sum() / np.sqrt(na * nb)
    return float(diff.dot(diff) + (ca * ca).sum() / na + (cb * cb).sum() / nb - 2 * tr_sqrt)


def frechet_from_features(feats_a: np.ndarray, feats_b: np.ndarray, ddof: int = 1) -> float:
    """Frechet distance between the Gaussians fitted to two feature sets ``[N_a, D]``, ``[N_b, D]``.

    Both sets smaller than D: :func:`frechet_low_rank` (no D x D matrix); otherwise the covariance
    route with the symmetric trace term. Fewer than two rows in a set raises :class:`DegenerateSet`.
    """
    a, b = _rows(feats_a, "first feature set"), _rows(feats_b, "second feature set")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    if min(a.shape[0], b.shape[0]) < MIN_ROWS:
        raise DegenerateSet(f"a Frechet distance needs at least {MIN_ROWS} feature rows per set, "
                            f"got {a.shape[0]} and {b.shape[0]}")
    d = a.shape[1]
    if max(a.shape[0], b.shape[0]) <= d:
        return frechet_low_rank(a, b, ddof)
    if min(a.shape[0], b.shape[0]) > d:
        return frechet_distance(*gaussian_stats(a, ddof), *gaussian_stats(b, ddof))
    # one set smaller than D: its centred rows factor its covariance exactly (no singular D x D eigh)
    small, large = (a, b) if a.shape[0] <= d else (b, a)
    c = (small - small.mean(0)) / np.sqrt(small.shape[0] - ddof)
    mu_l, sigma_l = gaussian_stats(large, ddof)
    diff = small.mean(0) - mu_l
    return float(diff.dot(diff) + (c * c).sum() + np.trace(sigma_l) - 2 * _trace_sqrt_factor(c.T, sigma_l))


__all__ = ["DegenerateSet", "MIN_ROWS", "frechet_distance", "frechet_from_features",
           "frechet_low_rank", "gaussian_stats", "trace_sqrt_product"]
