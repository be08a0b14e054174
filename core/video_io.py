"""Video and audio I/O on PyAV (FFmpeg), shared by data, sampling and metrics.

Every reader returns RGB uint8 frames ``[T, H, W, 3]`` and mono float32 audio in
[-1, 1] resampled to the requested rate (16 kHz is what wav2vec2 and SyncNet
expect). Every writer goes through ``core.atomic.atomic_path`` so that a crash never
leaves a half-written video behind a valid name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile

from core.atomic import atomic_path

__all__ = [
    "Video",
    "VideoReadError",
    "probe_video",
    "read_video",
    "read_audio",
    "write_video",
    "write_wav",
]


class VideoReadError(ValueError):
    """A media file that cannot be used; the message names the file and the fix."""

    def __init__(self, path: str | os.PathLike, reason: str, hint: str = ""):
        self.path = str(path)
        self.reason = reason
        msg = f"{self.path}: {reason}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


@dataclass
class Video:
    """Decoded frames and audio of one file.

    Attributes:
        frames: uint8 ``[T, H, W, 3]`` RGB.
        fps: average frame rate of the video stream.
        audio: float32 ``[S]`` mono in [-1, 1] at ``sample_rate``, or ``None``.
        sample_rate: audio sample rate in Hz.
        path: the source file, if any.
    """

    frames: np.ndarray
    fps: float
    audio: np.ndarray | None = None
    sample_rate: int = 16000
    path: str | None = None

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps if self.fps else 0.0


def _open(path: str | os.PathLike):
    p = Path(path)
    if not p.exists():
        raise VideoReadError(p, "file not found", "check the path or the data root")
    if p.stat().st_size == 0:
        raise VideoReadError(p, "file is empty (0 bytes)", "re-download or re-render it")
    try:
        return av.open(str(p))
    except (av.error.FFmpegError, OSError) as e:
        raise VideoReadError(p, f"not a readable media file ({e.__class__.__name__}: {e})",
                             "the file is corrupt or truncated; re-download it or drop it from the list") from e


def probe_video(path: str | os.PathLike) -> dict:
    """Stream facts without decoding: fps, frame count, size, audio presence, VFR flag."""
    with _open(path) as c:
        vs = c.streams.video[0] if c.streams.video else None
        has_audio = bool(c.streams.audio)
        if vs is None:
            return {"fps": 0.0, "num_frames": 0, "width": 0, "height": 0, "has_audio": has_audio,
                    "duration_s": float(c.duration or 0) / av.time_base, "variable_fps": False, "has_video": False}
        if vs.codec_context is None:  # a header cut inside the stream description
            raise VideoReadError(path, "video stream header is damaged (truncated or corrupt file)",
                                 "re-download it or drop it from the list")
        avg = float(vs.average_rate) if vs.average_rate else 0.0
        base = float(vs.base_rate) if vs.base_rate else avg
        dur = float(vs.duration * vs.time_base) if vs.duration else float(c.duration or 0) / av.time_base
        n = vs.frames or int(round(dur * avg))
        return {
            "fps": avg, "num_frames": int(n), "width": vs.codec_context.width, "height": vs.codec_context.height,
            "has_audio": has_audio, "duration_s": dur, "has_video": True,
            # average and nominal rate disagree on variable-frame-rate files
            "variable_fps": bool(avg and base and abs(avg - base) / base > 0.01),
        }


def _no_video(container, path) -> VideoReadError:
    """No video stream: an audio-only file, or a header cut short (a truncated mp4 keeps no usable stream)."""
    if container.streams.audio:
        return VideoReadError(path, "no video stream (audio-only file)", "give the video file with the frames")
    return VideoReadError(path, "no video or audio stream (the header is damaged: truncated or corrupt file)",
                          "re-download it or drop it from the list")


def _finite(x: np.ndarray, path) -> np.ndarray:
    """Audio with NaN or infinite samples is refused: it would reach the loss as NaN."""
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise VideoReadError(path, f"audio has {bad} NaN or infinite sample(s)",
                             "re-export it as PCM wav from the original recording")
    return x


def _decode_audio(container, path, sample_rate: int) -> np.ndarray | None:
    if not container.streams.audio:
        return None
    container.seek(0)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    chunks = []
    try:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    except av.error.FFmpegError as e:
        raise VideoReadError(path, f"audio stream is corrupt ({e})", "re-download the file") from e
    if not chunks:
        return np.zeros(0, np.float32)
    return np.clip(_finite(np.concatenate(chunks).astype(np.float32), path), -1.0, 1.0)


def read_video(path: str | os.PathLike, audio_rate: int = 16000, with_audio: bool = True,
               max_frames: int | None = None) -> Video:
    """Decode all (or the first ``max_frames``) frames as RGB uint8 and the audio as mono float32."""
    with _open(path) as c:
        if not c.streams.video:
            raise _no_video(c, path)
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        fps = float(vs.average_rate) if vs.average_rate else 25.0
        frames = []
        try:
            for frame in c.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
        except av.error.FFmpegError as e:
            if not frames:
                raise VideoReadError(path, f"video stream cannot be decoded ({e})", "re-download the file") from e
            # a truncated tail: keep what decoded, the caller sees the shorter length
        if not frames:
            raise VideoReadError(path, "video stream has no frames",
                                 "the file is empty or truncated; re-download or re-render it")
        audio = _decode_audio(c, path, audio_rate) if with_audio else None
    return Video(np.stack(frames), fps, audio, audio_rate, str(path))


def read_audio(path: str | os.PathLike, sample_rate: int = 16000) -> np.ndarray:
    """Mono float32 audio of a wav or of any media file's audio stream, resampled."""
    p = Path(path)
    if p.suffix.lower() in (".wav", ".flac") and p.exists():
        try:
            x, sr = soundfile.read(str(p), dtype="float32", always_2d=True)
        except RuntimeError as e:
            raise VideoReadError(p, f"unreadable audio ({e})", "re-export it as PCM wav") from e
        x = _finite(x.mean(axis=1), p)
        if sr != sample_rate:
            from scipy.signal import resample_poly

            g = np.gcd(sr, sample_rate)
            x = resample_poly(x, sample_rate // g, sr // g).astype(np.float32)
        return np.clip(x, -1.0, 1.0)
    with _open(p) as c:
        a = _decode_audio(c, p, sample_rate)
    if a is None:
        raise VideoReadError(p, "no audio stream", "give a file with speech audio")
    return a


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int = 16000) -> Path:
    """16-bit PCM wav, atomically."""
    with atomic_path(path) as tmp:
        soundfile.write(str(tmp), np.clip(np.asarray(audio, np.float32), -1, 1), sample_rate, subtype="PCM_16")
    return Path(path)


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float = 25.0, audio: np.ndarray | None = None,
                sample_rate: int = 16000, crf: int = 18) -> Path:
    """Write RGB uint8 ``[T, H, W, 3]`` frames as H.264 (yuv420p) mp4, with AAC audio muxed in.

    Odd frame sizes are padded by one pixel (yuv420p needs even sizes). ``crf=0``
    is visually lossless, for ground truth that metrics compare against.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise ValueError(f"write_video({path}): frames must be uint8 [T,H,W,3], got {frames.dtype}")
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"write_video({path}): frames must be uint8 [T,H,W,3] with T>0, got {frames.shape}")
    t, h, w, _ = frames.shape
    ph, pw = h % 2, w % 2
    if ph or pw:
        frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w") as c:
            vs = c.add_stream("libx264", rate=rate)
            vs.width, vs.height = frames.shape[2], frames.shape[1]
            vs.pix_fmt = "yuv420p"
            vs.options = {"crf": str(crf), "preset": "medium", "threads": "1",
                          "x264-params": "force-cfr=1"}
            aus = None
            if audio is not None and len(audio):
                aus = c.add_stream("aac", rate=sample_rate)
                aus.layout = "mono"
            for i, f in enumerate(frames):
                yuv = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p")
                # x264's rate control reads the frames' timestamps: without pts (and now and then with them,
                # through PyAV's time-base handling) the same frames were encoded to other pixels from one
                # file to the next in a process (up to 34 levels apart; tests/test_video_io.py). Explicit
                # timestamps, and force-cfr so that the rate control ignores them.
                yuv.pts, yuv.time_base = i, 1 / rate
                for pkt in vs.encode(yuv):
                    c.mux(pkt)
            for pkt in vs.encode():
                c.mux(pkt)
            if aus is not None:
                a = np.clip(np.asarray(audio, np.float32), -1, 1)
                step = 1024
                for i in range(0, len(a), step):
                    af = av.AudioFrame.from_ndarray(a[None, i:i + step].copy(), format="flt", layout="mono")
                    af.sample_rate = sample_rate
                    af.pts = i
                    for pkt in aus.encode(af):
                        c.mux(pkt)
                for pkt in aus.encode():
                    c.mux(pkt)
    return Path(path)
