# ruff: noqa: F811  (pytest fixtures imported from tests.data_fixtures)
"""Preprocessing filters, the report, resume, and the sharded feature cache."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from core.video_io import read_video, write_video
from datamodules.clips import VideoRecord
from datamodules.feature_cache import FeatureCache
from datamodules.preprocess import Preprocessor, build_steps
from datamodules.preprocess.face import detect_faces, pose_from_keypoints
from datamodules.preprocess.filters import SceneCut, SplitLong, Work
from tests.data_fixtures import TINY, bad_files, synth_root, synth_video  # noqa: F401  (fixture)

SMALL = [{"name": "no_face"}, {"name": "multiple_people"}, {"name": "camera_cut"}, {"name": "min_duration", "min_s": 1.0},
         {"name": "head_rotation"}, {"name": "sync_confidence"}, {"name": "file_size", "min_kb": 1}]


def _rec(path, vid, ident="x"):
    return VideoRecord(video_id=vid, path=str(path), dataset="t", identity=ident)


def test_pose_from_keypoints_closed_form():
    # frontal: eyes level, nose midway between the ears, 55% of the way from eyes to mouth
    kp = np.array([[0.4, 0.4], [0.6, 0.4], [0.5, 0.455], [0.5, 0.5], [0.3, 0.42], [0.7, 0.42]])
    assert np.allclose(pose_from_keypoints(kp), 0, atol=1e-3)
    side = kp.copy()
    side[2, 0] = 0.7  # nose at the left ear: 90 degrees of yaw
    assert abs(pose_from_keypoints(side)[0] - 90) < 1e-3
    tilt = kp.copy()
    tilt[1] = [0.6, 0.6]  # left eye 0.2 lower over 0.2: 45 degrees of roll
    assert abs(pose_from_keypoints(tilt)[2] - 45) < 1e-3


def test_scene_cut_and_split_long_segments(synth_root):
    a = read_video(synth_video(synth_root, "astronaut_00")).frames
    b = read_video(synth_video(synth_root, "face02_test0")).frames
    w = Work(None, np.concatenate([a[:30], b[:20]]), np.zeros(1), None, [(0, 50)])
    SceneCut()(w)
    assert w.segments == [(0, 30), (30, 50)]
    SplitLong(max_s=0.5)(w)
    assert w.segments == [(0, 12), (12, 24), (24, 30), (30, 42), (42, 50)]


def test_unknown_step_names_the_key():
    with pytest.raises(ValueError, match="preprocess.filters"):
        build_steps([{"name": "blur"}])
    with pytest.raises(ValueError, match="preprocess.filters.min_duration"):
        build_steps([{"name": "min_duration", "seconds": 2}])


def test_preprocess_filters_report_and_resume(synth_root, tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    a = read_video(synth_video(synth_root, "astronaut_00"))
    b = read_video(synth_video(synth_root, "face02_test0"))
    shutil.copy(synth_video(synth_root, "astronaut_00"), raw / "good.mp4")
    shutil.copy(synth_video(synth_root, "chelsea_00"), raw / "cat.mp4")  # the detector finds no human face
    n = min(len(a.frames), len(b.frames))
    write_video(raw / "two.mp4", np.concatenate([a.frames[:n], b.frames[:n]], 2), 25, a.audio)
    jump = np.concatenate([a.frames[:25], np.roll(a.frames[25:], 24, axis=2)])  # the face leaps sideways
    write_video(raw / "cut.mp4", jump, 25, a.audio)
    bad = bad_files(tmp_path / "bad")
    recs = [_rec(raw / f"{k}.mp4", k) for k in ("good", "cat", "two", "cut")] + [_rec(bad / "silent.mp4", "silent")]
    pre = Preprocessor(tmp_path / "out", SMALL, size=48, detect_every=2)
    rep = pre.run(recs, "t", progress=False)
    why = {d["item"]: (d["step"], d["reason"]) for d in rep.dropped}
    assert rep.kept == ["x/good.mp4"] and rep.num_in == 5
    assert why["cat"][0] == "no_face" and why["two"][0] == "multiple_people"
    assert why["cut"][0] == "camera_cut" and why["silent"] == ("media", "no audio stream")
    out = read_video(tmp_path / "out/x/good.mp4")
    assert out.frames.shape == (50, 48, 48, 3) and abs(out.fps - 25) < 1e-6 and len(out.audio) >= 1.9 * 16000
    # the crop is centred on the face: the detector finds it in the middle of the output
    c = detect_faces(out.frames, every=10).centres
    assert np.abs(np.nanmedian(c, 0) - 0.5).max() < 0.12
    info = json.loads((tmp_path / "out/preprocess_report.json").read_text())
    assert info["num_in"] == 5 and info["num_out"] == 1 and info["not_run"] == ["sync_confidence (no SyncNet scorer given)"]
    assert [s["name"] for s in info["steps"]] == [s["name"] for s in SMALL]
    # a rerun after a kill redoes nothing that finished
    monkeypatch.setattr(Preprocessor, "process", lambda self, rec: pytest.fail(f"re-processed {rec.video_id}"))
    again = Preprocessor(tmp_path / "out", SMALL, size=48).run(recs, "t", progress=False)
    assert again.kept == rep.kept and len(again.dropped) == 4


def test_file_size_filter_drops_small_outputs(synth_root, tmp_path):
    pre = Preprocessor(tmp_path / "out", [{"name": "file_size", "min_kb": 150}], size=32, detect_every=10)
    rep = pre.run([_rec(synth_video(synth_root, "astronaut_00"), "a")], "t", progress=False)
    assert rep.kept == [] and rep.dropped[0]["step"] == "file_size" and "< 150 KB" in rep.dropped[0]["reason"]
    assert not (tmp_path / "out/x/a.mp4").exists()


def test_feature_cache_resumes_and_rebuilds_corrupt_shards(tmp_path):
    calls = []

    def compute(x):
        calls.append(x)
        if x == "boom":
            raise KeyboardInterrupt  # a kill in the middle of shard 2
        return {"feat": np.full((3, 2), float(len(x)))}

    cache = FeatureCache(tmp_path / "c", shard_size=2)
    items = [(f"v{i}", "x" * (i + 1)) for i in range(5)]
    with pytest.raises(KeyboardInterrupt):
        cache.build(items[:4] + [("v4", "boom")], compute, progress=False)
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [
        "shard_000000.json", "shard_000000.npz", "shard_000001.json", "shard_000001.npz"]
    calls.clear()
    assert cache.build(items, compute, progress=False) == {"built": 1, "reused": 2, "rebuilt": 0}
    assert calls == ["xxxxx"]
    npz = tmp_path / "c/shard_000001.npz"
    npz.write_bytes(npz.read_bytes()[:-7] + b"garbage")
    calls.clear()
    assert cache.build(items, compute, progress=False) == {"built": 0, "reused": 2, "rebuilt": 1}
    assert calls == ["xxx", "xxxx"]
    assert np.all(cache.load("v3")["feat"] == 4.0)
    assert cache.key("v3", "feat").endswith("shard_000001.npz::v3/feat")
    with pytest.raises(KeyError, match="not in the feature cache"):
        cache.load("nope")


def test_cli_end_to_end_with_vae_and_audio_cache(synth_root, tmp_path):
    import torch
    from diffusers import AutoencoderKL

    from datamodules.folder import FolderDataModule
    from datamodules.preprocess.__main__ import main

    root = tmp_path / "wild"
    (root / "alice").mkdir(parents=True)
    shutil.copy(synth_video(synth_root, "astronaut_00"), root / "alice/c1.mp4")
    torch.manual_seed(0)  # random weights in the diffusers AutoencoderKL format (config.json + safetensors)
    AutoencoderKL(block_out_channels=(8, 8), down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=4,
                  layers_per_block=1, sample_size=32).save_pretrained(tmp_path / "vae")
    out = tmp_path / "proc"
    res = main(["data=folder", f"data.root={root}", f"out_dir={out}", "size=32", "progress=false",
                f"paths.data_dir={tmp_path}", "filters=[{name: no_face}, {name: min_duration, min_s: 1.0}]",
                "features=[audio,vae]", f"vae_path={tmp_path / 'vae'}"])
    assert res["num_out"] == 1 and res["cache"] == {"built": 1, "reused": 0, "rebuilt": 0}
    feats = FeatureCache(out / "features").load("alice__c1")
    assert feats["audio"].shape == (50, 640) and feats["latents"].shape == (50, 4, 16, 16)
    dm = FolderDataModule(str(out), cache_dir=str(tmp_path / "cache"), image_size=32, test_fraction=0.0,
                          clip=dict(num_frames=4, num_motion_frames=2), batch_size=1, samples_per_video=1)
    assert [r.video_id for r in dm.records("train")] == ["alice__c1"]


def test_landmarks68_layout_matches_synthtalk_ground_truth():
    """Face Mesh mapped to the 68-point layout agrees with SynthTalk's keypoints at the nose, eyes and mouth."""
    from datamodules.feature_cache import landmarks68
    from datamodules.synth_faces import make_identity
    from datamodules.synth_motion import MotionStyle
    from datamodules.synth_speech import Speaker
    from datamodules.synthtalk import render_clip

    rng = np.random.default_rng(0)
    frames, _, gt = render_clip(make_identity(0, 320, 0), Speaker.random(rng), MotionStyle.random(rng), 0.4, 160,
                                np.random.default_rng(1))
    lm = landmarks68(frames)
    assert np.isfinite(lm).all()
    for k, tol in ((30, 0.03), (36, 0.04), (45, 0.04), (48, 0.04), (54, 0.04)):
        err = np.linalg.norm(lm[:, k] - gt["keypoints"][:, k], axis=1)
        assert np.median(err) < tol, (k, np.median(err))
