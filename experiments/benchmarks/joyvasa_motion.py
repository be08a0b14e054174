"""Speed of JoyVASA's audio-to-motion stage (§3.3: "the motion model needs no image"): the real-time
factor of wav2vec2 features + sliding-window DDIM with CFG, i.e. compute seconds per second of audio
(below 1 is faster than real time). Part ``joyvasa_motion`` of the benchmarks:

    python -m experiments.bench model=joyvasa scale=tiny bench.parts=[joyvasa_motion] bench.joyvasa_motion.seconds=10
"""

from __future__ import annotations

import time

import torch

from lightning_modules.joyvasa import JoyVASAModule


@torch.no_grad()
def motion_rtf(module: JoyVASAModule, seconds: float = 10.0, repeats: int = 3, seed: int = 0) -> dict:
    """Time audio -> motion for ``seconds`` of audio (best of ``repeats`` after one warm-up).

    :returns: {audio_seconds, frames, wav2vec_seconds, dit_seconds, rtf, dit_rtf, threads}."""
    module.eval()
    rate = module.audio_encoder.sample_rate
    frames = int(round(seconds * module.fps))
    audio = torch.randn(1, int(seconds * rate), generator=torch.Generator().manual_seed(seed)) * 0.1
    best = None
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        feats = module.audio_features(audio, frames)
        t1 = time.perf_counter()
        module.generate_motion(feats, torch.Generator().manual_seed(seed))
        t2 = time.perf_counter()
        times = (t1 - t0, t2 - t1)
        best = times if best is None or sum(times) < sum(best) else best
    return {"audio_seconds": seconds, "frames": frames, "wav2vec_seconds": best[0], "dit_seconds": best[1],
            "rtf": sum(best) / seconds, "dit_rtf": best[1] / seconds, "threads": torch.get_num_threads()}
