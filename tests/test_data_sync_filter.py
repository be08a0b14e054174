"""The preprocessing SyncNet filter uses the metrics package's SyncNet from the official file."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import skimage.data
import torch

from datamodules.preprocess.__main__ import sync_scorer
from datamodules.preprocess.filters import SyncConfidence
from metrics.sync import S


def test_without_the_official_file_the_filter_is_not_run(monkeypatch):
    monkeypatch.delenv("SUITE_SYNCNET", raising=False)
    assert sync_scorer(None) is None
    step = SyncConfidence(2.5, None)
    assert not step.available and step(SimpleNamespace(frames=None, audio=None)) is None


def test_official_format_file_drives_the_filter(tmp_path, monkeypatch):
    monkeypatch.delenv("SUITE_SYNCNET", raising=False)
    torch.manual_seed(0)
    path = tmp_path / "syncnet_v2.model"
    torch.save(S().state_dict(), path)  # random weights in the layout of syncnet_v2.model
    scorer = sync_scorer(str(path))
    assert scorer is not None
    face = skimage.data.astronaut()[::2, ::2]  # a real face, 256 px
    frames = np.repeat(face[None], 30, axis=0)
    audio = (0.1 * np.random.default_rng(0).standard_normal(30 * 640)).astype(np.float32)
    c = scorer(frames, audio)
    assert np.isfinite(c)
    work = SimpleNamespace(frames=frames, audio=audio)
    assert SyncConfidence(c - 1.0, scorer)(work) is None  # above the threshold: kept
    reason = SyncConfidence(c + 1.0, scorer)(work)
    assert reason.startswith("SyncNet confidence") and f"{c:.2f}" in reason
    # no face at all: dropped with the scorer's reason, not a crash
    blank = np.zeros_like(frames)
    assert SyncConfidence(2.5, scorer)(SimpleNamespace(frames=blank, audio=audio)).startswith("SyncNet could not score")
