"""Timing of generation and training: the clock of ``experiments.bench`` and of Loopy Tables 5 and 6.

``speed_row`` gives a variant's row of Loopy Table 5 (seconds per denoising step, Sec. 4.4) and Table 6
(the cost of a clip and of a 15-s video) when a table sets ``experiment.measure: speed``; the runner
calls it instead of training and scoring. GPU work is waited for before every reading of the clock.
"""

from __future__ import annotations

import platform
import resource
import time

from omegaconf import DictConfig


def machine() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync() -> None:
    """Wait for queued GPU work, so that wall-clock timings cover it."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def measure_generation(module, dm, items: int, denoiser: str | None = None) -> dict:
    """Generate ``items`` test items; seconds per item, real-time factor (generation time / video
    duration) and, with ``denoiser`` (the attribute of the denoising network, e.g. ``dual_unet``),
    the mean wall time of its forward calls, i.e. seconds per denoising step with every guidance
    branch the module batches into that call (Loopy Table 5's measure)."""
    import torch

    calls: list[float] = []
    hooks = []
    if denoiser:
        net, start = module.get_submodule(denoiser), [0.0]

        def _pre(*_):
            sync()
            start[0] = time.perf_counter()

        def _post(*_):
            sync()
            calls.append(time.perf_counter() - start[0])

        hooks = [net.register_forward_pre_hook(_pre), net.register_forward_hook(_post)]
    dm.prepare_data()
    if hasattr(dm, "setup"):
        dm.setup("predict")
    gen_s, video_s, n = 0.0, 0.0, 0
    try:
        with torch.no_grad():
            for i, batch in enumerate(dm.predict_dataloader()):
                if i >= items:
                    break
                t0 = time.perf_counter()
                video = module.predict_step(batch, i)["video"]
                sync()
                gen_s += time.perf_counter() - t0
                fps = float(batch["fps"][0] if isinstance(batch["fps"], (list, torch.Tensor)) else batch["fps"])
                video_s += video.shape[1] / fps
                n += 1
    finally:
        for h in hooks:
            h.remove()
    out = {"s_per_item": gen_s / max(n, 1), "RTF": gen_s / max(video_s, 1e-9), "items": n}
    if calls:
        out["s_per_denoising_step"] = sum(calls) / len(calls)
    return out


def speed_row(cfg: DictConfig, module, dm) -> dict[str, float]:
    """The columns of Loopy Tables 5 and 6 for one variant (``experiment.measure: speed``): seconds per
    denoising step, the denoising cost of one clip (``model.num_frames`` frames, ``model.sampling.num_steps``
    steps), the cost of a 15-s video and the real-time factor. Timing does not depend on the weights,
    so the variant is not trained."""
    m = cfg.experiment.speed
    g = measure_generation(module, dm, int(m.num_items), str(m.denoiser))
    steps = int(cfg.model.sampling.num_steps)
    return {"s/step": g["s_per_denoising_step"], "Cost/clip": g["s_per_denoising_step"] * steps,
            "Cost/15s": g["RTF"] * 15.0, "RTF": g["RTF"]}
