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


def test_a_set_against_its_own_items_permuted_gets_an_interval_around_its_estimate():
    """Pooled sets that are equal (the reference-swapped control) have a Frechet distance of 0, but every
    paired resample draws different videos on the two sides: the resamples all lie above 0, so their
    plain percentile interval would miss the estimate. The bias-shifted interval holds it."""
    rng = np.random.default_rng(5)
    gt = [rng.normal(i % 3, 1, (6, 3)) for i in range(12)]
    pred = gt[1:] + gt[:1]
    r = bootstrap_set_metric(pred, gt, n_boot=100, seed=0)
    assert r["mean"] == pytest.approx(0, abs=1e-6)
    assert r["boot_bias"] > 0.05                      # the resamples' own inflation
    assert r["ci_low"] == 0 < r["ci_high"]             # holds the estimate, 0 up to rounding


def test_the_bias_shift_is_the_bootstraps_closed_form_bias_of_a_squared_mean_difference():
    """For T = (mean of d)^2 over videos, E*[T*] = T + s2/n with s2 = mean((d_i - mean d)^2) (the plug-in
    variance), so the shift is s2/n; a statistic linear in the videos (mean difference) has no bias, and its
    interval is the percentile interval of the per-video differences (normal-theory width here)."""
    rng = np.random.default_rng(6)
    n = 20
    d = rng.normal(0.3, 1.0, n)
    pred = [np.full((4, 1), x) for x in d]
    gt = [np.zeros((4, 1)) for _ in d]
    sq = bootstrap_set_metric(pred, gt, lambda p, g: float((p.mean() - g.mean()) ** 2), n_boot=4000, seed=0,
                              cap=4000, floor=None)
    assert sq["boot_bias"] == pytest.approx(d.var() / n, rel=0.1)
    lin = bootstrap_set_metric(pred, gt, lambda p, g: float(p.mean() - g.mean()), n_boot=4000, seed=0,
                               cap=4000, floor=None)
    assert abs(lin["boot_bias"]) < 0.01
    half = 1.96 * d.std(ddof=1) / np.sqrt(n)
    assert lin["ci_low"] == pytest.approx(d.mean() - half, abs=0.08)
    assert lin["ci_high"] == pytest.approx(d.mean() + half, abs=0.08)
