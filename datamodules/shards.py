"""The feature cache as a streamed, sharded data set (LitData's format): N nodes read disjoint shards.

``export(cache_root, out)`` (or ``python -m datamodules.shards export --cache DIR --out PATH_OR_URL``)
writes every video of a ``FeatureCache`` (``datamodules/feature_cache.py``) with
``litdata.optimize``. One sample per video::

    {"video_id": str, <feature>: np.ndarray, ...}   e.g. latents [T,4,h,w] float16, landmarks [T,68,2] float32

``out`` then holds ``index.json`` (chunk list, sample layout) and ``chunk-<worker>-<i>.bin`` files of
about ``chunk_bytes`` each. ``out`` is a local folder or an ``s3://``, ``gs://`` or ``r2://`` URL.

``StreamedFeatures(out)`` streams it back (same samples, arrays as tensors); ``ShardsDataModule``
wraps it for Lightning with the library's ``StreamingDataLoader``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import multiprocessing as mp
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from litdata import StreamingDataLoader, StreamingDataset, optimize

from core.atomic import atomic_path, sweep_partials

URL_SCHEMES = ("s3://", "gs://", "r2://")  # the object stores litdata.optimize writes to
ID_KEY = "video_id"


class DiskFullError(OSError):
    """The export ran out of disk space; ``out`` is as it was before."""


# writing ----------------------------------------------------------------------------------------------

def _entries(cache_root: Path) -> list[tuple[str, str]]:
    """``[(video_id, shard npz)]`` of the complete shards, in shard order."""
    from datamodules.feature_cache import FeatureCache

    if not cache_root.is_dir():
        raise FileNotFoundError(f"feature cache {cache_root}: no such folder (build one with "
                                f"python -m datamodules.preprocess data=<name> features=[...])")
    entries = [(vid, str(npz)) for vid, npz in FeatureCache(cache_root).index().items()]  # shard order
    if not entries:
        raise FileNotFoundError(f"feature cache {cache_root}: no complete shards (shard_*.npz + shard_*.json); "
                                f"build it with python -m datamodules.preprocess data=<name> features=[...]")
    return entries


def _load(vid: str, shard: str) -> dict[str, np.ndarray]:
    # FeatureCache.load(vid) re-reads every shard's json to find the shard (O(videos) per call); the
    # shard is already known here, and the array names are FeatureCache's ``<video_id>/<feature>``
    with np.load(shard) as z:
        return {k[len(vid) + 1:]: z[k] for k in z.files if k.startswith(vid + "/")}


def _layout(arrays: dict[str, np.ndarray]) -> dict[str, tuple[str, int]]:
    return {k: (v.dtype.str, v.ndim) for k, v in sorted(arrays.items())}


def _sample(entries: list[tuple[str, str]], layout: dict, i: int) -> dict:
    """``litdata.optimize``'s ``fn``: input ``i`` -> the sample of video ``entries[i]``."""
    vid, shard = entries[i]
    arrays = _load(vid, shard)
    # litdata fixes the sample layout (keys, 1-D dtypes) from the first sample and does not check later
    # ones: a differing sample would be truncated or misread silently, so refuse it here
    if _layout(arrays) != layout:
        raise ValueError(f"video {vid}: features {_layout(arrays)} differ from the first video's {layout}; "
                         f"every video needs the same feature names, dtypes and ranks")
    return {ID_KEY: vid, **arrays}


def _disk_full(err: BaseException | None) -> bool:
    # optimize runs the writers in worker processes and re-raises their failure as a RuntimeError
    # carrying the worker's traceback text, so the errno is only visible in that text
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            return True
        if f"[Errno {errno.ENOSPC}]" in str(err) or os.strerror(errno.ENOSPC) in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


def _optimize_in(conn, stage: str, kw: dict) -> None:
    """Body of the export's supervisor process: run ``optimize(**kw)``, send back None or the error."""
    os.setpgid(0, 0)  # its own process group, so that everything optimize starts can be ended at once
    # optimize wipes its staging folders ($TMPDIR/chunks and $TMPDIR/data, shared by all exports): private ones
    os.environ["DATA_OPTIMIZER_CACHE_FOLDER"] = os.path.join(stage, "chunks")
    os.environ["DATA_OPTIMIZER_DATA_CACHE_FOLDER"] = os.path.join(stage, "data")
    try:
        optimize(**kw)
        conn.send(None)
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(OSError(errno.ENOSPC, str(e)) if _disk_full(e) else RuntimeError(f"{type(e).__name__}: {e}"))


def _optimize(stage: str, **kw) -> None:
    """``litdata.optimize(**kw)`` in a supervisor process. optimize changes process-wide state (start method,
    SIGINT handler that exits 0, environment) and, when a worker fails, leaves the worker's helper
    processes running, holding this process's stdout; here they are all ended with the supervisor's group."""
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_optimize_in, args=(send, stage, kw), daemon=False)
    proc.start()
    send.close()
    try:
        try:
            err = recv.recv()
        except EOFError:  # it died without a word (killed)
            proc.join()
            err = RuntimeError(f"the export process died (exit code {proc.exitcode})")
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.join()
    if err is not None:
        raise err


def export(cache_root: str | Path, out: str, chunk_bytes: int | str = "64MB", chunk_size: int | None = None,
           num_workers: int = 1, progress: bool = True, storage_options: dict | None = None) -> str:
    """Write the feature cache at ``cache_root`` as a streamed data set at ``out``; returns ``out``.

    Args:
        cache_root: a ``FeatureCache`` folder (``shard_XXXXXX.npz`` + ``.json``); only complete shards are read.
        out: a local folder, or an ``s3://`` / ``gs://`` / ``r2://`` URL (credentials as for the library:
            environment or ``storage_options``).
        chunk_bytes / chunk_size: chunk size in bytes (``"64MB"``) or in videos (``chunk_size`` wins if set).
            Chunks are the unit that ranks and loader workers split between them, so keep at least
            ``world size x loader workers`` chunks.
        num_workers: writer processes (each loads whole videos, so memory is ``num_workers`` x the largest).
        progress: the library's progress bar and log lines.

    A local ``out`` is replaced atomically: the export is written to a hidden sibling
    ``.<name>.partial-<pid>`` and renamed to ``out`` once complete, so a failed or killed export leaves
    any earlier one at ``out`` as it was (a killed one's partial folder is removed by the next export).
    ``out`` must be absent, empty, or an earlier export. An object-store ``out`` cannot be renamed: it
    must be a new (empty) prefix; the library uploads ``index.json`` last, so readers never accept a
    partial upload (delete a failed upload's prefix before retrying: the library refuses a non-empty
    one). Every video must have the same feature names, dtypes and ranks (shapes may differ).
    Running out of disk raises ``DiskFullError`` naming ``out``.
    """
    entries = _entries(Path(cache_root))
    first = _load(*entries[0])
    if ID_KEY in first:
        raise ValueError(f"feature cache {cache_root}: a feature named {ID_KEY!r} clashes with the id key")
    remote = str(out).startswith(URL_SCHEMES)
    target = None if remote else Path(out).absolute()
    if target is not None:
        earlier = target.is_dir() and (not any(target.iterdir()) or (target / "index.json").exists())
        if target.exists() and not earlier:
            raise FileExistsError(f"--out {target} exists and is not an earlier export (no index.json); "
                                  f"choose another --out")
        target.parent.mkdir(parents=True, exist_ok=True)
        sweep_partials(target)  # a killed export's partial folder (its process is gone)
    stage = tempfile.mkdtemp(prefix="shards-export-")
    fn = functools.partial(_sample, entries, _layout(first))
    try:
        with contextlib.ExitStack() as stack:
            write_to = str(out)
            if target is not None:  # a hidden partial folder, renamed onto out when complete
                write_to = str(stack.enter_context(atomic_path(target, folder=True)))
            _optimize(stage, fn=fn, inputs=list(range(len(entries))), output_dir=write_to,
                      chunk_size=chunk_size, chunk_bytes=None if chunk_size else chunk_bytes,
                      num_workers=num_workers, verbose=progress, reorder_files=False, keep_data_ordered=True,
                      storage_options=dict(storage_options or {}),
                      # fork: workers start in ms instead of re-importing torch (the library's default, spawn)
                      start_method="fork" if "fork" in mp.get_all_start_methods() else None)
    except BaseException as e:  # Ctrl-C included: atomic_path removed the partial folder
        if isinstance(e, Exception) and _disk_full(e):
            where = (f"the local staging folder under {tempfile.gettempdir()} (set TMPDIR to a larger disk)"
                     if remote else f"{target.parent}")
            raise DiskFullError(errno.ENOSPC, f"export to {out} failed: no space left on device in {where}. "
                                f"Nothing at {out} was changed; free some space there or choose another --out "
                                f"(each export needs room for a full copy beside the old one).") from None
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return str(out)


# reading ----------------------------------------------------------------------------------------------

def to_tensors(sample: dict) -> dict:
    """``{"video_id": str, <feature>: np.ndarray}`` -> the same with ``torch.Tensor`` features (no copy)."""
    return {k: torch.from_numpy(np.asarray(v)) if k != ID_KEY else v for k, v in sample.items()}


def collate_videos(items: list[dict]) -> dict:
    """Batch of videos: ``video_id`` a list; a feature stacked to ``[B, ...]`` when every video has the
    same shape, else a list of ``B`` tensors (videos differ in length T)."""
    out: dict = {ID_KEY: [it[ID_KEY] for it in items]}
    for k in items[0]:
        if k != ID_KEY:
            vals = [it[k] for it in items]
            out[k] = torch.stack(vals) if all(v.shape == vals[0].shape for v in vals) else vals
    return out


class StreamedFeatures(StreamingDataset):
    """An export streamed from a folder or object-store URL; item ``{"video_id": str, <feature>: Tensor}``.

    Args:
        root: ``out`` of ``export`` (path or ``s3://`` / ``gs://`` / ``r2://`` URL).
        shuffle, seed: the library's shuffle of chunks, then of items within them.
        cache_dir: where chunks of a URL are downloaded (default: the library's ``~/.lightning/chunks``);
            a local folder is memory-mapped in place.
        max_cache_size: bound on that download cache (e.g. ``"50GB"``).
        **kw: further ``litdata.StreamingDataset`` arguments (``storage_options``, ``drop_last``, ...).

    Distributed: the world size and rank come from ``torch.distributed`` when it is initialised (as in
    Lightning's DDP, so build this in ``setup``), else from ``WORLD_SIZE`` / ``GLOBAL_RANK`` / ``NNODES``.
    The library then gives every rank, and every loader worker within it, its own run of chunks (the
    same seed gives every rank the same plan), so N nodes read disjoint shards and disjoint videos; a
    chunk at a boundary between two ranks is fetched by both, each reading only its own item range.
    Under more than one rank ``drop_last`` defaults to True: every rank yields the same number of
    videos, and a few (fewer than ``world size x batch size``) may be skipped that epoch.
    """

    def __init__(self, root: str, shuffle: bool = False, seed: int = 0, cache_dir: str | None = None,
                 max_cache_size: int | str | None = None, **kw):
        if not str(root).startswith(URL_SCHEMES) and not (Path(root) / "index.json").is_file():
            raise FileNotFoundError(f"{root}: not a streamed export (no index.json); write one with "
                                    f"python -m datamodules.shards export --cache <feature cache> --out {root}")
        super().__init__(str(root), cache_dir=cache_dir, shuffle=shuffle, seed=seed,
                         max_cache_size=max_cache_size, transform=to_tensors, **kw)


class ShardsDataModule(pl.LightningDataModule):
    """Streams an ``export`` for training: the train loader is litdata's ``StreamingDataLoader``.

    Config keys (``experiments/configs/data/shards.yaml``): ``root`` (path or URL), ``batch_size``,
    ``num_workers``, ``shuffle``, ``seed``, ``cache_dir``, ``max_cache_size``, ``storage_options``.
    Batches come from ``collate_videos``. Under DDP each rank streams a disjoint part of the chunks (see
    ``StreamedFeatures``); the loader's ``state_dict`` lets Lightning resume mid-epoch from a checkpoint.
    """

    name = "shards"

    def __init__(self, root: str, batch_size: int = 1, num_workers: int = 0, shuffle: bool = True, seed: int = 0,
                 cache_dir: str | None = None, max_cache_size: int | str | None = None,
                 storage_options: dict | None = None, name: str | None = None):
        super().__init__()
        self.root, self.batch_size, self.num_workers = str(root), int(batch_size), int(num_workers)
        self.shuffle, self.seed = bool(shuffle), int(seed)
        self.cache_dir, self.max_cache_size, self.storage_options = cache_dir, max_cache_size, storage_options
        if name:
            self.name = name
        self.train_set: StreamedFeatures | None = None

    def setup(self, stage: str | None = None) -> None:
        # built here, not in __init__: under DDP the process group exists by now, which is how the library
        # learns this process's rank and the world size
        if self.train_set is None:
            self.train_set = StreamedFeatures(self.root, shuffle=self.shuffle, seed=self.seed,
                                              cache_dir=self.cache_dir, max_cache_size=self.max_cache_size,
                                              storage_options=self.storage_options)

    def train_dataloader(self) -> StreamingDataLoader:
        self.setup("fit")
        return StreamingDataLoader(self.train_set, batch_size=self.batch_size, num_workers=self.num_workers,
                                   collate_fn=collate_videos, persistent_workers=self.num_workers > 0)


# command line -----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m datamodules.shards", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="write a feature cache as a streamed, sharded data set")
    e.add_argument("--cache", required=True, help="feature cache folder (shard_XXXXXX.npz + .json)")
    e.add_argument("--out", required=True, help="output folder, or s3:// gs:// r2:// URL")
    e.add_argument("--chunk-bytes", default="64MB", help="target chunk size (default 64MB)")
    e.add_argument("--chunk-size", type=int, default=None, help="videos per chunk (instead of --chunk-bytes)")
    e.add_argument("--workers", type=int, default=1, help="writer processes (default 1)")
    e.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    try:
        export(a.cache, a.out, chunk_bytes=a.chunk_bytes, chunk_size=a.chunk_size, num_workers=a.workers,
               progress=not a.no_progress)
    except FileNotFoundError as err:
        e.error(str(err))  # exits 2 with the usage line
    except (DiskFullError, FileExistsError, ValueError) as err:  # the user's to fix: one line, status 2
        print(f"error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # a writer process failed
        print(f"error: export to {a.out} failed: {err}", file=sys.stderr)
        return 1
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    from core.cli import run_cli

    sys.exit(run_cli(main, "datamodules.shards"))
