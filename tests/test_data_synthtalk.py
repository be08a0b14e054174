# ruff: noqa: F811  (pytest fixtures imported from tests.data_fixtures)
"""SynthTalk: determinism, layout, splits, and its ground truth checked against itself."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from core.video_io import probe_video, read_video
from datamodules.synth_faces import NOSE_TIP, make_identity
from datamodules.synth_motion import MotionStyle, blink_track
from datamodules.synth_speech import Speaker
from datamodules.synthtalk import SynthTalk, render_clip
from tests.data_fixtures import TINY, synth_dm, synth_root  # noqa: F401  (fixtures)


def _digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "cache" not in p.parts}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    kw = dict(image_size=32, num_identities=2, clips_per_identity=1, seconds_per_clip=0.6, test_seconds=0.4)
    a = SynthTalk(tmp_path / "a", seed=3, **kw).build(progress=False)
    b = SynthTalk(tmp_path / "b", seed=3, **kw).build(progress=False)
    c = SynthTalk(tmp_path / "c", seed=4, **kw).build(progress=False)
    da, db, dc = _digest(a), _digest(b), _digest(c)
    assert len(da) == 2 * 2 * 3 + 4  # (mp4, wav, npz) x 4 clips + 2 splits + 2 json
    assert da == db
    assert a.name == b.name and a.name != c.name  # folder keyed by the parameters
    assert da["videos/astronaut_00.mp4"] != dc["videos/astronaut_00.mp4"]


def test_layout_splits_and_ground_truth_keys(synth_root):
    folder = SynthTalk(synth_root, **TINY).folder
    train = (folder / "splits/train.txt").read_text().split()
    test = (folder / "splits/test.txt").read_text().split()
    assert train == ["astronaut_00", "chelsea_00"]
    assert test == ["astronaut_test0", "chelsea_test0", "face02_test0"]
    assert not any(v.startswith("face02") for v in train)  # held-out identity never trains
    gt = np.load(folder / "gt/astronaut_00.npz")
    n = 50
    for k, shape in dict(yaw=(n,), pitch=(n,), roll=(n,), translation=(n, 2), scale=(n,), mouth_open=(n,),
                         blink=(n,), nose=(n, 2), keypoints=(n, 68, 2), audio_envelope=(n,)).items():
        assert gt[k].shape == shape, k
    assert np.allclose(gt["nose"], gt["keypoints"][:, NOSE_TIP])
    assert gt["keypoints"].min() >= 0 and gt["keypoints"].max() <= 1
    info = probe_video(folder / "videos/astronaut_00.mp4")
    assert info["has_audio"] and abs(info["fps"] - 25) < 1e-6 and info["width"] == 64 and info["num_frames"] == n


def test_failed_build_leaves_nothing(tmp_path, monkeypatch):
    import datamodules.synthtalk as st

    calls, real = [], st.write_video

    def boom(*a, **k):  # the second video fails half way through the build
        calls.append(a[0])
        if len(calls) == 2:
            raise OSError("disk full")
        return real(*a, **k)

    monkeypatch.setattr(st, "write_video", boom)
    gen = SynthTalk(tmp_path, image_size=32, num_identities=1, clips_per_identity=2, seconds_per_clip=0.4)
    with pytest.raises(OSError):
        gen.build(progress=False)
    assert not gen.folder.exists() and list(tmp_path.iterdir()) == []


def test_unknown_test_identity_names_the_key(tmp_path):
    with pytest.raises(ValueError, match="data.test_identities"):
        SynthTalk(tmp_path, num_identities=2, test_identities=["face07"])


def _lag_correlations(m, e, lags):
    out = []
    for lag in lags:  # correlate mouth[t] with envelope[t - lag]
        a = m[max(0, lag):len(m) + min(0, lag)]
        b = e[max(0, -lag):len(e) - max(0, lag)]
        out.append(np.corrcoef(a, b)[0, 1])
    return np.array(out)


@pytest.mark.parametrize("latency", [0, 2])
def test_mouth_follows_audio_envelope_at_stated_latency(latency):
    rng = np.random.default_rng(5)
    sp, style = Speaker.random(rng), MotionStyle.random(rng)
    _, audio, gt = render_clip(make_identity(2, 64, 0), sp, style, 8.0, 32, np.random.default_rng(1), latency)
    lags = np.arange(-4, 5)
    c = _lag_correlations(gt["mouth_open"], gt["audio_envelope"], lags)
    assert lags[c.argmax()] == latency
    assert c.max() > 0.6


def test_mouth_visibly_opens_in_decoded_frames(synth_root):
    folder = SynthTalk(synth_root, **TINY).folder
    v = read_video(folder / "videos/face02_test0.mp4")
    gt = np.load(folder / "gt/face02_test0.npz")
    dark = []
    for f, k in zip(v.frames, gt["keypoints"], strict=True):  # darkness of a fixed-size box under the upper inner lip
        cx, cy = (k[62] * 64).round().astype(int)
        patch = f[cy:cy + 4, cx - 3:cx + 4].astype(float).mean()
        dark.append(-patch)
    assert np.corrcoef(dark, gt["mouth_open"])[0, 1] > 0.6


def test_blinks_recur_on_the_style_rhythm():
    style = MotionStyle.random(np.random.default_rng(11))
    t = np.arange(0, 60, 1 / 25)
    b = blink_track(style, t)
    peaks = t[1:-1][(b[1:-1] > 0.8) & (b[1:-1] >= b[:-2]) & (b[1:-1] > b[2:])]
    gaps = np.diff(peaks)
    assert 3.0 <= style.blink_period_s <= 5.0 and len(peaks) >= 10
    assert np.all(np.abs(gaps - style.blink_period_s) < 0.31)  # +-0.15 s jitter on each end


def test_nose_track_matches_offline_face_mesh(tmp_path):
    """MediaPipe Face Mesh (bundled tflite, offline) on decoded frames vs the written nose track.

    Tolerance: median error under 2% of the frame side, and the detected horizontal
    nose motion correlates > 0.9 with the ground truth.
    """
    import mediapipe as mp

    gen = SynthTalk(tmp_path, image_size=192, num_identities=1, clips_per_identity=1, seconds_per_clip=2.0,
                    test_clips_per_identity=0)
    folder = gen.build(progress=False)
    v = read_video(folder / "videos/astronaut_00.mp4")
    gt = np.load(folder / "gt/astronaut_00.npz")["nose"]
    det = []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1) as fm:
        for f in v.frames:
            r = fm.process(f)
            assert r.multi_face_landmarks, "no face found in a SynthTalk astronaut frame"
            p = r.multi_face_landmarks[0].landmark[1]  # mesh point 1 = nose tip
            det.append((p.x, p.y))
    det = np.array(det)
    err = np.linalg.norm(det - gt, axis=1)
    assert np.median(err) < 0.02
    assert np.corrcoef(det[:, 0], gt[:, 0])[0, 1] > 0.9


def test_train_batch_follows_the_contract(synth_dm):
    torch.manual_seed(0)
    b = next(iter(synth_dm.train_dataloader()))
    assert b["frames"].shape == (2, 6, 3, 64, 64)
    assert b["reference"].shape == (2, 3, 64, 64)
    assert b["motion_frames"].shape == (2, 4, 3, 64, 64) and b["motion_mask"].shape == (2, 4)
    assert b["audio"].shape == (2, (6 + 4) * 640)
    assert b["landmarks"].shape == (2, 6, 68, 2) and torch.all(b["landmark_mask"] == 1)
    assert b["frames"].min() >= -1 and b["frames"].max() <= 1 and b["frames"].std() > 0.05
    assert len(b["meta"]) == 2 and {m["identity"] for m in b["meta"]} <= {"astronaut", "chelsea"}
    m = b["meta"][0]
    gt = np.load(m["gt_npz"])["keypoints"][m["start_frame"]:m["start_frame"] + 6]
    assert np.allclose(b["landmarks"][0].numpy(), gt)


def test_predict_items_follow_the_contract(synth_dm):
    items = list(synth_dm.predict_dataloader())
    assert len(items) == 3
    it = items[2]
    assert it["reference"].shape == (1, 3, 64, 64)
    assert int(it["num_frames"][0]) == 40 and it["audio"].shape == (1, 40 * 640)
    meta = it["meta"][0]
    assert meta["video_id"] == "face02_test0" and meta["split"] == "test" and meta["held_out_identity"]
    assert meta["gt_path"].endswith("videos/face02_test0.mp4")
    v = read_video(meta["gt_path"])
    assert np.abs(it["reference"][0].permute(1, 2, 0).numpy() - (v.frames[0] / 127.5 - 1)).max() < 1e-5


def test_long_history_reveals_the_next_blink_short_history_does_not():
    """With 150 past frames (6 s) the last blink is always in view, so last blink + period predicts the next
    one within the jitter; 4 past frames (0.16 s) almost never contain a blink to anchor on."""
    style = MotionStyle.random(np.random.default_rng(3))
    t = np.arange(0, 200, 1 / 25)
    b = blink_track(style, t)
    peaks = t[1:-1][(b[1:-1] > 0.8) & (b[1:-1] >= b[:-2]) & (b[1:-1] > b[2:])]
    rng = np.random.default_rng(0)
    seen_short, errors = 0, []
    for now in rng.integers(200, len(t) - 200, 60):
        past_long = peaks[(peaks < t[now]) & (peaks >= t[now - 150])]
        seen_short += bool(((peaks < t[now]) & (peaks >= t[now - 4])).any())
        assert len(past_long) >= 1
        nxt = peaks[peaks >= t[now]][0]
        errors.append(abs(past_long[-1] + style.blink_period_s - nxt))
    assert max(errors) < 0.35 and seen_short <= 6


def test_render_again_reproduces_the_built_clip_and_its_ground_truth(synth_root):
    """SynthTalk.render(video_id) with no clock is the clip ``build`` wrote: the stored keypoints exactly,
    the stored (encoded) frames up to the codec."""
    gen = SynthTalk(synth_root, **TINY)
    for vid in ("astronaut_test0", "face02_test0", "chelsea_00"):
        frames, audio, gt = gen.render(vid)
        stored = np.load(synth_root / gen.folder.name / "gt" / f"{vid}.npz")
        assert np.array_equal(gt["keypoints"], stored["keypoints"]) and float(gt["t0"]) == float(stored["t0"])
        decoded = read_video(gen.folder / "videos" / f"{vid}.mp4", with_audio=False).frames
        assert decoded.shape == frames.shape and np.abs(decoded.astype(int) - frames).mean() < 4
    with pytest.raises(KeyError, match="no clip 'face09_test0'"):
        gen.render("face09_test0")


def test_own_clock_keeps_speech_and_first_pose_and_moves_out_of_phase(synth_root, synth_dm):
    """The own_clock control: same mouth track and first pose (the reference frame), head sway and blinks
    from another point of the identity's clock, so later poses differ from the ground truth's."""
    gen = SynthTalk(synth_root, **TINY)
    _, audio, gt = gen.render("astronaut_test0")
    _, audio2, own = gen.render("astronaut_test0", clock=float(gt["t0"]) + 1.3)
    assert np.array_equal(audio, audio2) and np.array_equal(own["mouth_open"], gt["mouth_open"])
    for k in ("yaw", "pitch", "roll", "translation", "scale"):
        assert np.allclose(own[k][0], gt[k][0], atol=1e-5), k
    assert np.abs(own["yaw"][10:] - gt["yaw"][10:]).max() > 1.0  # degrees: out of phase after frame 0
    assert np.allclose(own["keypoints"][0], gt["keypoints"][0], atol=0.05)
    a = synth_dm.own_clock_frames("astronaut_test0", seed=0)
    assert np.array_equal(a, synth_dm.own_clock_frames("astronaut_test0", seed=0))  # the same per seed
    assert not np.array_equal(a, synth_dm.own_clock_frames("astronaut_test0", seed=1))


def test_at_rest_keeps_mouth_and_nods_and_drops_sway_and_blinks(synth_root, synth_dm):
    """The at_rest control: the audio-driven parts of the clip (mouth, nods on phrase onsets) and nothing
    else: the head at the mean pose of its sway (yaw and roll 0), no blink."""
    gen = SynthTalk(synth_root, **TINY)
    _, audio, gt = gen.render("astronaut_test0")
    _, audio2, rest = gen.render("astronaut_test0", at_rest=True)
    assert np.array_equal(audio, audio2) and np.array_equal(rest["mouth_open"], gt["mouth_open"])
    assert np.abs(gt["yaw"]).max() > 1.0 and np.abs(rest["yaw"]).max() == 0 and np.abs(rest["roll"]).max() == 0
    assert rest["blink"].max() == 0
    assert rest["pitch"].min() >= 0  # only the downward nods are left of the pitch track
    a = synth_dm.at_rest_frames("astronaut_test0")
    assert a.shape == synth_dm.own_clock_frames("astronaut_test0").shape
