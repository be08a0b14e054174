"""The feature cache as a streamed, sharded data set (datamodules/shards.py, litdata)."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from datamodules import shards
from datamodules.feature_cache import FeatureCache

REPO = Path(__file__).resolve().parents[1]
N = 8  # videos; chunk_size=2 gives 4 chunks, 2 per rank at world size 2


def _features(i: int, offset: float = 0.0) -> dict:
    """Tiny stand-ins for the cache's features; T varies per video, one 1-D feature, an integer one."""
    rng = np.random.default_rng(i)
    t = 2 + i % 3
    return {"latents": (rng.standard_normal((t, 4, 2, 2)) + offset).astype(np.float16),
            "landmarks": rng.random((t, 68, 2), dtype=np.float32) + offset,
            "audio": rng.standard_normal(16 * t).astype(np.float32),
            "frame_ids": np.arange(t, dtype=np.int64) + int(offset)}


def _cache(root, n=N, offset=0.0, prefix="vid"):
    FeatureCache(root, shard_size=3).build([(f"{prefix}{i:02d}", i) for i in range(n)],
                                           lambda i: _features(i, offset), progress=False)
    return root


def _read(root, **kw) -> dict[str, dict]:
    return {it["video_id"]: it for it in shards.StreamedFeatures(str(root), **kw)}


def _assert_same(cache_root, got: dict[str, dict]):
    cache = FeatureCache(cache_root)
    assert sorted(got) == sorted(cache.index())
    for vid, item in got.items():
        want = cache.load(vid)
        assert sorted(k for k in item if k != "video_id") == sorted(want)
        for k, arr in want.items():
            assert isinstance(item[k], torch.Tensor)
            assert item[k].numpy().dtype == arr.dtype and np.array_equal(item[k].numpy(), arr), (vid, k)


def _siblings(out):
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def test_round_trip_every_array_equal(tmp_path):
    cache = _cache(tmp_path / "cache")
    out = tmp_path / "streamed"
    assert shards.export(cache, str(out), chunk_size=2, progress=False) == str(out)
    index = json.loads((out / "index.json").read_text())
    assert len(index["chunks"]) == N // 2 and sum(c["chunk_size"] for c in index["chunks"]) == N
    _assert_same(cache, _read(out))
    # through the data module's streaming loader: every video once, equal-shape features stacked
    dm = shards.ShardsDataModule(str(out), batch_size=3, shuffle=True)
    loader = dm.train_dataloader()
    assert type(loader).__name__ == "StreamingDataLoader"
    seen = []
    for batch in loader:
        seen += batch["video_id"]
        for k in ("latents", "landmarks", "audio"):  # T differs between videos: stacked or a list of B
            assert len(batch[k]) == len(batch["video_id"])
    assert sorted(seen) == sorted(FeatureCache(cache).index())
    # the Hydra data config, with its 2 loader workers (each streams its own chunks)
    cfg = OmegaConf.load(REPO / "experiments" / "configs" / "data" / "shards.yaml")
    cfg.root = str(out)
    dm = hydra.utils.instantiate(cfg, _convert_="all")
    assert isinstance(dm, shards.ShardsDataModule) and dm.num_workers == 2
    assert sorted(v for b in dm.train_dataloader() for v in b["video_id"]) == sorted(seen)


def test_two_ranks_read_disjoint_videos_covering_all(tmp_path, monkeypatch):
    cache = _cache(tmp_path / "cache")
    out = tmp_path / "streamed"
    shards.export(cache, str(out), chunk_size=2, progress=False)
    per_rank = []
    for rank in range(2):
        # litdata's _DistributedEnv.detect reads these when torch.distributed is not initialised
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("GLOBAL_RANK", str(rank))
        monkeypatch.setenv("NNODES", "1")
        dm = shards.ShardsDataModule(str(out), batch_size=2, shuffle=True, seed=3)
        dm.setup("fit")
        assert dm.train_set.distributed_env.world_size == 2 and dm.train_set.distributed_env.global_rank == rank
        per_rank.append([v for b in dm.train_dataloader() for v in b["video_id"]])
    a, b = per_rank
    assert len(a) == len(b) == N // 2
    assert not set(a) & set(b)
    assert sorted(a + b) == sorted(FeatureCache(cache).index())


def test_second_export_replaces_the_first_atomically(tmp_path):
    out = tmp_path / "streamed"
    first = _cache(tmp_path / "c1")
    shards.export(first, str(out), chunk_size=2, progress=False)
    second = _cache(tmp_path / "c2", n=5, offset=10.0, prefix="new")
    shards.export(second, str(out), chunk_size=2, progress=False)
    _assert_same(second, _read(out))
    assert _siblings(out) == []  # no partial or old folder left behind

    # a failing export (a damaged shard, read mid-way) leaves the last complete one as it was
    broken = _cache(tmp_path / "c3", offset=20.0, prefix="bad")
    (broken / "shard_000001.npz").write_bytes(b"not a zip")
    with pytest.raises(RuntimeError):
        shards.export(broken, str(out), chunk_size=2, progress=False)
    _assert_same(second, _read(out))
    assert _siblings(out) == []

    # a killed export's partial folder (its pid is gone) is swept by the next export
    stale = out.with_name(f".{out.name}.partial-999999999")
    stale.mkdir()
    shards.export(first, str(out), chunk_size=2, progress=False)
    _assert_same(first, _read(out))
    assert _siblings(out) == []


def test_disk_full_keeps_the_earlier_export_and_says_what_to_do(tmp_path, monkeypatch):
    out = tmp_path / "streamed"
    first = _cache(tmp_path / "c1")
    shards.export(first, str(out), chunk_size=2, progress=False)

    from litdata.streaming.writer import BinaryWriter

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    # the writer runs in a forked worker process, which inherits this patch
    monkeypatch.setattr(BinaryWriter, "write_chunk_to_file", full)
    with pytest.raises(shards.DiskFullError) as info:
        shards.export(_cache(tmp_path / "c2", offset=5.0, prefix="new"), str(out), chunk_size=2, progress=False)
    msg = str(info.value)
    assert info.value.errno == errno.ENOSPC and info.value.__cause__ is None
    assert str(out) in msg and "no space left" in msg and "free some space" in msg and "another --out" in msg
    _assert_same(first, _read(out))
    assert _siblings(out) == []


def test_missing_or_empty_cache_and_foreign_out_are_clear_errors(tmp_path, capsys):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=f"{missing}: no such folder"):
        shards.export(missing, str(tmp_path / "out"))
    with pytest.raises(SystemExit) as ex:
        shards.main(["export", "--cache", str(missing), "--out", str(tmp_path / "out")])
    assert ex.value.code == 2 and "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        shards.main(["export", "--cache", str(tmp_path / "empty"), "--out", str(tmp_path / "out")])
    assert "no complete shards" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    # a folder that is not an earlier export is never replaced
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    cache = str(_cache(tmp_path / "c"))
    # a user error: exit status 2
    assert shards.main(["export", "--cache", cache, "--out", str(foreign), "--no-progress"]) == 2
    assert "not an earlier export" in capsys.readouterr().err and (foreign / "notes.txt").exists()
    with pytest.raises(FileNotFoundError, match="not a streamed export"):
        shards.StreamedFeatures(str(foreign))
    # the command line's happy path
    assert shards.main(["export", "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "ok"), "--chunk-size", "4",
                        "--no-progress"]) == 0
    _assert_same(tmp_path / "c", _read(tmp_path / "ok"))
