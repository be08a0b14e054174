"""Benchmarks (never timed tests): ``python -m experiments.bench [model=loopy] [scale=tiny] [bench.parts=[...]]``.

Parts:
- ``train``: seconds per training step and clips/s of the model's last stage, peak memory;
- ``sample``: seconds per generated test item and the real-time factor (generation time /
  video duration; below 1 is faster than real time);
- ``data``: clips/s of the training loader, decoded from mp4 and from the cache;
- ``metrics``: videos/s of each metric;
- ``frechet``: seconds per bootstrap resample of a set metric (FID, FVD, E-FID) on 2048-d features,
  and the cost of a 100-resample interval (``bench.frechet``).
- ``startup``: seconds from the shell to the answer of two config-only commands, each in a fresh
  interpreter: ``python -m experiments.run ablation=tsm_stride --cfg job`` and an unknown ablation's
  error (median of ``bench.startup_repeats`` calls, with their exit status).

Prints a table and logs a run tagged ``suite.kind=bench`` to MLflow with the machine it ran on.
"""

from __future__ import annotations

import logging
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("experiments.bench")


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


def _sync() -> None:
    """Wait for queued GPU work, so that wall-clock timings cover it."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _timed(fn: Callable[[], object], warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    _sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync()
    return (time.perf_counter() - t0) / max(repeats, 1)


def bench_train(cfg: DictConfig, steps: int) -> dict:
    """Seconds per optimiser step of the last training stage (after a warm-up of 2 steps)."""
    import lightning.pytorch as pl

    from experiments.run import stages_of
    from lightning_modules.build import build_model

    pl.seed_everything(cfg.seed)
    dm = hydra.utils.instantiate(cfg.data, _convert_="all")
    module = build_model(cfg.model)
    stage = stages_of(cfg)[-1]["name"]
    if hasattr(module, "set_stage"):
        module.set_stage(stage)
    timings: list[float] = []

    class _Clock(pl.Callback):
        def on_train_batch_start(self, *a):
            self.t = time.perf_counter()

        def on_train_batch_end(self, *a):
            _sync()
            timings.append(time.perf_counter() - self.t)

    trainer = hydra.utils.instantiate(cfg.trainer, max_steps=steps + 2, logger=False, callbacks=[_Clock()],
                                      enable_progress_bar=False, enable_checkpointing=False)
    trainer.fit(module, datamodule=dm)
    steady = timings[2:] or timings
    s = sum(steady) / len(steady)
    bs = int(cfg.data.get("batch_size", 1))
    return {"train_s_per_step": s, "train_clips_per_s": bs / s, "stage": stage, "peak_mem_mb": peak_memory_mb()}


def bench_sample(cfg: DictConfig, items: int) -> dict:
    """Seconds per test item and the real-time factor of generation."""
    import lightning.pytorch as pl

    from experiments.run import stages_of
    from lightning_modules.build import build_model

    pl.seed_everything(cfg.seed)
    dm = hydra.utils.instantiate(cfg.data, _convert_="all")
    module = build_model(cfg.model).eval()
    if hasattr(module, "set_stage"):
        module.set_stage(stages_of(cfg)[-1]["name"])
    out = measure_generation(module, dm, items)
    return {"sample_s_per_item": out["s_per_item"], "sample_rtf": out["RTF"], "sample_items": out["items"],
            "peak_mem_mb": peak_memory_mb()}


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
            _sync()
            start[0] = time.perf_counter()

        def _post(*_):
            _sync()
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
                _sync()
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


def bench_data(cfg: DictConfig) -> dict:
    from datamodules.bench import loader_throughput

    return loader_throughput(cfg.data, num_clips=int(cfg.bench.get("data_clips", 32)))


def bench_metrics(cfg: DictConfig) -> dict:
    from metrics.bench import metric_throughput

    return metric_throughput(**OmegaConf.to_container(cfg.bench.metrics, resolve=True))


def bench_frechet(cfg: DictConfig) -> dict:
    from metrics.bench import frechet_interval_cost

    return frechet_interval_cost(**OmegaConf.to_container(cfg.bench.frechet, resolve=True))


def bench_startup(cfg: DictConfig) -> dict:
    """Wall seconds from the shell to the answer of config-only commands (issue 19, item 7: they took
    28-30 s while Lightning, MLflow and the models were imported up front). Each call is a fresh
    interpreter in an empty folder, as a user's first command is."""
    import os
    import statistics
    import subprocess
    import sys
    import tempfile

    repo = Path(__file__).resolve().parents[1]
    commands = {"cfg_job": ["ablation=tsm_stride", "--cfg", "job"],
                "unknown_ablation": ["ablation=tsm_strid"]}
    path = os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    out: dict[str, object] = {}
    repeats = int(cfg.bench.get("startup_repeats", 3))
    for name, args in commands.items():
        times, codes = [], set()
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as cwd:
                t0 = time.perf_counter()
                r = subprocess.run([sys.executable, "-m", "experiments.run", *args], cwd=cwd, env=env,
                                   capture_output=True, text=True, timeout=600)
                times.append(time.perf_counter() - t0)
                codes.add(r.returncode)
        out[f"{name}_s"] = statistics.median(times)
        out[f"{name}_max_s"] = max(times)
        out[f"{name}_exit"] = ",".join(str(c) for c in sorted(codes))
    return out


PARTS = {"train": lambda c: bench_train(c, int(c.bench.train_steps)),
         "sample": lambda c: bench_sample(c, int(c.bench.sample_items)),
         "data": bench_data, "metrics": bench_metrics, "frechet": bench_frechet, "startup": bench_startup}


@hydra.main(version_base="1.3", config_path="configs", config_name="bench")
def main(cfg: DictConfig) -> dict:
    from experiments.cli import user_errors

    with user_errors("experiments.bench", log):
        return _bench(cfg)


def _bench(cfg: DictConfig) -> dict:
    from rich.console import Console
    from rich.table import Table

    from experiments.validate import ConfigError

    unknown = [p for p in cfg.bench.parts if p not in PARTS]
    if unknown:
        raise ConfigError(f"bench.parts: unknown part(s) {unknown}; choose from {sorted(PARTS)}")
    results: dict[str, object] = {"machine": machine(), "model": cfg.model.get("name"), "scale": cfg.scale.name}
    for part in cfg.bench.parts:
        log.info("benchmark: %s", part)
        for k, v in PARTS[part](cfg).items():
            results[f"{part}.{k}" if not k.startswith(part) else k] = v
    table = Table(title=f"benchmark — {results['machine']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for k, v in results.items():
        table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    Console().print(table)
    if cfg.bench.log_mlflow:
        from experiments.tracking import Tracker

        t = Tracker(cfg.logger.tracking_uri, cfg.logger.experiment_name)
        with t.run(f"bench {cfg.model.get('name')} {cfg.scale.name}", {"suite.kind": "bench",
                                                                       "suite.machine": results["machine"]}) as rid:
            t.log_config(rid, cfg)
            t.client.log_dict(rid, {k: (v if isinstance(v, (int, float, str)) else str(v)) for k, v in results.items()},
                              "bench.json")
            for k, v in results.items():
                if isinstance(v, (int, float)):
                    t.client.log_metric(rid, f"bench/{k}", float(v))
    return results


if __name__ == "__main__":
    from experiments.cli import run_hydra

    run_hydra(main)
