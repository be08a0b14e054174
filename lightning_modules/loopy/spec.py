"""Typed config of Loopy (``experiments/configs/model/loopy.yaml``: the paper values, by section)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TSMSpec:
    """§3.2 Eq. 2, the temporal segment module: stride s, expand ratio r, segments, abstraction (Table 3)."""

    stride: int
    expand_ratio: int
    num_segments: int
    abstraction: str
    enabled: bool
    plain_frames: int


@dataclass(frozen=True)
class TemporalSpec:
    """§3.2 inter-/intra-clip temporal layers: ``dual`` or ``single`` (Table 3), attention heads."""

    layout: str
    heads: int


@dataclass(frozen=True)
class AudioSpec:
    """§3.3 audio condition module: wav2vec2 folder (or ``random_config``), token width, frame window."""

    wav2vec_path: str | None
    random_config: dict
    sample_rate: int
    dim: int
    window_before: int
    window_after: int


@dataclass(frozen=True)
class A2LSpec:
    """§3.3 audio-to-latents: on/off (Table 3), learnable embeddings, width, heads."""

    enabled: bool
    num_embeddings: int
    dim: int
    heads: int


@dataclass(frozen=True)
class VarianceSpec:
    """Appendix B.1: the scale s of the Glo / Exp variances the A2L module is conditioned on."""

    scale: float


@dataclass(frozen=True)
class MasksSpec:
    """§3.4 condition masks and dropout rates."""

    audio_drop: float
    motion_latents_drop: float
    reference_drop: float
    motion_frames_mask: float


@dataclass(frozen=True)
class GuidanceSpec:
    """§3.4 inference guidance (Table 7): audio ratio and reference ratio."""

    audio_ratio: float
    ref_ratio: float


@dataclass(frozen=True)
class SamplingSpec:
    """§3.5 "DDIM with 25 denoising steps"."""

    num_steps: int
    progress: bool


@dataclass(frozen=True)
class OptimSpec:
    """§3.5 AdamW."""

    lr: float
    weight_decay: float
    betas: list
