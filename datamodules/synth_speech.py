"""Speech-like audio for SynthTalk: syllables of a source-filter voice, with their mouth-opening track.

A voiced syllable is a glottal pulse train at the speaker's pitch passed through the
vowel's formant resonators (the classic source-filter model of speech); an optional
unvoiced burst (filtered noise) precedes it; phrases of a few syllables are separated
by pauses. Every sample also carries a target mouth opening (vowel openness times
loudness), so the lip track of a clip is a known function of its audio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, lfilter

SAMPLE_RATE = 16000

# (F1, F2, F3) in Hz and jaw openness of five cardinal vowels (Peterson & Barney averages).
VOWELS: dict[str, tuple[tuple[float, float, float], float]] = {
    "a": ((730.0, 1090.0, 2440.0), 1.0),
    "e": ((530.0, 1840.0, 2480.0), 0.6),
    "i": ((270.0, 2290.0, 3010.0), 0.3),
    "o": ((570.0, 840.0, 2410.0), 0.8),
    "u": ((300.0, 870.0, 2240.0), 0.45),
}


@dataclass(frozen=True)
class Speaker:
    """A voice: mean pitch (Hz), syllables per second, syllables per phrase, pause length (s)."""

    f0: float
    syllable_rate: float
    phrase_syllables: tuple[int, int]
    pause_s: tuple[float, float]

    @classmethod
    def random(cls, rng: np.random.Generator) -> Speaker:
        return cls(f0=float(rng.uniform(95, 260)), syllable_rate=float(rng.uniform(3.0, 5.5)),
                   phrase_syllables=(int(rng.integers(2, 4)), int(rng.integers(5, 8))),
                   pause_s=(float(rng.uniform(0.15, 0.3)), float(rng.uniform(0.4, 0.7))))


def _resonator(x: np.ndarray, freq: float, bw: float, sr: int) -> np.ndarray:
    """Two-pole resonator (one formant) with unit gain at its centre frequency."""
    r = np.exp(-np.pi * bw / sr)
    theta = 2 * np.pi * freq / sr
    a = [1.0, -2 * r * np.cos(theta), r * r]
    return lfilter([1.0 - r], a, x)


def _envelope(n: int, sr: int, attack_s: float = 0.02, release_s: float = 0.04) -> np.ndarray:
    env = np.ones(n)
    na, nr = min(n // 2, int(attack_s * sr)), min(n // 2, int(release_s * sr))
    if na:
        env[:na] = np.sin(np.linspace(0, np.pi / 2, na)) ** 2
    if nr:
        env[n - nr:] = np.cos(np.linspace(0, np.pi / 2, nr)) ** 2
    return env


def _voiced(n: int, f0: float, formants, rng: np.random.Generator, sr: int) -> np.ndarray:
    # pitch falls slightly over the syllable (declination) with a little jitter
    f = f0 * np.linspace(1.06, 0.94, n) * (1 + 0.01 * rng.standard_normal())
    phase = np.cumsum(f / sr)
    pulses = np.diff(np.floor(phase), prepend=0.0)  # one impulse per glottal period
    # glottal flow derivative ~ a short decaying pulse; low-passed to soften it
    src = lfilter([1.0], [1.0, -0.9], pulses)
    y = sum(_resonator(src, fr, 60.0 + 0.06 * fr, sr) * g for fr, g in zip(formants, (1.0, 0.6, 0.25), strict=True))
    return y / (np.abs(y).max() + 1e-9)


def _burst(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    b, a = butter(2, 2500.0 / (sr / 2), btype="high")
    return lfilter(b, a, rng.standard_normal(n)) * 0.35


def speak(duration_s: float, speaker: Speaker, rng: np.random.Generator, sr: int = SAMPLE_RATE
          ) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Synthesise ``duration_s`` of speech.

    Returns:
        audio: float32 ``[S]`` in [-1, 1] (peak 0.5).
        openness: float32 ``[S]`` target mouth opening in [0, 1] per sample.
        phrase_starts: onset times (s) of each phrase, where a speaker nods for emphasis.
    """
    n_total = int(round(duration_s * sr))
    audio = np.zeros(n_total)
    openness = np.zeros(n_total)
    starts: list[float] = []
    t = int(rng.uniform(0.0, 0.3) * sr)
    names = list(VOWELS)
    while t < n_total:
        starts.append(t / sr)
        for _ in range(int(rng.integers(speaker.phrase_syllables[0], speaker.phrase_syllables[1] + 1))):
            syl = int(sr / speaker.syllable_rate * rng.uniform(0.8, 1.2))
            if rng.random() < 0.6:  # consonant onset
                nb = int(rng.uniform(0.03, 0.06) * sr)
                seg = slice(t, min(t + nb, n_total))
                m = max(0, seg.stop - seg.start)
                audio[seg] += _burst(nb, rng, sr)[:m] * _envelope(nb, sr, 0.005, 0.01)[:m]
                openness[seg] = 0.15 * _envelope(nb, sr, 0.005, 0.01)[:m]
                t += nb
            nv = int(0.8 * syl)
            formants, open_ = VOWELS[names[int(rng.integers(len(names)))]]
            loud = rng.uniform(0.6, 1.0)
            env = _envelope(nv, sr) * loud
            # open vowels are louder: a wider jaw radiates more energy
            v = _voiced(nv, speaker.f0, formants, rng, sr) * env * (0.5 + 0.5 * open_)
            seg = slice(t, min(t + nv, n_total))
            m = max(0, seg.stop - seg.start)
            audio[seg] += v[:m]
            openness[seg] = np.maximum(openness[seg], open_ * env[:m])
            t += syl
            if t >= n_total:
                break
        t += int(rng.uniform(*speaker.pause_s) * sr)
    audio = 0.5 * audio / (np.abs(audio).max() + 1e-9)
    return audio.astype(np.float32), np.clip(openness, 0, 1).astype(np.float32), starts


def mouth_track(openness: np.ndarray, num_frames: int, fps: float, latency_frames: int = 0,
                sr: int = SAMPLE_RATE) -> np.ndarray:
    """Per-frame mouth opening: the mean target opening over the frame's audio window.

    Frame ``t`` shows the audio of frame ``t - latency_frames`` (a positive latency means the
    lips lag the sound). Returns float32 ``[num_frames]`` in [0, 1].
    """
    spf = sr / fps
    out = np.zeros(num_frames, np.float32)
    for t in range(num_frames):
        a = int(round((t - latency_frames) * spf))
        b = int(round((t - latency_frames + 1) * spf))
        a, b = max(a, 0), min(b, len(openness))
        if b > a:
            out[t] = openness[a:b].mean()
    return out


def frame_envelope(audio: np.ndarray, num_frames: int, fps: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """RMS loudness per video frame, float32 ``[num_frames]``."""
    spf = sr / fps
    out = np.zeros(num_frames, np.float32)
    for t in range(num_frames):
        seg = audio[int(round(t * spf)):int(round((t + 1) * spf))]
        out[t] = np.sqrt(np.mean(seg.astype(np.float64) ** 2)) if len(seg) else 0.0
    return out
