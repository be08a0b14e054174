"""Scorer benchmarks (parts ``metrics``, ``face`` and ``frechet`` of ``python -m experiments.bench``).

- ``metric_throughput(seconds=5, size=512)`` builds one clip of ``seconds * fps`` frames at ``size x size``
  (scikit-image's astronaut, shifted a little every frame, with a tone as audio), scores it ``repeats``
  times per scorer group and returns ``{group: videos/s}``. Set metrics are timed on feature extraction
  for pred and gt (the distance itself is negligible).
- ``face_throughput``: the face-based per-video scorers (Sync, Glo/Exp, Smo), best of ``repeats`` runs on
  the astronaut panned a few pixels per frame (a real face, so the detectors do their full work).
- ``frechet_interval_cost``: the cost of a set metric's bootstrap interval.
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


def bench_video(size: int = 64, frames: int = 50, fps: float = 25.0):
    """The benchmark clip: uint8 [frames, size, size, 3] face video with audio."""
    from skimage.data import astronaut

    from core.video_io import Video

    img = astronaut()
    f = np.stack([cv2.resize(img[0:256, 100 + 2 * (t % 20):356 + 2 * (t % 20)], (size, size)) for t in range(frames)])
    n = int(round(frames / fps * 16000))
    audio = (0.3 * np.sin(2 * np.pi * 220 * np.arange(n) / 16000)).astype(np.float32)
    return Video(frames=f, fps=fps, audio=audio, sample_rate=16000)


def face_throughput(size: int = 64, frames: int = 50, repeats: int = 3, weights_cfg: dict | None = None,
               progress: bool = True) -> dict[str, float]:
    """Videos per second for SyncScorer, MotionScorer (with gt) and SmoothnessScorer,
    best of ``repeats`` timed runs after one warm-up, on the current device (CPU)."""
    from metrics.motion import MotionScorer
    from metrics.smoothness import SmoothnessScorer
    from metrics.sync import SyncScorer

    video = bench_video(size, frames)
    scorers = {"Sync": SyncScorer(weights_cfg), "Motion": MotionScorer(weights_cfg),
               "Smo": SmoothnessScorer(weights_cfg)}
    out = {}
    for name, sc in tqdm(scorers.items(), desc="face scorers", disable=not progress):
        gt = video if name == "Motion" else None
        sc.score_video(video, gt)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            sc.score_video(video, gt)
            best = min(best, time.perf_counter() - t0)
        out[name] = 1.0 / best
    return out
