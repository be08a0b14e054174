"""Frechet distance between two Gaussians fitted to feature sets: the one implementation shared by
FID, FVD-I, FVD-R and E-FID.

    d^2 = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^{1/2})          (Heusel et al. 2017, eq. 6)

Same numerics as pytorch-fid 0.3.0 ``calculate_frechet_distance`` (metric_protocols.md section 3):
``np.cov(rowvar=False)`` statistics in float64, scipy ``sqrtm``, ``eps * I`` added to both
covariances only when the square root is not finite, and an error when the imaginary part is
larger than 1e-3 (a sign of a broken feature set rather than of rounding).
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import linalg
from torchmetrics import Metric


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and covariance ``[D, D]`` (unbiased, rows = samples) of features ``[N, D]``."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"features must be a non-empty [N, D] array, got shape {x.shape}")
    sigma = np.cov(x, rowvar=False) if x.shape[0] > 1 else np.zeros((x.shape[1], x.shape[1]))
    return x.mean(0), np.atleast_2d(sigma)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (float64)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"feature dimensions differ: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        # Product close to singular: regularise both covariances like pytorch-fid does.
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Frechet distance: imaginary component {np.max(np.abs(covmean.imag)):.3g} in sqrtm")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def frechet_low_rank(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """The same distance through the N x N side, exact when there are fewer samples than dimensions.

    With centred features A, B: S_1 = A^T A / (n_a - 1), S_2 = B^T B / (n_b - 1), and the non-zero
    eigenvalues of S_1 S_2 are the squared singular values of A B^T / sqrt((n_a - 1)(n_b - 1)), so
    Tr (S_1 S_2)^{1/2} is the nuclear norm of that matrix. This avoids a D x D ``sqrtm`` (D = 2048 for
    FID) per bootstrap resample.
    """
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("frechet_low_rank needs at least 2 samples per set")
    ca, cb = a - a.mean(0), b - b.mean(0)
    na, nb = a.shape[0] - 1, b.shape[0] - 1
    diff = a.mean(0) - b.mean(0)
    tr_sqrt = np.linalg.svd(ca @ cb.T, compute_uv=False).sum() / np.sqrt(na * nb)
    return float(diff.dot(diff) + (ca * ca).sum() / na + (cb * cb).sum() / nb - 2 * tr_sqrt)


def frechet_from_features(feats_a: np.ndarray, feats_b: np.ndarray, eps: float = 1e-6) -> float:
    """Frechet distance between the Gaussians fitted to two feature sets ``[N_a, D]``, ``[N_b, D]``.

    Uses :func:`frechet_low_rank` when both sets have fewer rows than dimensions (identical value,
    far cheaper), else the covariance route of pytorch-fid.
    """
    a, b = np.asarray(feats_a), np.asarray(feats_b)
    if a.ndim == 2 and b.ndim == 2 and a.shape[1] == b.shape[1] and 2 <= max(a.shape[0], b.shape[0]) <= a.shape[1] \
            and min(a.shape[0], b.shape[0]) >= 2:
        return frechet_low_rank(a, b)
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b), eps=eps)


class FrechetDistance(Metric):
    """torchmetrics accumulator of generated and real features; ``compute()`` is the distance.

    ``update(features [N, D], real: bool)``. Feature lists are "cat"-reduced, so under DDP every
    rank sees all features before the statistics are taken (the distance is not a mean of
    per-rank distances). Subclasses (FID, FVD, E-FID) turn videos into features first.
    """

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    def __init__(self, eps: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        self.eps = eps
        self.add_state("real_features", default=[], dist_reduce_fx="cat")
        self.add_state("fake_features", default=[], dist_reduce_fx="cat")

    def update(self, features, real: bool) -> None:
        f = torch.as_tensor(np.asarray(features), dtype=torch.float64)
        if f.ndim != 2:
            raise ValueError(f"features must be [N, D], got shape {tuple(f.shape)}")
        (self.real_features if real else self.fake_features).append(f)

    def compute(self) -> torch.Tensor:
        real, fake = self.real_features, self.fake_features
        real = torch.cat(real) if isinstance(real, list) else real
        fake = torch.cat(fake) if isinstance(fake, list) else fake
        return torch.tensor(frechet_from_features(fake.cpu().numpy(), real.cpu().numpy(), self.eps),
                            dtype=torch.float64)


__all__ = ["FrechetDistance", "frechet_distance", "frechet_low_rank", "frechet_from_features", "gaussian_stats"]
