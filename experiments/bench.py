"""Benchmarks (never timed tests): ``python -m experiments.bench [model=loopy] [scale=tiny] [bench.parts=[...]]``.

Parts:
- ``train``: seconds per training step and clips/s of the model's last stage, peak memory;
- ``sample``: seconds per generated test item and the real-time factor (generation time /
  video duration; below 1 is faster than real time);
- ``data``: clips/s of the training loader, decoded from mp4 and from the cache;
- ``metrics``: videos/s of each metric; ``face``: videos/s of the face-based scorers (Sync, Glo/Exp, Smo);
- ``frechet``: seconds per bootstrap resample of a set metric (FID, FVD, E-FID) on 2048-d features,
  and the cost of a 100-resample interval (``bench.frechet``).
- ``startup``: seconds from the shell to the answer of two config-only commands, each in a fresh
  interpreter: ``python -m experiments.run ablation=tsm_stride --cfg job`` and an unknown ablation's
  error (median of ``bench.startup_repeats`` calls, with their exit status).
- ``params``: parameters per paper component of the model (``model=mcdm scale=paper``: the paper's shapes,
  built on the meta device without weights);
- ``mcdm_memory`` (``model=mcdm``): peak memory of a fresh process generating each length of
  ``bench.mcdm_memory.frames`` frames, MCDM's constant-state sampling (§3.4);
- ``joyvasa_motion`` (``model=joyvasa``): real-time factor of JoyVASA's audio-to-motion stage (§3.3).

The measurements live in ``experiments/benchmarks/`` (loader, scorers, mcdm_memory, joyvasa_motion) and
``experiments/timing.py``.

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
    from experiments.benchmarks.loader import loader_throughput

    return loader_throughput(cfg.data, num_clips=int(cfg.bench.get("data_clips", 32)))


def _options(cfg: DictConfig, part: str) -> dict:
    return OmegaConf.to_container(cfg.bench[part], resolve=True)


def bench_metrics(cfg: DictConfig) -> dict:
    from experiments.benchmarks.scorers import metric_throughput

    return metric_throughput(**_options(cfg, "metrics"))


def bench_face(cfg: DictConfig) -> dict:
    """Videos/s of the face-based scorers (Sync, Glo/Exp, Smo) on a panned real face."""
    from experiments.benchmarks.scorers import face_throughput

    return face_throughput(**_options(cfg, "face"))


def bench_frechet(cfg: DictConfig) -> dict:
    from experiments.benchmarks.scorers import frechet_interval_cost

    return frechet_interval_cost(**_options(cfg, "frechet"))


def _needs_model(cfg: DictConfig, part: str, name: str) -> None:
    from core.cli import ConfigError

    if cfg.model.get("name") != name:
        raise ConfigError(f"bench.parts: {part} measures {name}; add model={name} "
                          f"(got model={cfg.model.get('name')})")


def bench_params(cfg: DictConfig) -> dict:
    """Parameters per paper component of ``cfg.model`` (e.g. ``model=mcdm scale=paper``), built on the meta
    device without its pretrained files: no memory, no weights."""
    import torch

    from experiments.benchmarks.mcdm_memory import without_files
    from lightning_modules.build import build_model

    with torch.device("meta"):
        module = build_model(without_files(cfg.model))
    return {k: int(v) for k, v in module.parameter_counts().items()}


def bench_mcdm_memory(cfg: DictConfig) -> dict:
    """Peak memory of MCDM's generation for each length of ``bench.mcdm_memory.frames`` (§3.4)."""
    from experiments.benchmarks.mcdm_memory import measure

    _needs_model(cfg, "mcdm_memory", "mcdm")
    o = _options(cfg, "mcdm_memory")
    rows = measure(cfg.model, o["frames"], int(o["steps"]), int(cfg.scale.image_size), o.get("out"))
    return {f"{r['frames']}_frames.{k}": v for r in rows for k, v in r.items() if k != "frames"}


def bench_joyvasa_motion(cfg: DictConfig) -> dict:
    """Real-time factor of JoyVASA's audio-to-motion stage (wav2vec2 + sliding-window DDIM with CFG)."""
    from experiments.benchmarks.joyvasa_motion import motion_rtf
    from lightning_modules.build import build_model

    _needs_model(cfg, "joyvasa_motion", "joyvasa")
    return motion_rtf(build_model(cfg.model), **_options(cfg, "joyvasa_motion"))


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
         "data": bench_data, "metrics": bench_metrics, "face": bench_face, "frechet": bench_frechet,
         "startup": bench_startup, "params": bench_params, "mcdm_memory": bench_mcdm_memory,
         "joyvasa_motion": bench_joyvasa_motion}


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
