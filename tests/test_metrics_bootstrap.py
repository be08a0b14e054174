"""Bootstrap intervals: coverage of known cases, set-metric resampling, paired test."""
import numpy as np
import pytest

from metrics.bootstrap import bootstrap_ci, bootstrap_set_metric, paired_bootstrap
from metrics.frechet import frechet_from_features


def test_ci_of_constant_and_of_normal_sample():
    c = bootstrap_ci(np.full(10, 2.5))
    assert c["mean"] == c["ci_low"] == c["ci_high"] == 2.5 and c["n"] == 10
    x = np.random.default_rng(0).normal(1.0, 2.0, 400)
    r = bootstrap_ci(np.append(x, np.nan), n_boot=2000, seed=0)
    assert r["n"] == 400 and r["ci_low"] < x.mean() < r["ci_high"]
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))  # normal-theory half width
    assert (r["ci_high"] - r["ci_low"]) / 2 == pytest.approx(half, rel=0.15)
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)  # fixed seed, same interval


def test_set_metric_resamples_videos():
    rng = np.random.default_rng(1)
    pred = [rng.normal(0.5, 1, (6, 4)) for _ in range(8)]
    gt = [rng.normal(0, 1, (6, 4)) for _ in range(8)]
    r = bootstrap_set_metric(pred, gt, n_boot=50, seed=0)
    assert r["mean"] == pytest.approx(frechet_from_features(np.concatenate(pred), np.concatenate(gt)))
    assert r["ci_low"] <= r["mean"] <= r["ci_high"] and r["n"] == 8 and r["n_boot"] == 50


def test_paired_bootstrap():
    rng = np.random.default_rng(2)
    base = rng.normal(0, 1, 60)
    better = paired_bootstrap(base + 0.5 + rng.normal(0, 0.1, 60), base, seed=0)
    assert better["p_value"] < 0.01 and better["ci_low"] > 0
    same = paired_bootstrap(base + rng.normal(0, 0.1, 60), base, seed=0)
    assert same["p_value"] > 0.05 and same["ci_low"] < 0 < same["ci_high"]
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap([1, 2], [1, 2, 3])


def test_one_video_has_an_undefined_interval():
    """One score says nothing about the spread of the mean: NaN bounds and n = 1, no zero-width interval."""
    c = bootstrap_ci([0.7, np.nan])                      # one finite score (the other video was skipped)
    assert c["mean"] == 0.7 and c["n"] == 1 and np.isnan(c["ci_low"]) and np.isnan(c["ci_high"])
    rng = np.random.default_rng(4)
    s = bootstrap_set_metric([rng.normal(0.5, 1, (8, 3))], [rng.normal(0, 1, (8, 3))], n_boot=20, seed=0)
    assert np.isfinite(s["mean"]) and s["n"] == 1 and np.isnan(s["ci_low"]) and np.isnan(s["ci_high"])
    p = paired_bootstrap([1.0], [0.5])
    assert p["mean_diff"] == 0.5 and np.isnan(p["ci_low"]) and np.isnan(p["p_value"])
