"""Long-term motion styles for SynthTalk: head sway, emphasis nods and blink rhythm.

The point of these tracks (Loopy Sec. 3.2 and MCDM Sec. 3.3 both argue it) is that
they are only predictable from a long motion history: the sway is a sum of slow
sinusoids with periods of 2-6 s and the blinks recur every 3-5 s, so four motion
frames (0.16 s at 25 fps) cannot reveal the phase or the rhythm while 100+ frames can.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MotionStyle:
    """One identity's habits. Angles in degrees, translations in fractions of the frame."""

    periods_s: tuple[float, float, float]   # yaw, pitch, roll sway periods (2-6 s)
    amplitudes: tuple[float, float, float]  # yaw, pitch, roll amplitudes (deg)
    phases: tuple[float, float, float]
    nod_deg: float                          # pitch bump at each phrase start
    blink_period_s: float                   # 3-5 s between blinks
    blink_phase_s: float
    sway_shift: float                       # translation per degree of yaw/pitch

    @classmethod
    def random(cls, rng: np.random.Generator) -> MotionStyle:
        return cls(periods_s=tuple(float(x) for x in rng.uniform(2.0, 6.0, 3)),
                   amplitudes=(float(rng.uniform(6, 14)), float(rng.uniform(3, 7)), float(rng.uniform(2, 5))),
                   phases=tuple(float(x) for x in rng.uniform(0, 2 * np.pi, 3)),
                   nod_deg=float(rng.uniform(4, 9)), blink_period_s=float(rng.uniform(3.0, 5.0)),
                   blink_phase_s=float(rng.uniform(0, 3.0)), sway_shift=float(rng.uniform(0.001, 0.003)))


BLINK_DURATION_S = 0.2


def head_pose(style: MotionStyle, times: np.ndarray, nod_times: list[float]) -> dict[str, np.ndarray]:
    """Pose tracks at ``times`` (s, global clock of the identity).

    Returns float32 arrays: ``yaw``, ``pitch``, ``roll`` ``[T]`` (deg), ``translation``
    ``[T, 2]`` (fraction of the frame, x right / y down), ``scale`` ``[T]``.
    """
    ang = [a * np.sin(2 * np.pi * times / p + ph) for a, p, ph in zip(style.amplitudes, style.periods_s, style.phases, strict=True)]
    yaw, pitch, roll = ang
    for t0 in nod_times:  # a quick downward nod on stressed phrase onsets
        pitch = pitch + style.nod_deg * np.exp(-0.5 * ((times - t0 - 0.1) / 0.12) ** 2)
    tx = style.sway_shift * yaw
    ty = style.sway_shift * pitch
    scale = 1.0 + 0.02 * np.sin(2 * np.pi * times / (style.periods_s[0] * 1.7) + style.phases[1])
    f = np.float32
    return {"yaw": yaw.astype(f), "pitch": pitch.astype(f), "roll": roll.astype(f),
            "translation": np.stack([tx, ty], -1).astype(f), "scale": scale.astype(f)}


def blink_track(style: MotionStyle, times: np.ndarray) -> np.ndarray:
    """Eyelid closure in [0, 1] at ``times``: a triangular 0.2 s blink every period (+-0.15 s jitter)."""
    lo, hi = float(times.min()) - 1.0, float(times.max()) + 1.0
    k0 = int(np.floor((lo - style.blink_phase_s) / style.blink_period_s))
    k1 = int(np.ceil((hi - style.blink_phase_s) / style.blink_period_s))
    out = np.zeros_like(times, dtype=np.float64)
    for k in range(k0, k1 + 1):
        # the jitter of blink k depends on k only, so overlapping clips agree
        jit = np.random.default_rng([abs(k), int(style.blink_period_s * 1e6)]).uniform(-0.15, 0.15)
        c = style.blink_phase_s + k * style.blink_period_s + jit
        out = np.maximum(out, 1.0 - np.abs(times - c) / (BLINK_DURATION_S / 2))
    return np.clip(out, 0, 1).astype(np.float32)
