"""``ClipDataModule``: the loaders every data set shares; a subclass only lists its videos."""

from __future__ import annotations

import hashlib
from pathlib import Path

import lightning.pytorch as pl
from torch.utils.data import DataLoader, Subset

from datamodules.clips import (
    ClipDataset,
    ClipSpec,
    FrameStore,
    TestItemDataset,
    VideoRecord,
    collate_clips,
    collate_test_items,
)


class ClipDataModule(pl.LightningDataModule):
    """Train clips, a small validation subset, and whole test videos for sampling.

    Subclasses implement ``records(split) -> list[VideoRecord]`` for ``train`` and ``test``
    (and may override ``prepare_data`` to build splits or generate data).

    Args:
        clip: ``ClipSpec`` fields (``num_frames``, ``num_motion_frames``, ``audio_context_frames``).
        audio_context_frames: shortcut for ``clip.audio_context_frames``.
        image_size: square frame side after cropping.
        batch_size, num_workers: training loader settings.
        cache_dir: split files, rendered test ground truth and (with ``cache_frames``) decoded frames.
        cache_frames: keep decoded uint8 frames as .npy under ``cache_dir/frames`` (fine for SynthTalk and
            small sets; at 512 px a real data set needs ~0.8 MB per frame, so use the feature cache instead).
        samples_per_video: training clips per video per epoch.
        val_items: size of the validation subset.
        max_test_items: cap the number of test videos.
        test_seconds: length of each test item: a test video is cut to its first ``test_seconds``
            (null: whole videos). SynthTalk generates its test clips this long instead.
        test_batch_size: test items generated side by side (padded to the longest; each is written at its
            own length). More than 1 makes CPU sampling several times faster per item.
    """

    name = "clips"

    def __init__(self, clip: dict | None = None, image_size: int = 64, batch_size: int = 4, num_workers: int = 0,
                 cache_dir: str | None = None, samples_per_video: int | None = None, val_items: int = 4,
                 max_test_items: int | None = None, test_seconds: float | None = None,
                 name: str | None = None, audio_context_frames: int | None = None, cache_frames: bool = True,
                 test_batch_size: int = 1):
        super().__init__()
        if int(test_batch_size) < 1:
            raise ValueError(f"data.test_batch_size must be >= 1, got {test_batch_size}")
        self.test_batch_size = int(test_batch_size)
        self.cache_frames = bool(cache_frames)
        clip = dict(clip or {})
        if audio_context_frames is not None:
            clip["audio_context_frames"] = int(audio_context_frames)
        unknown = set(clip) - {"num_frames", "num_motion_frames", "audio_context_frames"}
        if unknown:
            raise ValueError(f"data.clip: unknown keys {sorted(unknown)}; use num_frames, num_motion_frames, "
                             f"audio_context_frames")
        self.spec = ClipSpec(**clip)
        self.image_size, self.batch_size, self.num_workers = int(image_size), int(batch_size), int(num_workers)
        self.cache_dir = cache_dir
        self.samples_per_video, self.val_items = samples_per_video, int(val_items)
        self.max_test_items = max_test_items
        self.test_seconds = float(test_seconds) if test_seconds is not None else None
        if name:
            self.name = name
        self._store: FrameStore | None = None

    # subclasses -------------------------------------------------------------------
    def records(self, split: str) -> list[VideoRecord]:
        raise TypeError(f"{type(self).__name__} must define records(split)")

    # shared -----------------------------------------------------------------------
    @property
    def store(self) -> FrameStore:
        if self._store is None:
            disk = Path(self.cache_dir) / "frames" if self.cache_dir and self.cache_frames else None
            self._store = FrameStore(self.image_size, disk)
        return self._store

    def _loader(self, ds, shuffle: bool, batch_size: int) -> DataLoader:
        # the training loader keeps its place in the epoch (state_dict/load_state_dict), which Lightning
        # stores in checkpoints so a killed run resumes mid-epoch on the same batches (experiments/resume.py)
        from torchdata.stateful_dataloader import StatefulDataLoader

        cls = StatefulDataLoader if shuffle else DataLoader
        return cls(ds, batch_size=batch_size, shuffle=shuffle, num_workers=self.num_workers,
                   collate_fn=collate_clips, persistent_workers=self.num_workers > 0,
                   drop_last=shuffle and len(ds) >= batch_size)

    def train_dataset(self) -> ClipDataset:
        return ClipDataset(self.records("train"), self.spec, self.store, self.samples_per_video)

    def train_dataloader(self) -> DataLoader:
        self.prepare_data()
        return self._loader(self.train_dataset(), True, self.batch_size)

    def val_dataloader(self) -> DataLoader:
        self.prepare_data()
        ds = self.train_dataset()
        return self._loader(Subset(ds, list(range(min(self.val_items, len(ds))))), False, self.batch_size)

    def test_items(self) -> TestItemDataset:
        gt_dir = Path(self.cache_dir) / "gt" if self.cache_dir else None
        return TestItemDataset(self.records("test"), self.store, self.max_test_items, self.test_seconds,
                               gt_dir)

    def predict_dataloader(self) -> DataLoader:
        self.prepare_data()
        return DataLoader(self.test_items(), batch_size=self.test_batch_size, shuffle=False, num_workers=0,
                          collate_fn=collate_test_items)

    def test_dataloader(self) -> DataLoader:
        return self.predict_dataloader()


class IndexedDataModule(ClipDataModule):
    """A real data set on disk: scan its layout, drop unusable files with reasons, split by seed.

    Subclasses set ``LAYOUT`` (the expected on-disk layout, quoted when the root is wrong)
    and implement ``scan(report) -> list[VideoRecord]``; one whose data set ships its own split
    returns it from ``given_split()``.

    Everything cached is keyed by what it depends on, so that two data roots (or one root whose
    videos changed) never share a stale file: ``cache_dir`` is the parent of one folder per root,
    ``<cache_dir>/<root name>-<digest of its absolute path>/`` (decoded frames, rendered test ground
    truth, ``splits/``); a seeded split is written as ``<split_name>-<digest>_{train,test}.txt``, the
    digest covering the root, the usable videos and the split parameters (``datamodules/splits.py``).
    The index report (what was found, dropped or left out, and why) is ``report_path``.

    Args:
        root: the data set as the user has it.
        split_dir: where split files and the index report go (default ``<cache folder of the root>/splits``).
        seed, test_fraction, test_count, split_by_identity: how the split is drawn (``splits``).
        need_audio: drop files without an audio stream.
        feature_cache: a ``FeatureCache`` folder whose ``landmarks`` become the clips' keypoints.
    """

    LAYOUT = ""

    def __init__(self, root: str, split_dir: str | None = None, seed: int = 0, test_fraction: float | None = 0.1,
                 test_count: int | None = None, split_by_identity: bool = False, need_audio: bool = True,
                 split_name: str | None = None, feature_cache: str | None = None, **kw):
        super().__init__(**kw)
        self.root = Path(root)
        if self.cache_dir:
            self.cache_dir = str(Path(self.cache_dir) / root_key(self.root))
        self.feature_cache = feature_cache
        self.split_dir = Path(split_dir) if split_dir else Path(self.cache_dir or self.root) / "splits"
        self.seed, self.test_fraction, self.test_count = int(seed), test_fraction, test_count
        self.split_by_identity, self.need_audio = bool(split_by_identity), bool(need_audio)
        self.split_name = split_name or self.name
        self._index: dict[str, list[VideoRecord]] | None = None
        self.report = None
        self.split_paths: dict[str, Path] = {}  # the train/test files the split was read from or written to

    @property
    def report_path(self) -> Path:
        return self.split_dir / f"{self.split_name}_index_report.json"

    def check_root(self) -> None:
        if not self.root.is_dir():
            raise FileNotFoundError(f"data.root={self.root} is not a folder. Expected layout:\n{self.LAYOUT}")

    def scan(self, report) -> list[VideoRecord]:
        raise TypeError(f"{type(self).__name__} must define scan(report)")

    def given_split(self) -> tuple[dict[str, list[str]], dict[str, Path]] | None:
        """The split the data set ships (``{"train": ids, "test": ids}``, the two files), or None."""
        return None

    def prepare_data(self) -> None:
        if self._index is not None:
            return
        from datamodules.report import DataReport, check_media
        from datamodules.splits import load_or_write_split

        self.check_root()
        report = DataReport(self.split_name)
        found = self.scan(report)
        if not found and not report.dropped:
            raise FileNotFoundError(f"data.root={self.root}: no videos found. Expected layout:\n{self.LAYOUT}")
        checked: dict[str, VideoRecord] = {}
        media_ok: dict[str, str | None] = {}
        for rec in found:
            report.num_in += 1
            if rec.path not in media_ok:
                media_ok[rec.path] = check_media(rec.path, self.need_audio and not rec.audio_path)
            if media_ok[rec.path]:
                report.drop(rec.video_id, f"{rec.path}: {media_ok[rec.path]}", "media")
            elif rec.video_id in checked:
                report.drop(rec.video_id, "duplicate id", "index")
            else:
                checked[rec.video_id] = rec
                report.keep(rec.video_id)
        report.write(self.report_path)
        self.report = report
        if self.feature_cache:  # landmarks from ``datamodules.preprocess`` (features=[landmarks])
            from datamodules.feature_cache import FeatureCache

            cache = FeatureCache(self.feature_cache)
            for rec in checked.values():
                rec.keypoints = rec.keypoints or cache.key(rec.video_id, "landmarks")
        ids = list(checked)
        given = self.given_split()
        if given is not None:
            split = {s: [i for i in given[0][s] if i in checked] for s in ("train", "test")}
            self.split_paths = given[1]
        else:
            groups = [checked[i].identity for i in ids] if self.split_by_identity else None
            split, self.split_paths = load_or_write_split(
                self.split_dir, self.split_name, ids, self.seed, test_fraction=self.test_fraction,
                test_count=self.test_count, groups=groups, root=self.root)
        self._index = {}
        for s, lst in split.items():
            self._index[s] = [checked[i] for i in lst]
            for i in lst:
                checked[i].split = s

    def records(self, split: str) -> list[VideoRecord]:
        self.prepare_data()
        if not any(self._index.values()):
            reasons = sorted({d["reason"].split(": ", 1)[-1] for d in self.report.dropped})
            raise ValueError(f"data.root={self.root}: none of the {self.report.num_in} videos found is "
                             f"usable ({'; '.join(reasons[:3])}); every file and its reason is in "
                             f"{self.report_path}")
        return self._index[split]

    def check_split(self, split: str) -> None:
        """Raise, saying what to set, when ``split`` (``train`` or ``test``) holds no video."""
        if self.records(split):
            return
        n = sum(len(v) for v in self._index.values())
        head = (f"data.root={self.root}: the {'training' if split == 'train' else 'test'} split is empty ({n} "
                f"usable video{'s' * (n != 1)}, none in {self.split_paths[split]})")
        if self.given_split() is not None:
            raise ValueError(f"{head}; the data set's own split files are used as is: add video ids to that "
                             f"file (one a line), or move them away to draw a split by data.test_count / "
                             f"data.test_fraction")
        if split == "train":
            raise ValueError(f"{head}; lower data.test_count / data.test_fraction, or add videos: every usable "
                             f"video went to the test split")
        raise ValueError(f"{head}; set data.test_count=1 (or a data.test_fraction large enough for {n} "
                         f"video{'s' * (n != 1)}) so that some videos go to the test split")

    def test_items(self):
        self.check_split("test")
        return super().test_items()

    def train_dataset(self):
        self.check_split("train")
        return super().train_dataset()


def root_key(root: Path) -> str:
    """``<root folder name>-<8 hex digits of its absolute path>``: the cache folder of one data root."""
    absolute = str(Path(root).expanduser().resolve())
    return f"{Path(absolute).name or 'root'}-{hashlib.sha1(absolute.encode()).hexdigest()[:8]}"
