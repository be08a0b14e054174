"""Loader throughput: training clips per second, with and without the decoded-frame cache.

``loader_throughput(cfg.data)`` builds the configured DataModule and times its training
dataset three ways: ``uncached`` (every clip decodes its mp4 again), ``disk_cached``
(frames memory-mapped from the .npy cache, fresh process memory) and ``mem_cached``
(frames already decoded in this process, the steady state of an epoch).
"""

from __future__ import annotations

import time

import torch
from tqdm import tqdm

from datamodules.clips import FrameStore, collate_clips


def _time(ds, n: int, store_factory, desc: str, progress: bool) -> float:
    t0 = time.perf_counter()
    for i in tqdm(range(n), desc=desc, disable=not progress, leave=False):
        if store_factory is not None:
            ds.store = store_factory()
        collate_clips([ds[i % len(ds)]])
    return n / (time.perf_counter() - t0)


def loader_throughput(data_cfg, num_clips: int = 32, progress: bool = True) -> dict:
    """Clips/s of the training loader (single process) for a data config or a built DataModule."""
    import hydra

    from datamodules.base import ClipDataModule

    torch.manual_seed(0)
    dm = data_cfg if isinstance(data_cfg, ClipDataModule) else hydra.utils.instantiate(data_cfg, _convert_="all")
    dm.prepare_data()
    ds = dm.train_dataset()
    size = dm.image_size
    out = {"loader_image_size": size, "loader_clip_frames": dm.spec.num_frames,
           "loader_motion_frames": dm.spec.num_motion_frames, "loader_clips_timed": num_clips}
    out["loader_uncached_clips_per_s"] = _time(ds, num_clips, lambda: FrameStore(size, None), "uncached", progress)
    cache = dm.store.cache_dir
    if cache is not None:
        for rec in ds.records:  # make sure every .npy exists before timing reads of it
            dm.store.get(rec)
        out["loader_disk_cached_clips_per_s"] = _time(ds, num_clips, lambda: FrameStore(size, cache), "disk cached",
                                                      progress)
    warm = dm.store
    for rec in ds.records:
        warm.get(rec)
    ds.store = warm
    out["loader_mem_cached_clips_per_s"] = _time(ds, num_clips, None, "memory cached", progress)
    return out
