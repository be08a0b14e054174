"""Configuration of the SynthTalk evaluators (config group ``evaluators``), and the cache key built from it.

The defaults are chosen by measurement (README "SynthTalk evaluators"): all evaluators train within
the main job's budget on a 2-core CPU at 32 px. Any change of a value, of the generator parameters
(``params.json``, its ``version`` included) or of :data:`CODE_VERSION` gives a new cache folder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields

#: Bump when training or architecture code changes what a given config produces.
CODE_VERSION = 1


@dataclass(frozen=True)
class FaceConfig:
    """Face network (:mod:`metrics.synthtalk.face_train`): width, steps, batch, loss weights."""

    width: int = 16
    steps: int = 800
    pairs: int = 24
    negatives: int = 16
    lr: float = 3e-3
    motion_weight: float = 4.0
    far_weight: float = 4.0
    blink_oversample: float = 5.0


@dataclass(frozen=True)
class SyncConfig:
    """SyncNet (:mod:`metrics.synthtalk.syncnet`): width of ``metrics.sync.S``, steps, batch, margin.

    A margin above the initial embedding distances (~20) keeps the negatives' push active from the
    first step; with 10 the training sat longer at the collapsed state where all distances are equal.
    """

    width: float = 0.0625
    steps: int = 350
    batch: int = 16
    lr: float = 1e-3
    margin: float = 30.0
    shift_negatives: int = 12
    other_negatives: int = 4
    min_shift: int = 2


@dataclass(frozen=True)
class EvaluatorConfig:
    """What the cached evaluators depend on besides the data; ``skill``: measure and write skill.json."""

    face: FaceConfig = field(default_factory=FaceConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    seed: int = 0
    skill: bool = True

    @classmethod
    def from_dict(cls, d: dict | None) -> EvaluatorConfig:
        """Build from a plain mapping (Hydra's ``evaluators`` group); unknown keys raise naming the key."""
        d = dict(d or {})
        top = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - top)
        if unknown:
            raise ValueError(f"evaluators: unknown keys {unknown}; use {sorted(top)}")
        parts = {}
        for name, sub in (("face", FaceConfig), ("sync", SyncConfig)):
            given = dict(d.pop(name, None) or {})
            bad = sorted(set(given) - {f.name for f in fields(sub)})
            if bad:
                raise ValueError(
                    f"evaluators.{name}: unknown keys {bad}; use {[f.name for f in fields(sub)]}"
                )
            parts[name] = sub(**given)
        return cls(**parts, **d)

    def to_dict(self) -> dict:
        return asdict(self)


def cache_key(params: dict, config: EvaluatorConfig) -> str:
    """12 hex digits of SHA-1 over the generator parameters, the config (skill aside), CODE_VERSION."""
    cfg = config.to_dict()
    cfg.pop("skill")  # measuring skill changes no weight
    blob = json.dumps({"params": params, "config": cfg, "code": CODE_VERSION}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


__all__ = ["CODE_VERSION", "EvaluatorConfig", "FaceConfig", "SyncConfig", "cache_key"]
