"""Speed of JoyVASA's audio-to-motion stage (§3.3: "the motion model needs no image"): the real-time
factor of wav2vec2 features + sliding-window DDIM with CFG, i.e. compute seconds per second of audio
(below 1 is faster than real time). A benchmark, not a test:

    python -m lightning_modules.joyvasa.benchmark [scale=tiny|small|paper] [--seconds 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from lightning_modules.joyvasa.joyvasa_module import JoyVASAModule

CONFIGS = Path(__file__).resolve().parents[2] / "experiments" / "configs"


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


def main(argv: list[str] | None = None) -> dict:
    import hydra
    from hydra import compose, initialize_config_dir
    from rich import print as rprint

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. scale=paper model.sampling.num_steps=50")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        cfg = compose("run", overrides=["model=joyvasa", *args.overrides])
    module = hydra.utils.instantiate(cfg.model, _convert_="all")
    result = motion_rtf(module, args.seconds, args.repeats)
    rprint({"scale": cfg.scale.name, **{k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}})
    return result


if __name__ == "__main__":
    main()
