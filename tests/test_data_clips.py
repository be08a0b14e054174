"""The shared clip sampler: motion frames newest first with a mask, audio window with context, collate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules.clips import SAMPLES_PER_FRAME, ClipSpec, collate_clips, sample_clip, to_tensor


def _video(n=20, size=4):
    frames = np.stack([np.full((size, size, 3), 10 * i, np.uint8) for i in range(n)])  # frame i has value 10 i
    audio = np.arange(n * SAMPLES_PER_FRAME, dtype=np.float32)  # sample s has value s
    return frames, audio


def _value(x):  # pixel value of a [-1, 1] frame back to uint8
    return int(round((float(x.reshape(-1)[0]) + 1) * 127.5))


def test_motion_frames_newest_first_with_mask():
    frames, audio = _video()
    it = sample_clip(frames, audio, start=2, ref_index=7, spec=ClipSpec(num_frames=3, num_motion_frames=4))
    assert [_value(f) for f in it["frames"]] == [20, 30, 40]
    assert [_value(f) for f in it["motion_frames"][:2]] == [10, 0]  # frames 1 then 0
    assert it["motion_mask"].tolist() == [1, 1, 0, 0] and it["motion_frames"][2:].abs().max() == 0
    assert _value(it["reference"]) == 70
    with pytest.raises(IndexError):
        sample_clip(frames, audio, start=18, ref_index=0, spec=ClipSpec(num_frames=3))


def test_audio_window_has_context_and_zero_padding():
    frames, audio = _video()
    spec = ClipSpec(num_frames=3, num_motion_frames=0, audio_context_frames=2)
    it = sample_clip(frames, audio, start=1, ref_index=0, spec=spec)
    a = it["audio"].numpy()
    assert len(a) == (3 + 4) * SAMPLES_PER_FRAME == spec.audio_samples
    # window starts one frame before the video: 640 zeros, then samples 0 ...
    assert np.all(a[:SAMPLES_PER_FRAME] == 0) and np.array_equal(a[SAMPLES_PER_FRAME:], audio[:6 * SAMPLES_PER_FRAME])
    end = sample_clip(frames, audio, start=17, ref_index=0, spec=spec)["audio"].numpy()
    assert np.array_equal(end[:5 * SAMPLES_PER_FRAME], audio[15 * SAMPLES_PER_FRAME:]) and np.all(end[-2 * 640:] == 0)


def test_landmarks_and_mask():
    frames, audio = _video()
    kp = np.random.default_rng(0).random((20, 68, 2)).astype(np.float32)
    it = sample_clip(frames, audio, 4, 0, ClipSpec(num_frames=3), kp)
    assert it["landmark_mask"] == 1 and torch.equal(it["landmarks"], torch.from_numpy(kp[4:7]))
    kp[5, 3] = np.nan  # a frame without a detected face: no keypoints for the clip
    it = sample_clip(frames, audio, 4, 0, ClipSpec(num_frames=3), kp)
    assert it["landmark_mask"] == 0 and it["landmarks"].abs().sum() == 0


def test_to_tensor_range_and_collate_keeps_meta():
    x = to_tensor(np.array([[[[0, 255, 51]]]], np.uint8))
    assert x.shape == (1, 3, 1, 1) and torch.allclose(x.flatten(), torch.tensor([-1.0, 1.0, 51 / 127.5 - 1]))
    frames, audio = _video()
    items = [dict(sample_clip(frames, audio, s, 0, ClipSpec(num_frames=2, num_motion_frames=1)), meta={"i": s})
             for s in (0, 5)]
    b = collate_clips(items)
    assert b["frames"].shape == (2, 2, 3, 4, 4) and b["meta"] == [{"i": 0}, {"i": 5}]
    with pytest.raises(ValueError, match="data.clip"):
        ClipSpec(num_frames=0)
