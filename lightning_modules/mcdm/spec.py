"""Typed config of MCDM (``experiments/configs/model/mcdm.yaml``: the paper values, by section)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArchivedSpec:
    """§3.2 archived-clip motion prior: a archived frames, m tokens, n queries (§4.1), the encoder and
    aggregator (Table 5's B1/B2), ``enabled`` false = "w/o F_a" (Table 4)."""

    enabled: bool
    encoder: str
    aggregator: str
    num_frames: int
    num_tokens: int | None
    num_queries: int
    patch_size: int


@dataclass(frozen=True)
class PresentSpec:
    """§3.1 present-clip reference attention: motion tokens or, "w/o F_pc" (Table 4), audio; its heads."""

    source: str
    heads: int


@dataclass(frozen=True)
class MTASpec:
    """§3.4 memory-efficient temporal attention: ``memory`` or ``standard`` ("w/o MTA"), alpha of Eq. 5."""

    kind: str
    alpha: float
    heads: int
    nb_features: int


@dataclass(frozen=True)
class MotionPriorSpec:
    """§3.3 present-clip motion-prior diffusion model and its motion encoders."""

    layers: int
    dim: int
    heads: int
    motion_dim: int
    encoder_hidden: int
    landmark_drop: float
    use_landmarks: bool


@dataclass(frozen=True)
class AudioSpec:
    """§3.3 frozen wav2vec2 audio tokens and the audio context of a clip."""

    wav2vec_path: str | None
    context_frames: int
    random_config: dict


@dataclass(frozen=True)
class ImageSpec:
    """§3.3 frozen CLIP image tokens of the reference."""

    clip_path: str | None
    random_config: dict


@dataclass(frozen=True)
class GuidanceSpec:
    """Classifier-free guidance on F_pc: the sampling scale and the training drop rate of F_pc."""

    scale: float
    present_drop: float


@dataclass(frozen=True)
class SamplingSpec:
    """DDIM steps."""

    num_steps: int


@dataclass(frozen=True)
class OptimSpec:
    """§4.1 AdamW, learning rate 1e-5."""

    lr: float
    weight_decay: float
