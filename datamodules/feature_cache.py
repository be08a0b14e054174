"""A sharded feature cache (VAE latents, audio features, landmarks) that survives kills and corruption.

Videos are grouped in shards of ``shard_size`` in a fixed order. Shard ``i`` is
``shard_00000i.npz`` (arrays named ``<video_id>/<feature>``) plus ``shard_00000i.json``
(its video ids, feature names and the sha256 of the npz). Both are written to a
temporary name and renamed, the json last, so the json is the commit mark: a shard
whose json is missing, names other ids, or whose checksum does not match its npz is
rebuilt; a complete one is reused. Killing a build loses at most the shard in flight.
"""

from __future__ import annotations

import errno
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.atomic import atomic_path

# MediaPipe Face Mesh indices closest to the 68 iBUG points (jaw, brows, nose, eyes, lips), in iBUG order.
MESH_TO_IBUG68 = [127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,
                  70, 63, 105, 66, 107, 336, 296, 334, 293, 300, 168, 197, 5, 4, 75, 97, 2, 326, 305,
                  33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
                  61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181, 78, 82, 13, 312, 308, 317, 14, 87]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class CacheWriteError(OSError):
    """A shard could not be written (disk full, read-only folder); the complete shards stay valid."""

    def __init__(self, shard: Path, err: OSError, done: int):
        what = "the disk is full" if err.errno == errno.ENOSPC else f"{err.strerror or err}"
        super().__init__(err.errno, f"{shard}: cannot write this feature-cache shard: {what}. Free space on "
                                    f"{shard.parent} (or point the cache to another disk) and run the same command "
                                    f"again: the {done} complete shard(s) before it are kept and reused")


class FeatureCache:
    """``build(items, compute)`` fills the cache; ``load(video_id)`` reads one video's features back.

    ``items`` is a list of ``(video_id, payload)``; ``compute(payload) -> {feature: array}``.
    """

    def __init__(self, root: str | Path, shard_size: int = 16):
        self.root, self.shard_size = Path(root), int(shard_size)

    def _paths(self, i: int) -> tuple[Path, Path]:
        return self.root / f"shard_{i:06d}.npz", self.root / f"shard_{i:06d}.json"

    def shard_ok(self, i: int, ids: list[str]) -> bool:
        npz, meta = self._paths(i)
        if not (npz.exists() and meta.exists()):
            return False
        try:
            m = json.loads(meta.read_text())
        except (json.JSONDecodeError, OSError):
            return False
        return m.get("ids") == ids and m.get("sha256") == _sha256(npz)

    def build(self, items: list[tuple[str, object]], compute: Callable[[object], dict], progress: bool = True) -> dict:
        """Compute missing or damaged shards. Returns counts ``built``, ``reused``, ``rebuilt``."""
        self.root.mkdir(parents=True, exist_ok=True)
        stats = {"built": 0, "reused": 0, "rebuilt": 0}
        shards = [items[i:i + self.shard_size] for i in range(0, len(items), self.shard_size)]
        for i, shard in enumerate(tqdm(shards, desc=f"feature cache {self.root.name}", disable=not progress)):
            ids = [vid for vid, _ in shard]
            if self.shard_ok(i, ids):
                stats["reused"] += 1
                continue
            existed = any(p.exists() for p in self._paths(i))
            arrays, features = {}, set()
            for vid, payload in shard:
                for name, arr in compute(payload).items():
                    arrays[f"{vid}/{name}"] = np.asarray(arr)
                    features.add(name)
            npz, meta = self._paths(i)
            try:
                with atomic_path(npz) as tmp, open(tmp, "wb") as fh:
                    np.savez(fh, **arrays)
                with atomic_path(meta) as tmp:
                    tmp.write_text(json.dumps({"ids": ids, "features": sorted(features), "sha256": _sha256(npz)}))
            except OSError as e:
                raise CacheWriteError(npz, e, sum(stats.values())) from e
            stats["rebuilt" if existed else "built"] += 1
        self._index = None
        return stats

    def index(self) -> dict[str, Path]:
        """video id -> shard npz, over the complete shards."""
        out = {}
        for meta in sorted(self.root.glob("shard_*.json")):
            try:
                ids = json.loads(meta.read_text())["ids"]
            except (json.JSONDecodeError, KeyError, OSError):
                continue
            for vid in ids:
                out[vid] = meta.with_suffix(".npz")
        return out

    def key(self, video_id: str, feature: str) -> str | None:
        """``"<npz>::<video_id>/<feature>"`` for ``VideoRecord.keypoints``, or None when not cached."""
        shard = self.index().get(video_id)
        return f"{shard}::{video_id}/{feature}" if shard else None

    def load(self, video_id: str) -> dict[str, np.ndarray]:
        shard = self.index().get(video_id)
        if shard is None:
            raise KeyError(f"{video_id}: not in the feature cache {self.root} (run datamodules.preprocess with cache)")
        with np.load(shard) as z:
            return {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith(video_id + "/")}


def landmarks68(frames: np.ndarray) -> np.ndarray:
    """Per-frame 68 face keypoints ``[T, 68, 2]`` in [0, 1] from MediaPipe Face Mesh (NaN where no face)."""
    import mediapipe as mp

    out = np.full((len(frames), 68, 2), np.nan, np.float32)
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1) as fm:
        for t, f in enumerate(frames):
            r = fm.process(np.ascontiguousarray(f))
            if r.multi_face_landmarks:
                lm = r.multi_face_landmarks[0].landmark
                out[t] = [(lm[i].x, lm[i].y) for i in MESH_TO_IBUG68]
    return out
