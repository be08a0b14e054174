"""Throughput benchmark (not a test): videos per second of each scorer on synthetic clips.

``metric_throughput(seconds=5, size=512)`` builds one clip of ``seconds * fps`` frames at
``size x size`` (scikit-image's astronaut, shifted a little every frame, with a tone as audio),
scores it ``repeats`` times per scorer group and returns ``{group: videos/s}``. Set metrics are
timed on feature extraction for pred and gt (the distance itself is negligible).
"""
from __future__ import annotations

import time

import cv2
import numpy as np
from tqdm import tqdm

from metrics import registry


def synthetic_video(seconds: float = 5.0, size: int = 512, fps: float = 25.0, seed: int = 0):
    """A moving face-like clip: astronaut crop drifting by a few pixels, 16 kHz tone as audio."""
    from skimage.data import astronaut

    from core.video_io import Video

    rng = np.random.default_rng(seed)
    base = cv2.resize(astronaut()[0:300, 100:400], (size + 16, size + 16))
    n = int(round(seconds * fps))
    offs = np.clip(np.cumsum(rng.integers(-1, 2, size=(n, 2)), 0) + 8, 0, 16)
    frames = np.stack([base[y:y + size, x:x + size] for y, x in offs])
    t = np.arange(int(seconds * 16000)) / 16000
    return Video(frames=frames, fps=fps, audio=(0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sample_rate=16000)


def metric_throughput(groups=None, seconds: float = 5.0, size: int = 512, repeats: int = 2,
                      weights_cfg: dict | None = None, device: str = "cpu", standin: bool = True,
                      options: dict | None = None) -> dict[str, float]:
    """Videos per second of each scorer group (``registry.SCORERS`` keys) on a ``seconds`` clip at ``size`` px."""
    video = synthetic_video(seconds, size)
    out = {}
    for g in tqdm(list(groups or registry.SCORERS), desc="metric throughput"):
        scorer = registry.build(g, weights_cfg, device=device, standin=standin, **(options or {}).get(g, {}))
        start = time.perf_counter()
        for _ in range(repeats):
            if scorer.kind == "set":
                scorer.features(video), scorer.features(video)
            else:
                scorer.score_video(video, video)
        out[g] = repeats / (time.perf_counter() - start)
    return out


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(prog="python -m metrics.bench")
    ap.add_argument("--groups", nargs="*", default=None)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    for g, v in metric_throughput(a.groups, a.seconds, a.size, a.repeats, device=a.device).items():
        print(f"{g:>7}: {v:.3f} videos/s")


def frechet_interval_cost(dim: int = 2048, videos: int = 20, rows_per_video: int = 150, timed_resamples: int = 5,
                          n_boot: int = 100, seed: int = 0) -> dict:
    """Seconds per bootstrap resample of a set metric and the cost of an ``n_boot``-resample interval.

    Synthetic ``dim``-d features (Inception pool-3 size by default), ``videos`` paired videos of
    ``rows_per_video`` rows each, timed through :func:`metrics.bootstrap.bootstrap_set_metric` on
    ``timed_resamples`` resamples. Two cases: ``full`` (more rows than dimensions on both sides: a
    covariance, one symmetric eigendecomposition and one eigenvalue solve per resample) and
    ``low_rank`` (fewer rows than dimensions: an N x N singular-value problem, no D x D matrix).
    """
    from metrics.bootstrap import bootstrap_set_metric

    rng = np.random.default_rng(seed)
    out = {"dim": dim, "n_boot": n_boot}
    for case, rows in (("full", rows_per_video), ("low_rank", max(2, dim // (2 * videos)))):
        pred = [rng.standard_normal((rows, dim)) for _ in range(videos)]
        gt = [rng.standard_normal((rows, dim)) * 1.1 + 0.05 for _ in range(videos)]
        t0 = time.perf_counter()
        bootstrap_set_metric(pred, gt, n_boot=timed_resamples, cap=timed_resamples, seed=seed)
        per = (time.perf_counter() - t0) / (timed_resamples + 1)  # + 1: the point estimate itself
        out.update({f"{case}_rows_per_side": videos * rows, f"{case}_s_per_resample": per,
                    f"{case}_s_per_interval": per * (n_boot + 1)})
    return out
