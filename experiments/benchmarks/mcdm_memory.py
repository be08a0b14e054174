"""Constant-memory benchmark of MCDM's long-video generation (§3.4): part ``mcdm_memory`` of
``python -m experiments.bench model=mcdm scale=tiny bench.parts=[mcdm_memory]``.

Peak resident memory of a fresh process generating N frames, for each N of ``bench.mcdm_memory.frames``.
The generated clips are streamed to a callback (as a video writer would consume them), so what remains
is the sampler's own state: the archived clip (a latents) and one motion memory per temporal layer. Each
length runs in its own interpreter (peak RSS is per process); DDIM steps change time, not memory.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

ROOT = Path(__file__).resolve().parents[2]
CHILD = "import sys; from experiments.benchmarks.mcdm_memory import child; child(sys.argv[1:])"


def without_files(model_cfg: DictConfig) -> DictConfig:
    """The model config with every pretrained file left out (random weights: memory and parameter counts
    do not depend on them)."""
    cfg = OmegaConf.create(OmegaConf.to_container(model_cfg, resolve=True))
    for key in ("pretrained.path", "audio.wav2vec_path", "image.clip_path", "latent.vae_path"):
        if OmegaConf.select(cfg, key, default=None) is not None:
            OmegaConf.update(cfg, key, None)
    return cfg


def run_one(model_cfg: DictConfig, num_frames: int, steps: int, image_size: int, fps: float = 25.0,
            threads: int = 1) -> dict:
    """Generate ``num_frames`` frames in this process; returns frames, seconds and peak RSS (MiB)."""
    import torch

    from lightning_modules.build import build_model

    torch.set_num_threads(threads)  # on a shared CPU one thread per process avoids oversubscription
    torch.manual_seed(0)
    cfg = without_files(model_cfg)
    cfg.sampling.num_steps = steps
    model = build_model(cfg).eval()
    rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ref = torch.rand(1, 3, image_size, image_size) * 2 - 1
    audio = torch.randn(1, int(num_frames / fps * 16000))
    frames = [0]

    def consume(i, clip):  # a writer would encode the clip here; only the count is kept
        frames[0] += clip.shape[1]

    t0 = time.time()
    model.generate(ref, audio, num_frames, fps, on_clip=consume, progress=False)
    return {"frames": frames[0], "steps": steps, "seconds": round(time.time() - t0, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_after_build_mib": round(rss_model, 1),
            "memory_state_floats": sum(v.numel() for v in model.unet._memory.values())}


def child(argv: list[str]) -> None:
    """The fresh interpreter of one length: ``<model config yaml> <frames> <steps> <image size>``."""
    cfg, n, steps, size = OmegaConf.load(argv[0]), int(argv[1]), int(argv[2]), int(argv[3])
    print(json.dumps(run_one(cfg, n, steps, size)))


def measure(model_cfg: DictConfig, lengths, steps: int, image_size: int, out: str | None = None) -> list[dict]:
    """Run every length in a fresh interpreter; write the results atomically to ``out`` if given."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg_file = Path(tmp) / "model.yaml"
        cfg_file.write_text(OmegaConf.to_yaml(without_files(model_cfg)))
        for n in lengths:
            cmd = [sys.executable, "-c", CHILD, str(cfg_file), str(n), str(steps), str(image_size)]
            res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            if res.returncode:
                raise RuntimeError(f"benchmark of {n} frames failed:\n{res.stderr[-2000:]}")
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    if out:
        from core.atomic import write_text

        write_text(out, json.dumps(rows, indent=2))
    return rows
