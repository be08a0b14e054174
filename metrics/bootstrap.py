"""Bootstrap 95% confidence intervals over videos, and paired bootstrap tests between two systems.

- Per-video metrics: percentile interval of the mean over ``n_boot`` resamples of videos
  (Efron & Tibshirani 1993, ch. 13), fixed seed.
- Set metrics (FID, FVD, E-FID): resample *videos* (each video keeps all its feature rows; paired
  pred/gt videos are resampled together) and recompute the Frechet distance. A resample repeats some
  videos and so holds fewer distinct ones, which inflates a Frechet distance: the resamples sit above the
  estimate by a bias of their own making, and their percentile interval could miss the estimate itself
  (a set against its own items permuted: 0.0009 with [0.0026, 0.18]). The interval is therefore the
  percentile interval shifted back by the bootstrap estimate of that bias, mean(resamples) - estimate
  (Efron & Tibshirani 1993, ch. 10), its low end clipped at 0 where a distance ends; ``boot_bias`` reports
  the shift. Each resample costs
  one symmetric eigendecomposition per set of more rows than dimensions (:mod:`metrics.frechet`;
  ``python -m experiments.bench bench.parts=[frechet]`` states the cost at 2048-d), so the number
  of resamples is capped (``SET_BOOT_CAP = 100`` by default). A resample whose pooled set has fewer
  than two rows is left out (``n_boot`` counts the ones kept).
- ``paired_bootstrap(a, b)``: two systems scored on the same items; percentile CI of the mean
  difference ``a - b`` and a two-sided p-value (twice the smaller tail of the resampled differences
  around zero), used for significance markers in tables.

One video (one pair) says nothing about the spread of the mean: every resample is that video, and
the percentile interval would have zero width. The interval is then undefined: NaN bounds with
``n = 1``, which the tables print as "n=1" (reports/tables.py), never as "± 0".
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from metrics.frechet import frechet_from_features

SET_BOOT_CAP = 100
#: fewer items than this leave the interval undefined (NaN bounds)
MIN_ITEMS = 2


def _clean(values) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    return v[np.isfinite(v)]


def bootstrap_ci(values, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict[str, float]:
    """Mean and percentile ``1 - alpha`` interval of the mean; NaNs (skipped videos) are dropped."""
    v = _clean(values)
    if len(v) < MIN_ITEMS:  # no video, or one: no interval (module docstring)
        mean = float(v.mean()) if len(v) else float("nan")
        return {"mean": mean, "ci_low": float("nan"), "ci_high": float("nan"), "n": int(len(v))}
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return {"mean": float(v.mean()), "ci_low": float(lo), "ci_high": float(hi), "n": int(len(v))}


def bootstrap_set_metric(pred_feats: Sequence[np.ndarray], gt_feats: Sequence[np.ndarray],
                         distance: Callable[[np.ndarray, np.ndarray], float] = frechet_from_features,
                         n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
                         cap: int = SET_BOOT_CAP, progress: Callable | None = None,
                         floor: float | None = 0.0) -> dict[str, float]:
    """Distance between pooled per-video features, with a video-resampling interval corrected for the
    resampling bias (module docstring).

    Args:
        pred_feats, gt_feats: one ``[N_i, D]`` array per video. Equal lengths are treated as pairs.
        n_boot: requested resamples, capped at ``cap``.
        floor: the smallest value the distance takes (0 for a distance; None: no clipping).
    """
    if not pred_feats or not gt_feats:
        return {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n": 0}
    # a degenerate pooled set (fewer than two rows) raises metrics.frechet.DegenerateSet here, before resampling
    value = distance(np.concatenate(pred_feats), np.concatenate(gt_feats))
    paired = len(pred_feats) == len(gt_feats)
    n = len(pred_feats) if paired else min(len(pred_feats), len(gt_feats))
    if n < MIN_ITEMS:  # one video: no interval (module docstring)
        nan = float("nan")
        return {"mean": float(value), "ci_low": nan, "ci_high": nan, "n": int(n), "n_boot": 0}
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(min(n_boot, cap)):
        ip = rng.integers(0, len(pred_feats), len(pred_feats))
        ig = ip if paired else rng.integers(0, len(gt_feats), len(gt_feats))
        try:
            boots.append(distance(np.concatenate([pred_feats[i] for i in ip]), np.concatenate([gt_feats[i] for i in ig])))
        except ValueError:  # a degenerate resample (fewer than two rows in a set) has no covariance
            continue
        if progress is not None:
            progress()
    boots = np.asarray([b for b in boots if np.isfinite(b)])
    if not len(boots):
        return {"mean": float(value), "ci_low": np.nan, "ci_high": np.nan, "n": int(n), "n_boot": 0}
    bias = float(boots.mean() - value)
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2]) - bias
    if floor is not None:
        lo, hi = max(lo, floor), max(hi, floor)
    return {"mean": float(value), "ci_low": float(lo), "ci_high": float(hi), "n": int(n), "n_boot": int(len(boots)),
            "boot_bias": bias}


def paired_bootstrap(a, b, n_boot: int = 10000, seed: int = 0, alpha: float = 0.05) -> dict[str, float]:
    """Mean difference ``a - b`` over items scored by both systems, its CI and a two-sided p-value."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired_bootstrap needs scores of the same items, got {a.shape} and {b.shape}")
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    if len(d) == 0:
        raise ValueError("paired_bootstrap: no item has a finite score in both systems")
    if len(d) < MIN_ITEMS:  # one pair: no interval, no test (module docstring)
        return {"mean_diff": float(d.mean()), "ci_low": float("nan"), "ci_high": float("nan"),
                "p_value": float("nan"), "n": 1}
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    p = min(1.0, 2 * min((means <= 0).mean(), (means >= 0).mean()))
    return {"mean_diff": float(d.mean()), "ci_low": float(lo), "ci_high": float(hi), "p_value": float(p), "n": int(len(d))}


__all__ = ["MIN_ITEMS", "SET_BOOT_CAP", "bootstrap_ci", "bootstrap_set_metric", "paired_bootstrap"]
