"""Train the SynthTalk evaluators once and keep them beside the data: :func:`ensure_evaluators`.

The folder is ``<SynthTalk folder>/evaluators/<key>/``, ``key`` = :func:`metrics.synthtalk.config.cache_key`
(generator parameters incl. their version, the evaluator config, the code version). Each file is
written to a temporary name and renamed (a crash never leaves half a file under the real name) with
the mode a plain ``open()`` gives (the umask decides). A file lock around the whole check-and-train
makes a second process wait for the first and then reuse its files. A cached file that cannot be
loaded (truncated, not a torch file, wrong keys) is reported in a warning naming it, retrained, and
only it is replaced; its siblings stay (training is deterministic for a fixed seed, so a retrained
face network equals the one the cached SyncNet was trained with).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock

from core.atomic import atomic_path
from metrics.synthtalk.config import CODE_VERSION, EvaluatorConfig, cache_key
from metrics.synthtalk.data import SynthTalkFolder
from metrics.synthtalk.lab import FILES, DamagedFile, load_face, load_json, load_sync, save_face_blob

log = logging.getLogger(__name__)
LOCK_TIMEOUT_S = 3600  # a waiting process gives up after an hour (a first run trains in minutes)


def atomic_write(path: Path, write) -> None:
    """``write(tmp_path)`` into a temporary sibling renamed onto ``path`` (``core.atomic.atomic_path``)."""
    with atomic_path(path) as tmp:
        write(tmp)


def _save_torch(path: Path, obj) -> None:
    atomic_write(path, lambda t: torch.save(obj, t))


def _save_json(path: Path, obj) -> None:
    atomic_write(path, lambda t: Path(t).write_text(json.dumps(obj, indent=1, sort_keys=True, default=float)))


def evaluator_folder(synthtalk_folder, config: EvaluatorConfig | dict | None = None) -> Path:
    """Where :func:`ensure_evaluators` keeps the evaluators of this data and config (nothing is built)."""
    data = SynthTalkFolder(synthtalk_folder)
    cfg = config if isinstance(config, EvaluatorConfig) else EvaluatorConfig.from_dict(config)
    return data.folder / "evaluators" / cache_key(data.params, cfg)


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


class _Builder:
    """What one ``ensure_evaluators`` call needs: the data (read on first use) and the trained models."""

    def __init__(self, data: SynthTalkFolder, cfg: EvaluatorConfig, out: Path, progress: bool):
        self.data, self.cfg, self.out, self.progress = data, cfg, out, progress
        self._train = None
        self.trained: list[str] = []

    @property
    def train_clips(self):
        if self._train is None:
            self._train = self.data.clips("train")
            if not self._train:
                raise ValueError(
                    f"{self.data.folder / 'splits' / 'train.txt'}: empty training split; the SynthTalk "
                    f"evaluators train on it (raise data.clips_per_identity)"
                )
        return self._train

    def _timed(self, name: str, fn):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        path = self.out / FILES["timings"]
        try:
            timings = load_json(path)
        except DamagedFile:
            timings = {}
        timings[name] = {
            "wall_s": round(time.perf_counter() - t0, 2),
            "cpu_s": round(time.process_time() - c0, 2),
        }
        _save_json(path, timings)
        log.info("trained the SynthTalk %s evaluator in %.1f s (%s)", name, timings[name]["wall_s"], self.out)
        self.trained.append(name)
        return result

    def _cached(self, name: str, load, train, save):
        path = self.out / FILES[name]
        if path.exists():
            try:
                model = load(path)
                log.info("reusing the SynthTalk %s evaluator %s", name, path)
                return model
            except DamagedFile as e:
                warnings.warn(
                    f"{e}; damaged cached SynthTalk evaluator, retraining it "
                    f"(the other files of {self.out} are kept)",
                    stacklevel=3,
                )
        model = self._timed(name, train)
        save(path, model)
        return model

    def face(self):
        from metrics.synthtalk.face_train import train_facenet

        def train():
            c, f = self.train_clips, self.cfg.face
            return train_facenet(
                np.concatenate([x.frames for x in c]),
                np.concatenate([x.keypoints for x in c]),
                np.concatenate([x.gt["mouth_open"] for x in c]),
                np.concatenate([x.gt["blink"] for x in c]),
                np.concatenate([np.full(len(x.frames), i) for i, x in enumerate(c)]),
                width=f.width,
                steps=f.steps,
                pairs=f.pairs,
                negatives=f.negatives,
                lr=f.lr,
                motion_weight=f.motion_weight,
                far_weight=f.far_weight,
                blink_oversample=f.blink_oversample,
                seed=self.cfg.seed,
                progress=self.progress,
            )

        return self._cached(
            "face",
            lambda p: load_face(p, self.cfg, self.data.image_size),
            train,
            lambda p, m: _save_torch(p, save_face_blob(m)),
        )

    def sync(self, tracker):
        from metrics.synthtalk.syncnet import SyncTrainSet, train_syncnet

        def train():
            clips, s = self.train_clips, self.cfg.sync
            data = SyncTrainSet.from_clips(clips, [tracker.outputs(c.frames)["points"] for c in clips])
            return train_syncnet(
                data,
                width=s.width,
                steps=s.steps,
                batch=s.batch,
                lr=s.lr,
                margin=s.margin,
                shift_negatives=s.shift_negatives,
                other_negatives=s.other_negatives,
                min_shift=s.min_shift,
                seed=self.cfg.seed,
                progress=self.progress,
            )

        return self._cached(
            "sync",
            lambda p: load_sync(p, self.cfg.sync.width),
            train,
            lambda p, m: _save_torch(p, m.state_dict()),
        )


def ensure_evaluators(
    synthtalk_folder, config: EvaluatorConfig | dict | None = None, progress: bool = True
) -> Path:
    """Train what is missing of the SynthTalk evaluators and return their folder.

    Args:
        synthtalk_folder: a built SynthTalk set (``SynthTalk(...).build()`` returns it).
        config: :class:`EvaluatorConfig` or its mapping (config group ``evaluators``); defaults if None.
        progress: tqdm bars while training.
    Returns:
        ``<synthtalk_folder>/evaluators/<key>/`` holding config.json, face.pt, syncnet.pt, timings.json,
        skill.json (see :mod:`metrics.synthtalk.lab`); give it to ``metrics.evaluate`` as ``lab``.
    """
    from metrics.synthtalk.lab import Lab

    data = SynthTalkFolder(synthtalk_folder)
    cfg = config if isinstance(config, EvaluatorConfig) else EvaluatorConfig.from_dict(config)
    key = cache_key(data.params, cfg)
    out = data.folder / "evaluators" / key
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock", timeout=LOCK_TIMEOUT_S):
        out.mkdir(exist_ok=True)
        meta = {"key": key, "config": cfg.to_dict(), "params": data.params, "code_version": CODE_VERSION}
        try:
            if load_json(out / FILES["config"]) != meta:
                raise DamagedFile(out / FILES["config"], "describes another config")
        except DamagedFile as e:
            if (out / FILES["config"]).exists():
                warnings.warn(f"{e}; rewriting it", stacklevel=2)
            _save_json(out / FILES["config"], meta)
        build = _Builder(data, cfg, out, progress)
        build.face()
        tracker = Lab(out).tracker()
        build.sync(tracker)
        if cfg.skill:
            _ensure_skill(build, out)
    return out


def _ensure_skill(build: _Builder, out: Path) -> None:
    from metrics.synthtalk.lab import Lab
    from metrics.synthtalk.skill import measure_skill

    path = out / FILES["skill"]
    if path.exists() and not build.trained:
        try:
            load_json(path, ("face", "sync", "features"))
            return
        except DamagedFile as e:
            warnings.warn(f"{e}; damaged skill report, measuring it again", stacklevel=3)
    lab = Lab(out)
    t0 = time.perf_counter()
    report = measure_skill(lab, build.data, progress=build.progress)
    try:
        timings = load_json(out / FILES["timings"])
    except DamagedFile:
        timings = {}
    report.update(
        {
            "key": lab.key,
            "synthtalk": str(build.data.folder),
            "machine": machine(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "train_time": timings,
            "skill_time_s": round(time.perf_counter() - t0, 2),
        }
    )
    _save_json(path, report)


__all__ = ["atomic_write", "ensure_evaluators", "evaluator_folder", "machine"]
