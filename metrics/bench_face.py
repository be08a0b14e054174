"""Throughput of the face-based per-video metrics (Sync, Glo/Exp, Smo) on one synthetic clip.

``python -m metrics.bench_face --size 64 --frames 50`` prints videos/s per scorer.
The clip is the scikit-image astronaut photo panned a few pixels per frame (a real face,
so the detectors do their full work) with a 16 kHz tone as audio.
"""
from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
from tqdm import tqdm


def bench_video(size: int = 64, frames: int = 50, fps: float = 25.0):
    """The benchmark clip: uint8 [frames, size, size, 3] face video with audio."""
    from skimage.data import astronaut

    from core.video_io import Video

    img = astronaut()
    f = np.stack([cv2.resize(img[0:256, 100 + 2 * (t % 20):356 + 2 * (t % 20)], (size, size)) for t in range(frames)])
    n = int(round(frames / fps * 16000))
    audio = (0.3 * np.sin(2 * np.pi * 220 * np.arange(n) / 16000)).astype(np.float32)
    return Video(frames=f, fps=fps, audio=audio, sample_rate=16000)


def throughput(size: int = 64, frames: int = 50, repeats: int = 3, weights_cfg: dict | None = None,
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
    for name, sc in tqdm(scorers.items(), desc="bench_face", disable=not progress):
        gt = video if name == "Motion" else None
        sc.score_video(video, gt)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            sc.score_video(video, gt)
            best = min(best, time.perf_counter() - t0)
        out[name] = 1.0 / best
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    for k, v in throughput(a.size, a.frames, a.repeats).items():
        print(f"{k:8s} {v:8.3f} videos/s")


if __name__ == "__main__":
    main()
