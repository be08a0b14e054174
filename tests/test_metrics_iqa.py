"""IQA/VQA: the default sharpness scorer ranks blur correctly; Q-Align says which file is missing."""
import cv2
import numpy as np
import pytest
from skimage.data import astronaut

from core.weights import MissingWeightsError
from metrics.iqa import IQAScorer, VQAScorer, one_fps


class _V:
    def __init__(self, frames, fps=25.0):
        self.frames, self.fps = frames, fps


def test_sharpness_prefers_sharp_frames():
    img = cv2.resize(astronaut(), (96, 96))
    sharp = _V(np.stack([img] * 30))
    blurred = _V(np.stack([cv2.GaussianBlur(img, (9, 9), 3)] * 30))
    s_sharp, s_blur = IQAScorer().score_video(sharp)["IQA"], IQAScorer().score_video(blurred)["IQA"]
    assert 0 <= s_blur < s_sharp <= 1
    assert VQAScorer().score_video(sharp)["VQA"] == pytest.approx(s_sharp)  # constant video: same mean
    assert len(one_fps(sharp.frames, 25.0)) == 2


def test_qalign_slot_names_missing_weights(monkeypatch):
    monkeypatch.delenv("SUITE_QALIGN", raising=False)
    with pytest.raises(MissingWeightsError, match="SUITE_QALIGN") as e:
        IQAScorer(backend="qalign")
    assert "weights.qalign" in str(e.value) and "one-align" in str(e.value)
    with pytest.raises(ValueError, match="metrics.VQA.backend"):
        VQAScorer(backend="nope")
