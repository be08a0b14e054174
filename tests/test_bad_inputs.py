"""The bad-input catalogue: one table of what the suite does with each kind of bad input.

Every row feeds a real public entry point one bad input. It expects either an error of the
suite's own (never a library's: PyAV, soundfile, PIL, torch.load) whose message names the
offending file or key AND says what to do, or a documented automatic fix (resample, downmix,
convert, pad), checked on the result. Where something is written, the row also checks that
what was already written survives. docs/CONTRACTS.md ("Bad inputs") lists the same rows.
"""

from __future__ import annotations

import errno
import logging
import re
import socket
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile
import torch

from core.video_io import write_video
from tests.data_fixtures import write_audio_only_mp4, write_vfr_mp4

SUITE = ("builtins", "core", "datamodules", "metrics", "experiments", "lightning_modules")
SR = 16000


# ----------------------------------------------------------------------------- expectations
def raises(exc, *patterns, after=None):
    """The entry point raises ``exc`` (a suite or builtin class) whose message matches every regex."""

    def check(ctx, feed):
        with pytest.raises(exc) as e:
            feed(ctx)
        assert type(e.value).__module__.split(".")[0] in SUITE, f"library error escaped: {type(e.value)}"
        for p in patterns:
            assert re.search(p, str(e.value)), f"{p!r} not in: {e.value}"
        if after:
            after(ctx)

    return check


def fixed(verify):
    """The entry point fixes the input itself; ``verify(ctx, result)`` checks the fixed result."""
    return lambda ctx, feed: verify(ctx, feed(ctx))


# ----------------------------------------------------------------------------- tiny inputs
def _frames(n=10, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _tone(seconds, sr=SR, hz=440.0, amp=0.5):
    return (amp * np.sin(2 * np.pi * hz * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def _video(path, n=10, audio=True, frames=None, sound=None):
    """A tiny mp4/mkv (32 px, 25 fps) with a tone muxed in unless ``audio`` is False."""
    frames = _frames(n) if frames is None else frames
    sound = (_tone(len(frames) / 25) if audio else None) if sound is None else sound
    return write_video(path, frames, 25.0, sound)


def _face(size=64):
    """The astronaut's face (scikit-image's bundled portrait), ``size`` px square."""
    import cv2
    from skimage.data import astronaut

    return cv2.resize(astronaut()[0:260, 100:360], (size, size), interpolation=cv2.INTER_AREA)


def _truncated(ctx, name, fraction, suffix=".mp4"):
    src = _video(ctx.tmp / f"src{suffix}", n=20)
    data = src.read_bytes()
    (ctx.tmp / name).write_bytes(data[: int(len(data) * fraction)])
    return ctx.tmp / name


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- data
def read_video_of(make):
    def feed(ctx):
        from core.video_io import read_video

        return read_video(make(ctx))

    return feed


def corrupt(ctx):
    (ctx.tmp / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    return ctx.tmp / "corrupt.mp4"


def zero_length(ctx):
    (ctx.tmp / "empty.mp4").write_bytes(b"")
    return ctx.tmp / "empty.mp4"


def audio_only(ctx):
    write_audio_only_mp4(ctx.tmp / "speech_only.mp4")
    return ctx.tmp / "speech_only.mp4"


def truncated_tail(ctx):
    from datamodules.clips import VideoRecord, decode_record

    path = _truncated(ctx, "cut.mkv", 0.5, ".mkv")  # Matroska keeps its header in front: the tail is lost
    return decode_record(VideoRecord("cut", str(path), "folder", "cut"), 32)


def truncated_everywhere(ctx):
    """read_video and check_media of the mp4 cut at every 37th byte of its header (moov) and at tenths of its data."""
    from core.video_io import VideoReadError, read_video
    from datamodules.report import check_media

    data = _video(ctx.tmp / "whole.mp4", n=20).read_bytes()
    moov = data.find(b"moov")
    out, cut = [], ctx.tmp / "cut.mp4"
    for n in sorted({*range(moov, len(data), 37), *(len(data) * k // 10 for k in range(1, 10))}):
        cut.write_bytes(data[:n])
        try:
            read = len(read_video(cut).frames)
        except VideoReadError as e:
            read = str(e)
        out.append((n, read, check_media(cut)))
    return out


def each_cut_explained(ctx, outcomes):
    assert len(outcomes) > 20
    for n, read, reason in outcomes:  # the whole video, or an error naming the file and saying what to do
        assert read == 20 or (str(ctx.tmp / "cut.mp4") in read and REDOWNLOAD in read), (n, read)
        assert reason is None or isinstance(reason, str), (n, reason)
    assert sum(isinstance(read, str) for _, read, _ in outcomes) > len(outcomes) // 2  # most cuts are fatal


def no_audio_stream(ctx):
    from core.video_io import read_audio

    return read_audio(_video(ctx.tmp / "mute.mp4", audio=False))


def folder_report(*files):
    """Index a folder data set holding ``files`` (name -> builder); returns the dropped rows."""

    def feed(ctx):
        from datamodules.folder import FolderDataModule

        (ctx.tmp / "data").mkdir()
        for name, build in files:
            build(ctx.tmp / "data" / name)
        dm = FolderDataModule(str(ctx.tmp / "data"), cache_dir=str(ctx.tmp / "cache"), image_size=32)
        dm.prepare_data()
        return dm.report.dropped

    return feed


def vfr_dropped(ctx, dropped):
    assert len(dropped) == 1 and dropped[0]["item"] == "vfr"
    reason = dropped[0]["reason"]
    assert "vfr.mp4" in reason and "variable frame rate" in reason and "convert it to constant 25 fps" in reason


def missing_root(ctx):
    from datamodules.folder import FolderDataModule

    FolderDataModule(str(ctx.tmp / "no_such_folder"), cache_dir=str(ctx.tmp / "cache")).prepare_data()


def empty_test_split(ctx):
    from datamodules.folder import FolderDataModule

    _video(ctx.tmp / "data" / "alice" / "c1.mp4")
    dm = FolderDataModule(str(ctx.tmp / "data"), cache_dir=str(ctx.tmp / "cache"), image_size=32, test_fraction=0.0)
    return dm.predict_dataloader()


def short_audio_item(ctx):
    """A 1 s video whose ``<clip>.wav`` (replacing its audio) lasts 0.5 s: the test item's audio."""
    from datamodules.folder import FolderDataModule

    _video(ctx.tmp / "data" / "bob" / "c1.mp4", n=25)
    soundfile.write(ctx.tmp / "data" / "bob" / "c1.wav", _tone(0.5), SR, subtype="FLOAT")
    dm = FolderDataModule(str(ctx.tmp / "data"), cache_dir=str(ctx.tmp / "cache"), image_size=32, test_count=1)
    return next(iter(dm.predict_dataloader()))


def padded_with_silence(ctx, item):
    a = item["audio"][0].numpy()
    assert int(item["num_frames"][0]) == 25 and a.shape == (25 * 640,)
    np.testing.assert_allclose(a[:8000], _tone(0.5), atol=1e-6)  # the wav as given ...
    assert not a[8000:].any()  # ... then silence to the video's length


def nan_wav(ctx):
    from core.video_io import read_audio

    x = _tone(0.2)
    x[100:110] = np.nan
    soundfile.write(ctx.tmp / "nan.wav", x, SR, subtype="FLOAT")
    return read_audio(ctx.tmp / "nan.wav")


def _clip_source(ctx):
    from datamodules.clips import ClipDataset, ClipSpec, VideoRecord

    rec = VideoRecord("v", str(_video(ctx.tmp / "v.mp4")), "folder", "v")
    return rec, lambda store: ClipDataset([rec], ClipSpec(num_frames=4, num_motion_frames=2), store)


def nan_in_clip(ctx):
    """The decoded-frame cache of a video holds NaN audio (a damaged cache): draw a training clip."""
    from datamodules.clips import FrameStore

    rec, dataset = _clip_source(ctx)
    FrameStore(32, ctx.tmp / "frames").get(rec)  # fills the cache
    (cached,) = (ctx.tmp / "frames").glob("*.audio.npy")
    np.save(cached, np.full(np.load(cached).shape, np.nan, np.float32))
    return dataset(FrameStore(32, ctx.tmp / "frames"))[0]


def _no_space(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


def frame_cache_disk_full(ctx):
    from datamodules.clips import FrameStore, decode_record

    rec, _ = _clip_source(ctx)
    ctx.expected = decode_record(rec, 32)
    ctx.monkeypatch.setattr(np, "save", _no_space)
    with ctx.caplog.at_level(logging.WARNING, "datamodules.clips"):
        return FrameStore(32, ctx.tmp / "frames").get(rec)


def decoded_without_cache(ctx, item):
    np.testing.assert_array_equal(item[0], ctx.expected[0])
    np.testing.assert_array_equal(item[1], ctx.expected[1])
    assert re.search(r"v\.mp4: cannot cache decoded frames under .*frames.*free space", ctx.caplog.text)
    assert not list((ctx.tmp / "frames").iterdir())  # no half-written .npy left behind


def feature_cache_disk_full(ctx):
    """Three one-video shards; the disk fills up while the second is written."""
    from datamodules.feature_cache import FeatureCache

    calls, savez = [], np.savez

    def savez_then_full(*a, **k):
        calls.append(1)
        return savez(*a, **k) if len(calls) < 2 else _no_space()

    ctx.monkeypatch.setattr(np, "savez", savez_then_full)
    FeatureCache(ctx.tmp / "feat", shard_size=1).build([("a", 1), ("b", 2), ("c", 3)], _feat, progress=False)


def _feat(x):
    return {"audio": np.full((2, 3), float(x), np.float32)}


def first_shard_kept(ctx):
    from datamodules.feature_cache import FeatureCache

    ctx.monkeypatch.undo()
    assert sorted(p.name for p in (ctx.tmp / "feat").iterdir()) == ["shard_000000.json", "shard_000000.npz"]
    cache = FeatureCache(ctx.tmp / "feat", shard_size=1)
    assert np.all(cache.load("a")["audio"] == 1.0)
    assert cache.build([("a", 1), ("b", 2), ("c", 3)], _feat, progress=False) == {"built": 2, "reused": 1, "rebuilt": 0}


def several_faces(ctx):
    """Two faces side by side through the preprocessing filter of Loopy / MCDM."""
    from datamodules.clips import VideoRecord
    from datamodules.preprocess.pipeline import Preprocessor

    face = _face()
    path = _video(ctx.tmp / "two.mp4", frames=np.stack([np.concatenate([face, face[:, ::-1]], 1)] * 6))
    pre = Preprocessor(ctx.tmp / "out", [{"name": "multiple_people"}], size=32, detect_every=2)
    return pre.run([VideoRecord("two", str(path), "folder", "two")], "wild", progress=False).dropped


def several_faces_dropped(ctx, dropped):
    assert [(d["item"], d["step"]) for d in dropped] == [("two", "multiple_people")]
    assert "several faces on 100%" in dropped[0]["reason"] and "crop it to one person" in dropped[0]["reason"]
    assert not list((ctx.tmp / "out").glob("*/*.mp4"))


def wrong_clip_key(ctx):
    from datamodules.folder import FolderDataModule

    FolderDataModule(str(ctx.tmp), clip={"num_frame": 8})


# ----------------------------------------------------------------------------- audio files
def wav(subtype, sr=SR, stereo=False):
    """read_audio of a 0.25 s 440 Hz tone written as ``subtype`` at ``sr`` (stereo: tone +- noise)."""

    def feed(ctx):
        from core.video_io import read_audio

        x = _tone(0.25, sr)
        if stereo:
            n = 0.1 * np.random.default_rng(0).standard_normal(len(x)).astype(np.float32)
            x = np.stack([x + n, x - n], 1)  # the mean of the channels is the tone
        soundfile.write(ctx.tmp / f"in_{subtype}_{sr}.wav", x, sr, subtype=subtype)
        return read_audio(ctx.tmp / f"in_{subtype}_{sr}.wav", SR)

    return feed


def same_tone(tol):
    def verify(ctx, a):
        assert a.dtype == np.float32 and a.ndim == 1 and len(a) == int(0.25 * SR)  # mono, 16 kHz
        assert -1.0 <= a.min() and a.max() <= 1.0
        inner = slice(100, -100)  # away from the resampling filter's edges
        np.testing.assert_allclose(a[inner], _tone(0.25)[inner], atol=tol)

    return verify


def corrupt_wav(ctx):
    from core.video_io import read_audio

    (ctx.tmp / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    return read_audio(ctx.tmp / "broken.wav")


# ----------------------------------------------------------------------------- portraits (sampling)
def portrait(make, size=64):
    def feed(ctx):
        from PIL import Image

        from experiments.sample import load_portrait

        ctx.Image = Image
        path = make(ctx, Image)
        with ctx.caplog.at_level(logging.WARNING, "experiments.sample"):
            return load_portrait(path, size)

    return feed


def _save(ctx, name, img):
    img.save(ctx.tmp / name)
    return ctx.tmp / name


def _gray8(ctx):
    return np.asarray(ctx.Image.fromarray(_face(128)).convert("L"))


def rgb_of(expected, size=64, tol=1.5 / 127.5):
    """The portrait is (1, 3, size, size) in [-1, 1] and matches ``expected(ctx)`` (uint8 HxWx3 at that size)."""

    def verify(ctx, x):
        assert x.shape == (1, 3, size, size) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1
        want = torch.from_numpy(expected(ctx).astype(np.float32) / 127.5 - 1).permute(2, 0, 1)
        assert (x[0] - want).abs().mean() < tol

    return verify


def _resized(ctx, arr, size=64):
    return np.asarray(ctx.Image.fromarray(arr).resize((size, size), ctx.Image.BICUBIC))


def rgba_face(ctx, Image):
    rgba = np.dstack([_face(128), np.full((128, 128), 255, np.uint8)])
    rgba[:32, :, 3] = 0  # the top quarter transparent
    return _save(ctx, "rgba.png", Image.fromarray(rgba))


def _over_white(ctx):
    rgb = _face(128).copy()
    rgb[:32] = 255
    return _resized(ctx, rgb)


def tiny_image(ctx, Image):
    return _save(ctx, "tiny.png", Image.fromarray(_face(8)))


def tiny_upscaled(ctx, x):
    rgb_of(lambda c: _resized(c, _face(8)), tol=2 / 127.5)(ctx, x)
    assert re.search(r"tiny\.png is only 8x8 px, upscaled to 64 px.*give a portrait of at least 64 px", ctx.caplog.text)


def _gradient():
    """A 3000x2000 (6 MP) picture: red grows to the right, green downwards."""
    g = np.linspace(0, 255, 3000).astype(np.uint8)
    return np.stack(np.broadcast_arrays(g[None, :], g[:2000, None], np.full((2000, 3000), 90, np.uint8)), -1)


def huge_image(ctx, Image):
    return _save(ctx, "huge.png", Image.fromarray(np.ascontiguousarray(_gradient())))


def _huge_centre(ctx):
    return _resized(ctx, np.ascontiguousarray(_gradient()[:, 500:2500]))  # the centre square, downscaled


def over_pil_limit(ctx, Image):
    ctx.monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # a 200x200 file stands in for a gigapixel one
    return _save(ctx, "bomb.png", Image.fromarray(np.zeros((200, 200, 3), np.uint8)))


def corrupt_image(ctx, Image):
    (ctx.tmp / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return ctx.tmp / "photo.png"


# ----------------------------------------------------------------------------- weights
def torch_file(ctx, name, what):
    path = ctx.tmp / name
    if what == "other-model":
        torch.save({"encoder.weight": torch.zeros(4, 4), "encoder.bias": torch.zeros(4)}, path)
    elif what == "garbage":
        path.write_bytes(b"<html>404 Not Found</html>" * 20)
    else:  # truncated download
        torch.save({"w": torch.zeros(1000)}, path)
        path.write_bytes(path.read_bytes()[:1500])
    return str(path)


def fid_weights(what):
    def feed(ctx):
        from metrics.fid import FIDScorer

        return FIDScorer({"fid_inception": torch_file(ctx, "fid.pth", what)}, standin=False)

    return feed


def syncnet_weights(what):
    def feed(ctx):
        from metrics.sync import SyncScorer

        return SyncScorer({"syncnet_v2": torch_file(ctx, "syncnet.model", what)}, standin=False)

    return feed


def liveportrait_weights(what):
    def feed(ctx):
        from lightning_modules.joyvasa.liveportrait import load_liveportrait_motion_extractor

        return load_liveportrait_motion_extractor(torch_file(ctx, "motion_extractor.pth", what), image_size=32,
                                                  depths=(1, 1, 1, 1), dims=(8, 8, 8, 8))

    return feed


def missing_weights(ctx):
    from metrics.fid import FIDScorer

    ctx.monkeypatch.delenv("SUITE_FID_INCEPTION", raising=False)
    return FIDScorer({"fid_inception": str(ctx.tmp / "pt_inception.pth")}, standin=False)


# ----------------------------------------------------------------------------- metrics.evaluate
def evaluate(metrics, pred, gt=None):
    """evaluate_folders over videos made by ``pred`` / ``gt`` (name -> Video kwargs) -> (per-video, summary)."""

    def feed(ctx):
        from metrics.evaluate import evaluate_folders

        for folder, spec in (("pred", pred), ("gt", gt or {})):
            (ctx.tmp / folder).mkdir()
            for name, kw in spec.items():
                _video(ctx.tmp / folder / f"{name}.mp4", **{k: v() if callable(v) else v for k, v in kw.items()})
        r = evaluate_folders(ctx.tmp / "pred", ctx.tmp / "gt" if gt else None, metrics=metrics, n_boot=10,
                             progress=False)
        return r.per_video.set_index("video"), r.summary

    return feed


def status_of(video, *patterns, ok=False):
    def verify(ctx, res):
        status = res[0].loc[video, "status"]
        if ok:
            assert status == "ok" and np.isfinite(res[0].loc[video, "Glo"]), status
        for p in patterns:
            assert re.search(p, status), f"{p!r} not in {status!r}"

    return verify


def baseline_rows(ctx, res):
    per_video, summary = res
    assert summary["missing_pred"] == ["only_gt"] and summary["extra_pred"] == ["only_pred"]
    assert "no ground-truth video named only_pred" in per_video.loc["only_pred", "status"]
    assert per_video.loc["both", "status"] == "ok" and summary["SSIM"]["n"] == 1


def missing_pred_folder(ctx):
    from metrics.evaluate import evaluate_folders

    return evaluate_folders(ctx.tmp / "nowhere", None, metrics=["IQA"], progress=False)


def _noise():
    return _frames(6, 64, seed=3)


def _two_faces():
    f = _face()
    return np.stack([np.concatenate([f, f[:, ::-1]], 1)] * 6)


# ----------------------------------------------------------------------------- runner
def tracking_down(ctx):
    from core.tracking import Tracker

    return Tracker(f"http://127.0.0.1:{_free_port()}", "catalogue")


def unknown_override(ctx):
    from omegaconf import OmegaConf

    from experiments.variants import expand

    cfg = {"seed": 0, "model": {"tsm": {"stride": 4}},
           "experiment": {"name": "tsm_stride", "variants": {"full": {}, "s = 1": {"model.tsm.strid": 1}}}}
    return expand(OmegaConf.create(cfg))


def wrong_type_override(ctx):
    from omegaconf import OmegaConf

    from experiments.variants import expand

    cfg = {"seed": 0, "model": {"tsm": {"stride": 4}},
           "experiment": {"name": "tsm_stride",
                          "variants": {"full": {}, "s = 1": {"model.tsm.stride": "one"}}}}
    return expand(OmegaConf.create(cfg))


def key_the_data_module_does_not_take(ctx):
    from omegaconf import OmegaConf

    from experiments.validate import check_run_config

    cfg = {"data": {"_target_": "datamodules.folder.FolderDataModule", "name": "folder", "root": str(ctx.tmp),
                    "test_secs": 2.0}}
    check_run_config(OmegaConf.create(cfg))


def _check_toy_stages(ctx, *stages):
    """The preflight of a toy run whose model.stages are ``stages``."""
    from omegaconf import OmegaConf

    from experiments.validate import check_run_config

    check_run_config(OmegaConf.create({"data": {"_target_": "tests.toy.ToyDataModule", "root": str(ctx.tmp)},
                                       "model": {"_target_": "tests.toy.ToyModule", "stages": list(stages)}}))


def misspelled_lr_schedule(ctx):
    _check_toy_stages(ctx, {"name": "stage1", "max_steps": 2},
                      {"name": "stage2", "max_steps": 2, "lr_schedule": "cosin"})


def misspelled_stage_key(ctx):
    _check_toy_stages(ctx, {"name": "stage1", "max_steps": 2},
                      {"name": "stage2", "max_steps": 2, "lr_shedule": "cosine"})


def zero_stage_batch_size(ctx):
    _check_toy_stages(ctx, {"name": "stage1", "max_steps": 2, "batch_size": 0})


def negative_snr_gamma(ctx):
    _check_toy_stages(ctx, {"name": "stage1", "max_steps": 2}, {"name": "stage2", "max_steps": 2, "snr_gamma": -5})


def snr_gamma_on_a_model_without_it(ctx):
    _check_toy_stages(ctx, {"name": "stage1", "max_steps": 2, "snr_gamma": 5})


def negative_lip_weight(ctx):
    _check_toy_stages(ctx, {"name": "stage1", "max_steps": 2}, {"name": "stage2", "max_steps": 2, "lip_weight": -1})


def lip_weight_on_a_model_without_it(ctx):
    _check_toy_stages(ctx, {"name": "stage1", "max_steps": 2, "lip_weight": 3})


# ----------------------------------------------------------------------------- the catalogue
def _errors():
    from core.cli import ConfigError
    from core.tracking import TrackingUnavailable
    from core.video_io import VideoReadError
    from core.weights import MissingWeightsError, WeightsFormatError
    from datamodules.feature_cache import CacheWriteError
    from experiments.variants import VariantError

    return SimpleNamespace(**{c.__name__: c for c in (CacheWriteError, VideoReadError, TrackingUnavailable, VariantError,
                                                      MissingWeightsError, WeightsFormatError, ConfigError)})


E = _errors()
REDOWNLOAD = "re-download"

CASES = [
    # data: media files
    pytest.param(read_video_of(corrupt), raises(E.VideoReadError, r"corrupt\.mp4", "corrupt or truncated", REDOWNLOAD),
                 id="data/corrupt-video"),
    pytest.param(read_video_of(lambda c: _truncated(c, "half.mp4", 0.5)),
                 raises(E.VideoReadError, r"half\.mp4", "corrupt or truncated", REDOWNLOAD), id="data/truncated-video"),
    pytest.param(truncated_everywhere, fixed(each_cut_explained), id="data/truncated-video-any-offset"),
    pytest.param(truncated_tail, raises(E.VideoReadError, r"cut\.mkv", r"truncated: decoded \d+ of \d+ frames",
                                        REDOWNLOAD), id="data/truncated-video-tail"),
    pytest.param(read_video_of(zero_length), raises(E.VideoReadError, r"empty\.mp4", r"0 bytes", REDOWNLOAD),
                 id="data/zero-length-video"),
    pytest.param(no_audio_stream, raises(E.VideoReadError, r"mute\.mp4", "no audio stream", "give a file with speech"),
                 id="data/no-audio-stream"),
    pytest.param(read_video_of(audio_only), raises(E.VideoReadError, r"speech_only\.mp4", "audio-only",
                                                   "give the video file"), id="data/audio-only-file"),
    pytest.param(folder_report(("vfr.mp4", write_vfr_mp4)), fixed(vfr_dropped), id="data/variable-frame-rate"),
    pytest.param(several_faces, fixed(several_faces_dropped), id="data/several-faces"),
    pytest.param(short_audio_item, fixed(padded_with_silence), id="data/audio-shorter-than-video"),
    pytest.param(nan_wav, raises(E.VideoReadError, r"nan\.wav", "NaN", "re-export"), id="data/nan-in-wav"),
    pytest.param(nan_in_clip, raises(ValueError, r"v\.mp4", "NaN", r"\['audio'\]", "delete the frame/feature cache"),
                 id="data/nan-in-training-clip"),
    pytest.param(feature_cache_disk_full, raises(E.CacheWriteError, r"shard_000001\.npz", "disk is full",
                                                 "run the same command again", "1 complete shard",
                                                 after=first_shard_kept), id="data/disk-full-feature-cache"),
    pytest.param(frame_cache_disk_full, fixed(decoded_without_cache), id="data/disk-full-frame-cache"),
    pytest.param(missing_root, raises(FileNotFoundError, r"data\.root=.*no_such_folder", "Expected layout"),
                 id="data/missing-data-folder"),
    pytest.param(empty_test_split, raises(ValueError, "test split is empty", r"data\.test_fraction"),
                 id="data/empty-test-split"),
    pytest.param(wrong_clip_key, raises(ValueError, r"data\.clip", "num_frame", "use num_frames"),
                 id="data/unknown-clip-key"),
    # audio files: read_audio converts to 16 kHz mono float32
    pytest.param(wav("PCM_U8"), fixed(same_tone(0.02)), id="audio/wav-8bit"),
    pytest.param(wav("PCM_16"), fixed(same_tone(1e-3)), id="audio/wav-16bit"),
    pytest.param(wav("PCM_24"), fixed(same_tone(1e-4)), id="audio/wav-24bit"),
    pytest.param(wav("FLOAT"), fixed(same_tone(1e-6)), id="audio/wav-float"),
    pytest.param(wav("PCM_16", stereo=True), fixed(same_tone(1e-3)), id="audio/wav-stereo"),
    pytest.param(wav("PCM_16", 44100), fixed(same_tone(0.01)), id="audio/wav-44.1khz"),
    pytest.param(wav("PCM_16", 48000), fixed(same_tone(0.01)), id="audio/wav-48khz"),
    pytest.param(corrupt_wav, raises(E.VideoReadError, r"broken\.wav", "unreadable audio", "re-export it as PCM wav"),
                 id="audio/corrupt-wav"),
    # sampling: the reference portrait becomes RGB of the model's size
    pytest.param(portrait(lambda c, Image: _save(c, "gray.png", Image.fromarray(_gray8(c)))),
                 fixed(rgb_of(lambda c: _resized(c, np.repeat(_gray8(c)[..., None], 3, -1)))),
                 id="sampling/grayscale-portrait"),
    pytest.param(portrait(lambda c, Image: _save(c, "gray16.png", Image.fromarray(_gray8(c).astype(np.uint16) * 257))),
                 fixed(rgb_of(lambda c: _resized(c, np.repeat(_gray8(c)[..., None], 3, -1)))),
                 id="sampling/grayscale-16bit-portrait"),
    pytest.param(portrait(rgba_face), fixed(rgb_of(_over_white)), id="sampling/rgba-portrait"),
    pytest.param(portrait(tiny_image), fixed(tiny_upscaled), id="sampling/tiny-image"),
    pytest.param(portrait(huge_image), fixed(rgb_of(_huge_centre)), id="sampling/huge-image"),
    pytest.param(portrait(over_pil_limit), raises(ValueError, r"bomb\.png", "too large", "downscale it"),
                 id="sampling/image-over-pil-limit"),
    pytest.param(portrait(corrupt_image),
                 raises(ValueError, r"photo\.png", "cannot be read", "give a PNG or JPEG"), id="sampling/corrupt-image"),
    # weights
    pytest.param(missing_weights, raises(E.MissingWeightsError, r"pt_inception\.pth", r"weights\.fid_inception",
                                         "SUITE_FID_INCEPTION", "set the config key"),
                 id="weights/missing-weight-file"),
    pytest.param(fid_weights("other-model"), raises(E.WeightsFormatError, r"fid\.pth", "not a pytorch-fid Inception",
                                                    r"weights\.fid_inception", "re-download"),
                 id="weights/fid-other-model"),
    pytest.param(syncnet_weights("other-model"), raises(E.WeightsFormatError, r"syncnet\.model", "missing keys",
                                                        r"weights\.syncnet_v2", "re-download"),
                 id="weights/syncnet-other-model"),
    pytest.param(syncnet_weights("garbage"), raises(E.WeightsFormatError, r"syncnet\.model", "not a readable torch file",
                                                    "SUITE_SYNCNET", "re-download"), id="weights/syncnet-not-torch"),
    pytest.param(liveportrait_weights("other-model"),
                 raises(E.WeightsFormatError, r"motion_extractor\.pth", "not a LivePortrait", "model.liveportrait.path",
                        "re-download"), id="weights/liveportrait-other-model"),
    pytest.param(liveportrait_weights("truncated"),
                 raises(E.WeightsFormatError, r"motion_extractor\.pth", "not a readable torch file",
                        "JOYVASA_LIVEPORTRAIT_PATH", "re-download"), id="weights/liveportrait-truncated"),
    # metrics.evaluate: per-video statuses and bookkeeping
    pytest.param(evaluate(["Glo"], {"noise": {"frames": _noise}}),
                 fixed(status_of("noise", r"skipped: Motion: pred: face found in 0/6", "no face",
                                 "must show one visible face")), id="metrics/no-face"),
    pytest.param(evaluate(["Glo"], {"two": {"frames": _two_faces}}), fixed(status_of("two", ok=True)),
                 id="metrics/several-faces"),
    pytest.param(evaluate(["Sync-C"], {"quiet": {"sound": lambda: np.zeros(6400, np.float32)}}),
                 fixed(status_of("quiet", "Sync: audio track is silent", "check the audio")),
                 id="metrics/silent-audio"),
    pytest.param(evaluate(["SSIM"], {"both": {}, "only_pred": {}}, {"both": {}, "only_gt": {}}), fixed(baseline_rows),
                 id="metrics/baseline-missing-and-extra-videos"),
    pytest.param(missing_pred_folder, raises(FileNotFoundError, "nowhere", "does not exist", r"check --pred / --gt"),
                 id="metrics/missing-pred-folder"),
    # runner
    pytest.param(tracking_down, raises(E.TrackingUnavailable, r"http://127\.0\.0\.1:\d+", "unreachable", "Start it",
                                       "Nothing was trained"), id="runner/tracking-server-down"),
    pytest.param(unknown_override, raises(E.VariantError, "'s = 1'", r"model\.tsm\.strid", r"--cfg job"),
                 id="runner/unknown-override"),
    pytest.param(wrong_type_override,
                 raises(E.VariantError, "'s = 1'", r"model\.tsm\.stride", "expected an integer",
                        "fix the value"),
                 id="runner/wrong-type-override"),
    pytest.param(key_the_data_module_does_not_take,
                 raises(E.ConfigError, r"data\.test_secs", "not a parameter", "FolderDataModule",
                        "remove it"),
                 id="runner/key-the-data-module-does-not-take"),
    pytest.param(misspelled_lr_schedule,
                 raises(E.ConfigError, r"model\.stages\[1\]\.lr_schedule", "unknown schedule 'cosin'", "cosine"),
                 id="runner/misspelled-lr-schedule"),
    pytest.param(misspelled_stage_key,
                 raises(E.ConfigError, r"model\.stages\[1\]\.lr_shedule", "not a stage key", "lr_schedule"),
                 id="runner/misspelled-stage-key"),
    pytest.param(zero_stage_batch_size,
                 raises(E.ConfigError, r"model\.stages\[0\]\.batch_size", "integer >= 1", "got 0"),
                 id="runner/zero-stage-batch-size"),
    pytest.param(negative_snr_gamma,
                 raises(E.ConfigError, r"model\.stages\[1\]\.snr_gamma", "number > 0", "got -5"),
                 id="runner/negative-snr-gamma"),
    pytest.param(snr_gamma_on_a_model_without_it,
                 raises(E.ConfigError, r"model\.stages\[0\]\.snr_gamma", "ToyModule has no Min-SNR", "remove the key"),
                 id="runner/snr-gamma-on-a-model-without-it"),
    pytest.param(negative_lip_weight,
                 raises(E.ConfigError, r"model\.stages\[1\]\.lip_weight", "number >= 0", "got -1"),
                 id="runner/negative-lip-weight"),
    pytest.param(lip_weight_on_a_model_without_it,
                 raises(E.ConfigError, r"model\.stages\[0\]\.lip_weight", "ToyModule has no mouth-region loss weight",
                        "remove the key"),
                 id="runner/lip-weight-on-a-model-without-it"),
]


@pytest.mark.parametrize("feed, expect", CASES)
def test_bad_input(feed, expect, tmp_path, monkeypatch, caplog):
    expect(SimpleNamespace(tmp=tmp_path, monkeypatch=monkeypatch, caplog=caplog), feed)
