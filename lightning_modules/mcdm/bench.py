"""Constant-memory benchmark of MCDM's long-video generation (§3.4): peak resident memory of a fresh
process generating N frames at ``scale=tiny``, for several N. The generated clips are streamed to a
callback (as a video writer would consume them), so what remains is the sampler's own state: the
archived clip (a latents) and one motion memory per temporal layer.

    python -m lightning_modules.mcdm.bench --frames 300 1200 2400 7200 --steps 25 --out reports/mcdm_memory.json
    python -m lightning_modules.mcdm.bench --paper-counts     # scale=paper on the meta device

Each length runs in its own process (peak RSS is per process); DDIM steps change time, not memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_tiny(steps: int):
    """The model of ``model=mcdm scale=tiny`` (model file + tiny preset), random weights."""
    from omegaconf import OmegaConf

    from lightning_modules.build import build_model

    cfg = OmegaConf.load(os.path.join(ROOT, "experiments/configs/model/mcdm.yaml"))
    cfg = OmegaConf.merge(cfg, OmegaConf.load(os.path.join(ROOT, "experiments/configs/preset/mcdm_tiny.yaml")).model)
    for key in ("pretrained.path", "audio.wav2vec_path", "image.clip_path"):
        OmegaConf.update(cfg, key, None)
    cfg.sampling.num_steps = steps
    return build_model(cfg).eval()


def paper_parameter_counts() -> dict[str, int]:
    """Instantiate ``model=mcdm scale=paper`` on the meta device (no memory, no weights) and count
    parameters per paper module."""
    import torch
    from omegaconf import OmegaConf

    from lightning_modules.build import build_model

    cfg = OmegaConf.load(os.path.join(ROOT, "experiments/configs/model/mcdm.yaml"))
    for key in ("pretrained.path", "audio.wav2vec_path", "image.clip_path"):
        OmegaConf.update(cfg, key, None)
    with torch.device("meta"):
        model = build_model(cfg)
    return model.parameter_counts()


def run_one(num_frames: int, steps: int, image_size: int = 64, fps: float = 25.0, threads: int = 1) -> dict:
    """Generate ``num_frames`` frames in this process; returns frames, seconds and peak RSS (MiB)."""
    import torch

    torch.set_num_threads(threads)  # on a shared CPU one thread per process avoids oversubscription
    torch.manual_seed(0)
    model = build_tiny(steps)
    rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ref = torch.rand(1, 3, image_size, image_size) * 2 - 1
    audio = torch.randn(1, int(num_frames / fps * 16000))
    frames = [0]

    def consume(i, clip):  # a writer would encode the clip here; only the count is kept
        frames[0] += clip.shape[1]

    t0 = time.time()
    model.generate(ref, audio, num_frames, fps, on_clip=consume, progress=True)
    return {"frames": frames[0], "steps": steps, "seconds": round(time.time() - t0, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_after_build_mib": round(rss_model, 1),
            "memory_state_floats": sum(v.numel() for v in model.unet._memory.values())}


def measure(lengths, steps: int, out: str | None = None) -> list[dict]:
    """Run every length in a fresh interpreter; write the results atomically to ``out`` if given."""
    rows = []
    for n in lengths:
        cmd = [sys.executable, "-m", "lightning_modules.mcdm.bench", "--one", str(n), "--steps", str(steps)]
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if res.returncode:
            raise RuntimeError(f"benchmark of {n} frames failed:\n{res.stderr[-2000:]}")
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    if out:
        from core.atomic import atomic_path

        with atomic_path(out) as tmp:
            tmp.write_text(json.dumps(rows, indent=2))
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, nargs="+", default=[300, 1200, 2400, 7200])
    ap.add_argument("--steps", type=int, default=25, help="DDIM steps per clip (time only, not memory)")
    ap.add_argument("--out", default=None, help="JSON file for the results")
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--paper-counts", action="store_true", help="parameter counts at scale=paper (meta device)")
    args = ap.parse_args(argv)
    if args.paper_counts:
        for name, n in paper_parameter_counts().items():
            print(f"{name:32s} {n / 1e6:10.2f} M")
        return
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.steps)))
        return
    measure(args.frames, args.steps, args.out)


if __name__ == "__main__":
    from core.cli import run_cli

    run_cli(main, "lightning_modules.mcdm.bench")
