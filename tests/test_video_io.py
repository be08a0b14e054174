"""Video writing is deterministic: the same frames give the same pixels, however many files a process
has written before (samples, controls and SynthTalk are compared across runs and variants)."""

from __future__ import annotations

import numpy as np

from core.video_io import read_video, write_video


def test_the_same_frames_decode_to_the_same_pixels_on_every_write(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.clip(rng.normal(120, 30, (12, 32, 32, 3)), 0, 255).astype(np.uint8)
    audio = (0.1 * np.sin(np.arange(12 * 640) / 10)).astype(np.float32)
    decoded = []
    for i in range(4):  # frames without timestamps were encoded differently from one file to the next
        write_video(tmp_path / f"v{i}.mp4", frames, 25.0, audio, 16000, crf=18)
        decoded.append(read_video(tmp_path / f"v{i}.mp4").frames)
    written = [(tmp_path / f"v{i}.mp4").read_bytes() for i in range(4)]
    for i, d in enumerate(decoded[1:], 1):
        np.testing.assert_array_equal(d, decoded[0], err_msg=f"file {i}: the written bytes are "
                                      f"{'equal' if written[i] == written[0] else 'different'} (so the "
                                      f"{'decoder' if written[i] == written[0] else 'encoder'} drifted)")
