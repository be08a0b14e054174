"""Split files and decoded copies are keyed by what they depend on, never by the data set's name alone
(issue 19, item 2: after one folder gave an empty test split, another folder with good videos failed too,
and the error's advice, ``data.test_count=1``, did not help)."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from core.video_io import read_video, write_video
from datamodules.folder import FolderDataModule

LOADER = dict(image_size=32, clip=dict(num_frames=4, num_motion_frames=2), batch_size=1, samples_per_video=1)


def _videos(root, n, seed=0):
    """``n`` one-identity-each 0.4 s clips (32 px, a tone muxed in) under ``root``, all copies of one file."""
    rng = np.random.default_rng(seed)
    first = root / "spk00" / "clip.mp4"
    tone = (0.3 * np.sin(np.arange(6400) / 7)).astype(np.float32)
    write_video(first, rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8), 25.0, tone)
    for i in range(1, n):
        (root / f"spk{i:02d}").mkdir(parents=True)
        shutil.copy(first, root / f"spk{i:02d}" / "clip.mp4")
    return root


def test_another_folder_gets_its_own_split(tmp_path):
    cache = str(tmp_path / "cache")
    few = FolderDataModule(str(_videos(tmp_path / "few", 1)), cache_dir=cache, test_fraction=0.1, **LOADER)
    with pytest.raises(ValueError, match="test split is empty"):
        few.predict_dataloader()
    good = FolderDataModule(str(_videos(tmp_path / "good", 10)), cache_dir=cache, test_fraction=0.1, **LOADER)
    assert len(good.predict_dataloader().dataset) == 1 and len(good.records("train")) == 9
    assert good.split_paths["test"] != few.split_paths["test"]


def test_following_the_empty_split_advice_works(tmp_path):
    root, cache = str(_videos(tmp_path / "data", 3)), str(tmp_path / "cache")
    with pytest.raises(ValueError, match="test split is empty") as info:
        FolderDataModule(root, cache_dir=cache, test_fraction=0.1, **LOADER).predict_dataloader()
    key, value = re.search(r"set data\.(\w+)=(\d+)", str(info.value)).groups()  # do what the message says
    dm = FolderDataModule(root, cache_dir=cache, **{"test_fraction": 0.1, key: int(value)}, **LOADER)
    assert len(dm.predict_dataloader().dataset) == 1 and len(dm.records("train")) == 2


def test_same_inputs_read_back_the_same_split(tmp_path):
    root, cache = str(_videos(tmp_path / "data", 6)), str(tmp_path / "cache")
    first = FolderDataModule(root, cache_dir=cache, test_count=2, seed=3, **LOADER)
    assert len(first.records("test")) == 2
    # the written split is what later runs read (a published split is read back, not redrawn)
    first.split_paths["train"].write_text("".join(f"spk{i:02d}__clip\n" for i in range(4)))
    first.split_paths["test"].write_text("spk05__clip\nspk04__clip\n")
    again = FolderDataModule(root, cache_dir=cache, test_count=2, seed=3, **LOADER)
    assert [r.video_id for r in again.records("test")] == ["spk05__clip", "spk04__clip"]
    other_seed = FolderDataModule(root, cache_dir=cache, test_count=2, seed=4, **LOADER)
    other_seed.records("test")
    assert other_seed.split_paths["test"] != first.split_paths["test"]


def test_shipped_split_files_are_read_from_their_own_root(tmp_path):
    cache = str(tmp_path / "cache")
    for name, test_id in (("a", "spk00"), ("b", "spk01/clip")):  # both id spellings name the same video
        root = _videos(tmp_path / name, 2)
        (root / "splits").mkdir()
        (root / "splits" / "test.txt").write_text(f"{test_id}{'__clip' if '/' not in test_id else ''}\n")
        (root / "splits" / "train.txt").write_text("spk01__clip\n" if name == "a" else "spk00__clip\n")
    a = FolderDataModule(str(tmp_path / "a"), cache_dir=cache, **LOADER)
    b = FolderDataModule(str(tmp_path / "b"), cache_dir=cache, **LOADER)
    assert [r.video_id for r in a.records("test")] == ["spk00__clip"]
    assert [r.video_id for r in b.records("test")] == ["spk01__clip"]


def test_cut_ground_truth_is_not_shared_between_roots_with_the_same_video_ids(tmp_path):
    cache = str(tmp_path / "cache")
    gts = []
    for seed in (1, 2):
        root = _videos(tmp_path / f"root{seed}", 1, seed=seed)
        dm = FolderDataModule(str(root), cache_dir=cache, test_count=1, test_seconds=0.2, **LOADER)
        item = next(iter(dm.predict_dataloader()))
        gts.append(item["meta"][0]["gt_path"])
        assert int(item["num_frames"][0]) == 5  # 0.2 s of the 0.4 s clip
    assert gts[0] != gts[1]
    first, second = (read_video(p).frames.astype(int) for p in gts)
    assert np.abs(first - second).mean() > 20  # each is its own root's video, not a stale copy of the other
