"""Fixtures shared by the data tests: one tiny SynthTalk set per session."""

from __future__ import annotations

import pytest

TINY = dict(seed=0, image_size=64, num_identities=3, clips_per_identity=1, seconds_per_clip=2.0,
            test_identities=["face02"], test_clips_per_identity=1, test_seconds=1.6)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """Root folder holding one built tiny SynthTalk set (3 identities, 2 s clips, 64 px)."""
    from datamodules.synthtalk import SynthTalk

    root = tmp_path_factory.mktemp("synthtalk")
    SynthTalk(root, **TINY).build(progress=False)
    return root


@pytest.fixture(scope="session")
def synth_dm(synth_root):
    from datamodules.synthtalk import SynthTalkDataModule

    return SynthTalkDataModule(str(synth_root), **TINY, clip=dict(num_frames=6, num_motion_frames=4),
                               audio_context_frames=2, batch_size=2, samples_per_video=2, progress=False)


def write_audio_only_mp4(path, seconds: float = 0.5) -> None:
    """An mp4 with an AAC stream and no video stream."""
    import av
    import numpy as np

    with av.open(str(path), mode="w") as c:
        s = c.add_stream("aac", rate=16000)
        s.layout = "mono"
        a = (0.1 * np.sin(np.arange(int(16000 * seconds)) / 5)).astype(np.float32)
        for i in range(0, len(a), 1024):
            f = av.AudioFrame.from_ndarray(a[None, i:i + 1024].copy(), format="flt", layout="mono")
            f.sample_rate, f.pts = 16000, i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def synth_video(synth_root, video_id: str):
    """Path of one rendered SynthTalk mp4 of the session set."""
    from datamodules.synthtalk import SynthTalk

    return SynthTalk(synth_root, **TINY).folder / "videos" / f"{video_id}.mp4"


def bad_files(folder):
    """A zero-length, a silent (no audio), an audio-only and a variable-frame-rate mp4 in ``folder``."""
    import numpy as np

    from core.video_io import write_video

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.mp4").write_bytes(b"")
    write_video(folder / "silent.mp4", np.full((10, 32, 32, 3), 128, np.uint8), 25.0, None)
    write_audio_only_mp4(folder / "audio_only.mp4")
    write_vfr_mp4(folder / "vfr.mp4")
    return folder


def write_vfr_mp4(path) -> None:
    """Frames 40 ms and 120 ms apart in turn: a variable-frame-rate file."""
    from fractions import Fraction

    import av
    import numpy as np

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width = s.height = 32
        s.pix_fmt = "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        pts = 0
        for i in range(40):
            f = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 5, np.uint8), format="rgb24")
            f.pts, f.time_base = pts, Fraction(1, 1000)
            pts += 40 if i % 2 == 0 else 120
            for pk in s.encode(f):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
