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
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from experiments.timing import machine, measure_generation, peak_memory_mb, sync

log = logging.getLogger("experiments.bench")


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
            sync()
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
    from core.cli import user_errors

    with user_errors("experiments.bench", log):
        return _bench(cfg)


def _bench(cfg: DictConfig) -> dict:
    from rich.console import Console
    from rich.table import Table

    from core.cli import ConfigError

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
        from core.tracking import Tracker

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
    from core.cli import run_hydra

    run_hydra(main)
