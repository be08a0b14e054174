"""Typed config of JoyVASA (``experiments/configs/model/joyvasa.yaml``: the paper values, by section)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MotionSpec:
    """The motion layout: K implicit keypoints (LivePortrait: 21 -> 70 numbers a frame)."""

    num_kp: int


@dataclass(frozen=True)
class WindowsSpec:
    """§4.2 W_cur = 100, W_pre = 25."""

    w_cur: int
    w_pre: int


@dataclass(frozen=True)
class DiTSpec:
    """§4.2 the audio-to-motion transformer decoder (6 layers, 8 heads, width 512)."""

    width: int
    layers: int
    heads: int
    ff_mult: int
    dropout: float
    align_band: int


@dataclass(frozen=True)
class AudioSpec:
    """§3.3.1 frozen wav2vec2, its last hidden layer per video frame."""

    wav2vec_path: str | None
    random_config: dict
    sample_rate: int


@dataclass(frozen=True)
class LossSpec:
    """§4.2 Eq. 8 weights (0 drops a term)."""

    velocity: float
    smooth: float
    expression: float


@dataclass(frozen=True)
class GuidanceSpec:
    """Eq. 3: lambda_c, and the training drop rate of the audio condition (§3.3.1, 0.1)."""

    scale: float
    audio_drop: float


@dataclass(frozen=True)
class SamplingSpec:
    """DDIM steps, the seed of the test items' noise, frames rendered per forward."""

    num_steps: int
    seed: int
    progress: bool
    render_chunk: int


@dataclass(frozen=True)
class RendererSpec:
    """The trainable LivePortrait-form renderer (``renderer.py``)."""

    channels: int
    depth: int
    width: int
    sigma: float
    max_angle: float


@dataclass(frozen=True)
class LivePortraitSpec:
    """§3.2 LivePortrait's motion extractor as the frozen E_mnt: its folder (or null), input size and the
    ConvNeXtV2 stage depths and widths of the official file."""

    path: str | None
    image_size: int
    depths: list
    dims: list


@dataclass(frozen=True)
class OptimSpec:
    """§4.2 Adam, lr 1e-4 for the motion model; ``render_lr`` for the renderer stage."""

    lr: float
    betas: list
    render_lr: float
