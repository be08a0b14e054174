"""The scorer protocol shared by every metric of the suite (docs/CONTRACTS.md, "Metrics").

A *scorer* turns decoded videos (:class:`core.video_io.Video`) into numbers:

- ``kind == "per_video"``: ``score_video(pred, gt) -> {metric name: float}`` (Sync, Glo/Exp, Smo,
  SSIM, IQA/VQA); the evaluator averages over videos and bootstraps the mean.
- ``kind == "set"``: ``features(video) -> np.ndarray [N, D]`` (FID, FVD-I, FVD-R, E-FID); the
  evaluator pools the rows of all generated and all ground-truth videos and takes the Frechet
  distance between the two sets.

``backbone`` labels what produced the number: the path of an official weight file,
``standin:<name>:seed0`` for a fixed-seed random network of the same interface, ``synthtalk:<name>``
for a network the suite trained itself on its synthetic benchmark, or ``custom:<name>`` for any other
non-official network. ``protocol`` says which reference implementation the scorer reproduces and
``deviations`` (a tuple of short strings) where this run departs from the paper's protocol. A number
is comparable with a paper's only when the backbone is official and there is no deviation
(:func:`comparable`); the summary, the MLflow tags and the tables carry both.

A scorer that cannot score one video raises :class:`VideoSkipped`; the evaluator records
``skipped: <reason>`` for that video and goes on.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

# One exception class for the whole package: the landmark package defines it, we re-export it.
from metrics.landmarks import VideoSkipped

PER_VIDEO = "per_video"
SET = "set"


@runtime_checkable
class Scorer(Protocol):
    """What :mod:`metrics.evaluate` needs from a metric.

    Attributes:
        name: registry name (one of ``metrics.registry.METRIC_NAMES`` or a group such as ``Sync``).
        needs_gt: True when the metric compares with the ground-truth video.
        kind: ``"per_video"`` or ``"set"``.
        backbone: official weight path, or a label with a prefix of :data:`NON_OFFICIAL_PREFIXES`.
        protocol: the reference implementation reproduced (repository, function, settings).
        deviations: short strings, where this run departs from the paper's protocol; empty = none.
    """

    name: str
    needs_gt: bool
    kind: str
    backbone: str
    protocol: str
    deviations: tuple[str, ...]


def standin_label(name: str, seed: int = 0) -> str:
    """Label of a fixed-seed random stand-in network, e.g. ``standin:i3d-small:seed0``."""
    return f"standin:{name}:seed{seed}"


def is_standin(backbone: str) -> bool:
    """True when a backbone label names a stand-in (never put beside a paper number)."""
    return str(backbone).startswith("standin:")


#: Backbone label prefixes of networks that are not the papers' official weights.
NON_OFFICIAL_PREFIXES = ("standin:", "synthtalk:", "custom:")


def is_official(backbone: str) -> bool:
    """True when a backbone label names official weights (no prefix of :data:`NON_OFFICIAL_PREFIXES`)."""
    return bool(str(backbone)) and not str(backbone).startswith(NON_OFFICIAL_PREFIXES)


def comparable(backbone: str, deviations=()) -> bool:
    """A number is comparable with a paper's only with official weights and the paper's protocol."""
    return is_official(backbone) and not tuple(deviations or ())


def video_frames(video) -> np.ndarray:
    """uint8 ``[T, H, W, 3]`` RGB frames of a Video (or of a bare array), checked.

    Raises VideoSkipped for empty videos or arrays of the wrong layout.
    """
    frames = np.asarray(getattr(video, "frames", video))
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise VideoSkipped(f"frames must be [T,H,W,3] RGB, got shape {tuple(frames.shape)}")
    if frames.shape[0] == 0:
        raise VideoSkipped("video has no frames")
    if frames.dtype != np.uint8:
        frames = np.clip(frames, 0, 255).astype(np.uint8)
    return frames


def sample_frames(frames: np.ndarray, stride: int = 1, max_frames: int | None = None) -> np.ndarray:
    """Every ``stride``-th frame, then at most ``max_frames`` of them evenly spread.

    Documented frame sampling for FID / E-FID: stride 1 and no cap = every frame (Hallo/DisCo
    protocol); the tiny preset caps frames so CPU evaluation stays fast.
    """
    if stride < 1:
        raise ValueError(f"frame stride must be >= 1 (config key metrics.<name>.frame_stride), got {stride}")
    frames = frames[::stride]
    if max_frames is not None and len(frames) > max_frames:
        idx = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
        frames = frames[idx]
    return frames


__all__ = ["NON_OFFICIAL_PREFIXES", "PER_VIDEO", "SET", "Scorer", "VideoSkipped", "comparable", "is_official",
           "is_standin", "sample_frames", "standin_label", "video_frames"]
