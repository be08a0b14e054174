"""The batch contract and the one clip sampler every DataModule shares.

Training batch (``train_dataloader()``), ``B`` clips of ``T`` frames at 25 fps:

=================  ===================  =====================================================
key                shape                meaning
=================  ===================  =====================================================
``frames``         B, T, 3, H, W        target clip, float in [-1, 1]
``reference``      B, 3, H, W           identity frame drawn from the same video
``motion_frames``  B, M, 3, H, W        the M frames before the clip, newest first; zeros
                                        before the video start
``motion_mask``    B, M                 1 where a motion frame is real
``audio``          B, S                 16 kHz mono covering the clip plus
                                        ``audio_context_frames`` on each side (zero-padded),
                                        S = (T + 2 * context) * 640
``landmarks``      B, T, 68, 2          face keypoints in [0, 1] (iBUG-68 layout, see
                                        ``synth_faces``); zeros where ``landmark_mask`` is 0
``landmark_mask``  B                    1 when the video has keypoints (SynthTalk ground truth
                                        or the preprocess cache)
``meta``           list of B dicts      dataset, video_id, identity, start_frame, fps, split,
                                        and what the data set knows (emotion, intensity, ...)
=================  ===================  =====================================================

How the motion frames are strided or merged (Loopy's temporal segment module, MCDM's
archived clip) is the model's business: the data gives the raw preceding M frames.

Test item (``predict_dataloader()``, B = 1): ``reference`` (1, 3, H, W), ``audio`` (1, S)
for the whole clip, ``num_frames`` (1,), ``fps`` float, ``meta`` with ``video_id``,
``gt_path`` (the ground-truth mp4), ``identity``, ``dataset``, ``split``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from core.atomic import atomic_path
from core.video_io import read_audio, read_video

log = logging.getLogger(__name__)

FPS = 25
SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
NUM_KEYPOINTS = 68
TRAIN_KEYS = ("frames", "reference", "motion_frames", "motion_mask", "audio", "landmarks", "landmark_mask", "meta")
TEST_KEYS = ("reference", "audio", "num_frames", "fps", "meta")


@dataclass
class ClipSpec:
    """What a model asks of a clip.

    Paper settings: Loopy 12 target + up to 124 preceding frames (Sec. 4, Implementation
    Details), MCDM 16 target frames plus its archived frames, JoyVASA 100 frames with a
    25-frame window of previous motion (Sec. 4.1).
    """

    num_frames: int = 12
    num_motion_frames: int = 4
    audio_context_frames: int = 2

    def __post_init__(self):
        if self.num_frames < 1 or self.num_motion_frames < 0 or self.audio_context_frames < 0:
            raise ValueError(f"data.clip: num_frames must be >= 1 and num_motion_frames, audio_context_frames >= 0, "
                             f"got {self}")

    @property
    def audio_samples(self) -> int:
        return (self.num_frames + 2 * self.audio_context_frames) * SAMPLES_PER_FRAME


@dataclass
class VideoRecord:
    """One usable video of a data set, as the sampler sees it.

    ``start_s``/``end_s`` cut a segment out of a longer file and ``bbox`` (x0, y0, x1, y1 in
    pixels of the source) crops it, as CelebV-HQ's json asks; ``keypoints`` names an .npz
    (key ``keypoints``, ``[N, 68, 2]``) or .npy with per-frame face keypoints.
    """

    video_id: str
    path: str
    dataset: str
    identity: str
    split: str = "train"
    audio_path: str | None = None
    keypoints: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    bbox: tuple[float, float, float, float] | None = None
    bbox_normalized: bool = False   # bbox in fractions of the frame instead of pixels
    bbox_ref_height: float | None = None  # pixel bbox given for this frame height (HDTF): rescaled to the file's
    meta: dict = field(default_factory=dict)
    gt_ready: bool = False  # the file is already the test clip (25 fps, square, image_size): use it as ground truth


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``[..., H, W, 3]`` -> float ``[..., 3, H, W]`` in [-1, 1]."""
    # transpose the uint8 array first: contiguous float ops are several times faster than strided ones
    chw = np.ascontiguousarray(np.moveaxis(np.asarray(frames), -1, -3), dtype=np.float32)
    return torch.from_numpy(chw).mul_(1.0 / 127.5).sub_(1.0)


def _square(frames: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and resize every frame to ``size``."""
    t, h, w, _ = frames.shape
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    frames = frames[:, y0:y0 + s, x0:x0 + s]
    if s == size:
        return np.ascontiguousarray(frames)
    interp = cv2.INTER_AREA if s > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in frames])


def decode_record(rec: VideoRecord, image_size: int | None, fps: float = FPS) -> tuple[np.ndarray, np.ndarray]:
    """Frames uint8 ``[N, S, S, 3]`` at ``fps`` and mono 16 kHz audio aligned to frame 0.

    Applies the record's time cut and crop, resamples the frame rate by nearest frame and
    makes the picture square at ``image_size`` (``None``: keep the cropped frames as they
    are). Raises ``VideoReadError`` naming the file.
    """
    from core.video_io import VideoReadError, probe_video

    v = read_video(rec.path, SAMPLE_RATE)
    frames, src_fps = v.frames, v.fps or fps
    expected = probe_video(rec.path)["num_frames"]
    if expected and len(frames) < 0.9 * expected - 1:  # decoder stopped early: never hand out a short clip silently
        raise VideoReadError(rec.path, f"truncated: decoded {len(frames)} of {expected} frames",
                             "re-download the file or drop it from the list")
    audio = read_audio(rec.audio_path, SAMPLE_RATE) if rec.audio_path else v.audio
    if audio is None:
        audio = np.zeros(int(len(frames) / src_fps * SAMPLE_RATE), np.float32)
    t0 = rec.start_s or 0.0
    t1 = rec.end_s if rec.end_s is not None else len(frames) / src_fps
    n_out = max(0, int(np.floor((t1 - t0) * fps + 1e-6)))
    idx = np.minimum(np.round((t0 + np.arange(n_out) / fps) * src_fps).astype(int), len(frames) - 1)
    frames = frames[idx] if n_out else frames[:0]
    audio = audio[int(round(t0 * SAMPLE_RATE)):int(round(t1 * SAMPLE_RATE))]
    if rec.bbox is not None and len(frames):
        h, w = frames.shape[1:3]
        if rec.bbox_normalized:
            sx, sy = w, h
        else:
            sx = sy = (h / rec.bbox_ref_height) if rec.bbox_ref_height else 1.0
        x0, x1 = (int(round(c * sx)) for c in (rec.bbox[0], rec.bbox[2]))
        y0, y1 = (int(round(c * sy)) for c in (rec.bbox[1], rec.bbox[3]))
        if x1 - x0 < 2 or y1 - y0 < 2 or x0 >= w or y0 >= h:
            raise VideoReadError(rec.path, f"crop box {rec.bbox} lies outside the {w}x{h} frame",
                                 "check the annotation row of this clip")
        frames = frames[:, max(0, y0):min(h, y1), max(0, x0):min(w, x1)]
    if len(frames) and image_size:
        frames = _square(frames, image_size)
    return frames, audio.astype(np.float32)


def load_keypoints(path: str | None, n: int) -> np.ndarray | None:
    if not path:
        return None
    path, _, key = str(path).partition("::")  # "shard.npz::<video_id>/landmarks" names one array of a shard
    arr = np.load(path)[key or "keypoints"] if path.endswith(".npz") else np.load(path)
    return np.asarray(arr[:n], np.float32)


def source_digest(rec: VideoRecord) -> str:
    """8 hex digits naming everything a decoded copy of ``rec`` depends on: the file (path, size,
    modification time), its separate audio track, the cut and the crop. Caches are named by it, so a
    re-downloaded file, another data root with the same video ids or a changed annotation never reads
    a stale copy."""

    def stamp(path: str | None) -> tuple:
        if not path:
            return ()
        try:
            st = os.stat(path)
        except OSError:
            return (str(path),)
        return str(path), st.st_size, st.st_mtime_ns

    key = (stamp(rec.path), stamp(rec.audio_path), rec.start_s, rec.end_s, rec.bbox, rec.bbox_normalized,
           rec.bbox_ref_height)
    return hashlib.sha1(repr(key).encode()).hexdigest()[:8]


class FrameStore:
    """Decode each video once per process and keep it in memory (LRU by bytes).

    With ``cache_dir`` the decoded uint8 frames and audio are also written there as .npy
    (atomically) and memory-mapped on later runs, so a second epoch or a second run skips
    the decoder entirely.
    """

    def __init__(self, image_size: int, cache_dir: str | os.PathLike | None = None, max_bytes: int = 2 << 30):
        self.image_size, self.max_bytes = image_size, max_bytes
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._mem: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._bytes = 0

    def _files(self, rec: VideoRecord) -> tuple[Path, Path]:
        stem = f"{rec.dataset}_{rec.video_id}_{self.image_size}_{source_digest(rec)}".replace(os.sep, "_")
        return self.cache_dir / f"{stem}.frames.npy", self.cache_dir / f"{stem}.audio.npy"

    def get(self, rec: VideoRecord) -> tuple[np.ndarray, np.ndarray]:
        key = f"{rec.dataset}/{rec.video_id}"
        if key in self._mem:
            self._mem.move_to_end(key)
            return self._mem[key]
        item = None
        if self.cache_dir is not None:
            fpath, apath = self._files(rec)
            if fpath.exists() and apath.exists():
                try:
                    item = (np.load(fpath, mmap_mode="r"), np.load(apath))
                except (ValueError, OSError):  # a damaged cache file: decode again below
                    item = None
        if item is None:
            item = decode_record(rec, self.image_size)
            if self.cache_dir is not None:
                fpath, apath = self._files(rec)
                try:
                    for p, arr in ((fpath, item[0]), (apath, item[1])):
                        with atomic_path(p) as tmp, open(tmp, "wb") as fh:
                            np.save(fh, arr)
                except OSError as e:  # a full disk only costs the speed-up: go on with the decoded frames
                    log.warning("%s: cannot cache decoded frames under %s (%s); going on without the cache: free "
                                "space there or set data.cache_frames=false", rec.path, self.cache_dir, e)
        self._mem[key] = item
        self._bytes += item[0].nbytes + item[1].nbytes
        while self._bytes > self.max_bytes and len(self._mem) > 1:
            _, old = self._mem.popitem(last=False)
            self._bytes -= old[0].nbytes + old[1].nbytes
        return item


def sample_clip(frames: np.ndarray, audio: np.ndarray, start: int, ref_index: int, spec: ClipSpec,
                keypoints: np.ndarray | None = None) -> dict:
    """Cut one training clip at ``start`` out of a decoded video (see the table above)."""
    n = len(frames)
    T, M, C = spec.num_frames, spec.num_motion_frames, spec.audio_context_frames
    if start < 0 or start + T > n:
        raise IndexError(f"clip [{start}, {start + T}) outside a video of {n} frames")
    idx = start - 1 - np.arange(M)  # newest first
    mask = idx >= 0
    motion = np.zeros((M,) + frames.shape[1:], np.uint8)
    if mask.any():
        motion[mask] = frames[idx[mask]]
    a0 = (start - C) * SAMPLES_PER_FRAME
    wav = np.zeros(spec.audio_samples, np.float32)
    lo, hi = max(a0, 0), min(a0 + spec.audio_samples, len(audio))
    if hi > lo:
        wav[lo - a0:hi - a0] = audio[lo:hi]
    if keypoints is not None and len(keypoints) >= start + T and np.isfinite(keypoints[start:start + T]).all():
        lmk, has = torch.from_numpy(np.ascontiguousarray(keypoints[start:start + T], np.float32)), 1.0
    else:
        lmk, has = torch.zeros(T, NUM_KEYPOINTS, 2), 0.0
    mask_t = torch.from_numpy(mask.astype(np.float32))
    # padding is exactly 0 in the [-1, 1] tensor (not black = -1), as the contract says
    motion_t = to_tensor(motion) * mask_t[:, None, None, None]
    return {"frames": to_tensor(frames[start:start + T]), "reference": to_tensor(frames[ref_index]),
            "motion_frames": motion_t, "motion_mask": mask_t,
            "audio": torch.from_numpy(wav), "landmarks": lmk, "landmark_mask": torch.tensor(has)}


def collate_clips(items: list[dict]) -> dict:
    """Stack tensors, keep ``meta`` as a list of dicts."""
    out = default_collate([{k: v for k, v in it.items() if k != "meta"} for it in items])
    if "meta" in items[0]:
        out["meta"] = [it["meta"] for it in items]
    return out


def collate_test_items(items: list[dict]) -> dict:
    """Test items side by side: ``audio`` zero-padded to the longest item (``num_frames`` keeps each
    item's own length, and the prediction writer cuts each video and its audio to it)."""
    longest = max(it["audio"].shape[-1] for it in items)
    items = [{**it, "audio": torch.nn.functional.pad(it["audio"], (0, longest - it["audio"].shape[-1]))}
             for it in items]
    return collate_clips(items)


def _check_finite(item: dict, rec: VideoRecord, start: int) -> None:
    """Refuse a clip with NaN/inf values (a damaged cache or source file) before it reaches the loss."""
    bad = [k for k, v in item.items() if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"{rec.path}: NaN or infinite values in {bad} of the training clip at frame {start} "
                         f"(video {rec.video_id!r}, keypoints {rec.keypoints or 'none'}); delete the frame/feature "
                         f"cache of this video to rebuild it, or check the source file")


class ClipDataset(Dataset):
    """Random training clips: item ``i`` is a clip of video ``i % len(records)``.

    The start frame and reference frame are drawn with torch's RNG, which Lightning seeds
    per worker (``seed_everything(workers=True)``), so runs repeat exactly.
    """

    def __init__(self, records: list[VideoRecord], spec: ClipSpec, store: FrameStore,
                 samples_per_video: int | None = None):
        if not records:
            raise ValueError("ClipDataset: no videos to sample from (check the data root and split files)")
        self.records, self.spec, self.store = records, spec, store
        self.samples_per_video = samples_per_video

    def __len__(self) -> int:
        k = self.samples_per_video or 8
        return len(self.records) * k

    def _load(self, i: int):
        """The decoded video for item ``i``; an unreadable or too short one is skipped (with a warning) for the next."""
        from core.video_io import VideoReadError

        bad = getattr(self, "bad", {})
        self.bad = bad
        for j in range(len(self.records)):
            rec = self.records[(i + j) % len(self.records)]
            if rec.path in bad:
                continue
            try:
                frames, audio = self.store.get(rec)
            except VideoReadError as e:
                bad[rec.path] = str(e)
            else:
                if len(frames) >= self.spec.num_frames:
                    return rec, frames, audio
                bad[rec.path] = f"{len(frames)} frames < data.clip.num_frames={self.spec.num_frames}"
            log.warning("skipping %s: %s", rec.path, bad[rec.path])
        raise ValueError(f"no usable video among {len(self.records)}: " + "; ".join(list(bad.values())[:5]) +
                         " (run datamodules.preprocess, or lower data.clip.num_frames)")

    def __getitem__(self, i: int) -> dict:
        rec, frames, audio = self._load(i)
        n = len(frames)
        start = int(torch.randint(0, n - self.spec.num_frames + 1, ()))
        ref = int(torch.randint(0, n, ()))
        item = sample_clip(frames, audio, start, ref, self.spec, load_keypoints(rec.keypoints, n))
        _check_finite(item, rec, start)
        item["meta"] = {"dataset": rec.dataset, "video_id": rec.video_id, "identity": rec.identity,
                        "start_frame": start, "reference_frame": ref, "fps": FPS, "split": rec.split, **rec.meta}
        return item


class TestItemDataset(Dataset):
    """Whole test videos: first frame as reference, the full audio, the frame count."""

    def __init__(self, records: list[VideoRecord], store: FrameStore, max_items: int | None = None,
                 max_seconds: float | None = None, gt_dir: str | os.PathLike | None = None):
        if not records:
            raise ValueError("TestItemDataset: the test split is empty, nothing to sample or evaluate; check data.root "
                             "and the split files (<split_dir>/<name>_test.txt, or <root>/splits/test.txt), or set "
                             "data.test_fraction / data.test_count so that some videos go to the test split")
        self.records = records[:max_items] if max_items else records
        self.store, self.max_seconds = store, max_seconds
        self.gt_dir = Path(gt_dir) if gt_dir else None

    def _gt_path(self, rec: VideoRecord, frames: np.ndarray, audio: np.ndarray) -> str:
        """The source file when it is already the test clip, else a rendered copy of the clip.

        A cut, a crop or a truncated length makes the source differ from what the model is
        asked to generate, so the ground truth is written once (atomically) under ``gt_dir``.
        """
        if self.gt_dir is None or (rec.gt_ready and len(frames) == len(self.store.get(rec)[0])):
            return str(rec.path)
        from core.video_io import write_video

        name = f"{rec.dataset}_{rec.video_id}_{frames.shape[1]}_{len(frames)}_{source_digest(rec)}.mp4"
        out = self.gt_dir / name.replace(os.sep, "_")
        if not out.exists():
            write_video(out, np.asarray(frames), FPS, audio, SAMPLE_RATE, crf=12)
        return str(out)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        rec = self.records[i]
        frames, audio = self.store.get(rec)
        n = len(frames) if not self.max_seconds else min(len(frames), int(self.max_seconds * FPS))
        wav = np.zeros(n * SAMPLES_PER_FRAME, np.float32)
        a = audio[:len(wav)]
        wav[:len(a)] = a
        return {"reference": to_tensor(frames[0]), "audio": torch.from_numpy(wav),
                "num_frames": torch.tensor(n), "fps": float(FPS),
                "meta": {"video_id": rec.video_id, "gt_path": self._gt_path(rec, frames[:n], wav),
                         "identity": rec.identity,
                         "dataset": rec.dataset, "split": rec.split, **rec.meta}}
