"""A folder of trained SynthTalk evaluators (what ``ensure_evaluators`` returns), loaded and checked.

Files of an evaluator folder ``<synthtalk folder>/evaluators/<key>/``:

* ``config.json``  the cache key, the evaluator config and the generator parameters it was built for;
* ``face.pt``      ``{"format", "code_version", "image_size", "width", "state_dict"}`` of the face network;
* ``syncnet.pt``   a plain state dict of ``metrics.sync.S`` at ``config.sync.width``: the key layout of
  the official ``syncnet_v2.model``;
* ``timings.json`` training time of each evaluator; ``skill.json`` the skill (``metrics.synthtalk.skill``).

A file that cannot be read as what it should be raises :class:`DamagedFile` naming it.
"""

from __future__ import annotations

import json
import pickle
from functools import lru_cache
from pathlib import Path

import torch

from metrics.sync import S
from metrics.synthtalk.config import CODE_VERSION, EvaluatorConfig
from metrics.synthtalk.facenet import FaceNet

FACE_FORMAT = "synthtalk-facenet"
FILES = {
    "face": "face.pt",
    "sync": "syncnet.pt",
    "skill": "skill.json",
    "config": "config.json",
    "timings": "timings.json",
}


class DamagedFile(ValueError):
    """A cached evaluator file that is missing its content (truncated, not a torch file, wrong keys)."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = Path(path), reason


def _torch_load(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, OSError, KeyError) as e:
        raise DamagedFile(
            path, f"not a readable torch file ({type(e).__name__}: {str(e).strip()[:120]})"
        ) from e


def load_face(path, config: EvaluatorConfig, image_size: int) -> FaceNet:
    """The face network of ``path``, strictly: same format, code version, size, width and keys."""
    path = Path(path)
    blob = _torch_load(path)
    want = {
        "format": FACE_FORMAT,
        "code_version": CODE_VERSION,
        "image_size": image_size,
        "width": config.face.width,
    }
    if (
        not isinstance(blob, dict)
        or any(blob.get(k) != v for k, v in want.items())
        or "state_dict" not in blob
    ):
        got = {k: blob.get(k) for k in want} if isinstance(blob, dict) else type(blob).__name__
        raise DamagedFile(path, f"not a face network file of this config (expected {want}, got {got})")
    model = FaceNet(image_size, config.face.width)
    try:
        model.load_state_dict(blob["state_dict"], strict=True)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise DamagedFile(
            path, f"face network weights do not match ({str(e).strip().splitlines()[0][:160]})"
        ) from e
    return model.eval()


def save_face_blob(model: FaceNet) -> dict:
    return {
        "format": FACE_FORMAT,
        "code_version": CODE_VERSION,
        "image_size": model.image_size,
        "width": model.width,
        "state_dict": model.state_dict(),
    }


def load_sync(path, width: float) -> S:
    """``metrics.sync.S(width=width)`` from a syncnet_v2-layout state dict, strictly."""
    path = Path(path)
    state = _torch_load(path)
    if not isinstance(state, dict):
        raise DamagedFile(path, f"expected a state dict of metrics.sync.S, got {type(state).__name__}")
    model = S(width=width)
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise DamagedFile(
            path, f"SyncNet weights do not match S(width={width}) ({str(e).strip().splitlines()[0][:160]})"
        ) from e
    return model.eval()


def load_json(path, required: tuple[str, ...] = ()) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DamagedFile(path, f"not readable JSON ({type(e).__name__})") from e
    if not isinstance(data, dict) or any(k not in data for k in required):
        raise DamagedFile(path, f"expected a JSON object with keys {list(required)}")
    return data


class Lab:
    """Trained evaluators of one folder; models are loaded once, on first use."""

    def __init__(self, folder):
        self.folder = Path(folder)
        path = self.folder / FILES["config"]
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: missing; {self.folder} is not a SynthTalk evaluator folder "
                f"(metrics.synthtalk.ensure_evaluators(<SynthTalk folder>) builds one and returns it)"
            )
        meta = load_json(path, ("key", "config", "params"))
        self.key: str = meta["key"]
        self.config = EvaluatorConfig.from_dict(meta["config"])
        self.image_size = int(meta["params"]["image_size"])
        self._face = self._sync = self._tracker = None

    @property
    def face_label(self) -> str:
        return f"synthtalk:facenet-w{self.config.face.width}:{self.key}"

    @property
    def sync_label(self) -> str:
        return f"synthtalk:syncnet-w{self.config.sync.width:g}:{self.key}"

    def face(self) -> FaceNet:
        if self._face is None:
            self._face = load_face(self.folder / FILES["face"], self.config, self.image_size)
        return self._face

    def syncnet(self) -> S:
        if self._sync is None:
            self._sync = load_sync(self.folder / FILES["sync"], self.config.sync.width)
        return self._sync

    def tracker(self):
        """The face network as a landmark backend (:class:`metrics.synthtalk.tracker.FaceTracker`)."""
        from metrics.synthtalk.tracker import FaceTracker

        if self._tracker is None:
            self._tracker = FaceTracker(self.face(), self.face_label)
        return self._tracker

    def skill(self) -> dict:
        """The measured skill (``skill.json``); ``metrics.synthtalk.skill.flatten`` makes MLflow metrics."""
        return load_json(self.folder / FILES["skill"])


@lru_cache(maxsize=8)
def _open(folder: str, stamp: float) -> Lab:
    return Lab(folder)


def open_lab(folder) -> Lab:
    """One shared :class:`Lab` per folder (re-read when its config.json changes)."""
    folder = Path(folder).resolve()
    path = folder / FILES["config"]
    return _open(str(folder), path.stat().st_mtime if path.exists() else 0.0)


__all__ = ["FILES", "DamagedFile", "Lab", "load_face", "load_json", "load_sync", "open_lab", "save_face_blob"]
