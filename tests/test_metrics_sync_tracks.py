"""Sync face tracks of syncnet_python run_pipeline.py: shots, IoU tracks, S3FD layout, per-track scoring."""
import numpy as np
import pytest
import torch

from core.video_io import Video
from metrics.landmarks.face_crop import crop_faces
from metrics.landmarks.s3fd import S3FD, S3FDNet, decode, load_s3fd, priors
from metrics.sync import SyncScorer
from metrics.sync_tracks import S3FDTracks, content_cuts, downscale_factor, iou, shots, track_shot


def test_content_cuts_threshold_and_min_scene_len():
    # HSV change: black -> white is a V change of 255 (mean over H, S, V: 85 >= 30)
    black, white = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)
    frames = np.stack([black] * 20 + [white] * 5 + [black] * 30)
    # cut at 20; the cut back at 25 is only 5 frames later (< min_scene_len 15), so it is not a cut
    assert content_cuts(frames) == [20]
    assert shots(55, [20]) == [(0, 20), (20, 55)] and shots(10, []) == [(0, 10)]
    grey = np.full((8, 8, 3), 80, np.uint8)  # V change 80, mean over H, S, V 26.7 < 30: no cut
    assert content_cuts(np.stack([black] * 3 + [grey] * 3)) == []
    assert downscale_factor(399) == 1 and downscale_factor(640) == 3 and downscale_factor(1920) == 6


def _det(frame, x0, y0=0.0, size=120.0):
    return {"frame": frame, "bbox": [x0, y0, x0 + size, y0 + size]}


def test_track_shot_chains_gaps_and_sizes():
    assert iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    # one face drifting 1 px per frame over 0..109, missing in frames 40..59 (a 21-frame gap <= 25,
    # IoU across the gap (120 - 21) / (120 + 21) = 0.70 > 0.5)
    dets = [[_det(t, 1.0 * t)] if not 40 <= t < 60 else [] for t in range(110)]
    tracks = track_shot(dets, min_track=50, num_failed_det=25, min_face_size=100)
    assert len(tracks) == 1
    tr = tracks[0]
    np.testing.assert_array_equal(tr.frames, np.arange(110))  # the gap is filled in
    np.testing.assert_allclose(tr.boxes[50], [50, 0, 170, 120])  # linear interpolation over the gap
    # a longer gap splits the chain; each piece must be longer than min_track (strictly)
    dets_gap = [[_det(t, 0.0)] if not 40 <= t < 70 else [] for t in range(110)]
    assert [len(t.frames) for t in track_shot(dets_gap, 35, 25, 100)] == [40, 40]  # 0..39 and 70..109
    assert track_shot(dets_gap, 40, 25, 100) == []  # 40 detections are not more than min_track=40
    # faces too small, or jumping (IoU <= 0.5), make no track
    assert track_shot([[_det(t, 0.0, size=90.0)] for t in range(60)], 50, 25, 100) == []
    jumpy = [[_det(t, 80.0 * (t % 2))] for t in range(60)]
    assert track_shot(jumpy, 50, 25, 100) == []


def test_track_shot_two_faces_per_frame():
    # two faces in every frame, far apart: two tracks (a taken face is skipped over within its sweep)
    dets = [[_det(t, 0.0), _det(t, 500.0)] for t in range(60)]
    tracks = track_shot(dets, 50, 25, 100)
    assert sorted(t.boxes[0, 0] for t in tracks) == [0.0, 500.0]
    assert all(len(t.frames) == 60 for t in tracks)


def test_s3fd_layout_priors_and_loader(tmp_path):
    net = S3FDNet()
    sd = net.state_dict()
    assert sd["vgg.0.weight"].shape == (64, 3, 3, 3) and sd["vgg.31.weight"].shape == (1024, 512, 3, 3)
    assert sd["vgg.33.weight"].shape == (1024, 1024, 1, 1) and sd["L2Norm4_3.weight"].shape == (512,)
    assert sd["conf.0.weight"].shape == (4, 256, 3, 3) and sd["loc.3.weight"].shape == (4, 1024, 3, 3)
    assert sd["extras.3.weight"].shape == (256, 128, 3, 3) and len(sd) == 2 * 15 + 3 + 2 * 4 + 4 * 6
    p = priors((64, 32), [(16, 8)])  # stride 4, 16 px anchors
    np.testing.assert_allclose(p[0].numpy(), [2 / 32, 2 / 64, 16 / 32, 16 / 64])
    np.testing.assert_allclose(p[9].numpy(), [6 / 32, 6 / 64, 0.5, 0.25])  # row 1, column 1
    box = decode(torch.zeros(1, 4), torch.tensor([[0.5, 0.5, 0.2, 0.4]]))
    np.testing.assert_allclose(box.numpy(), [[0.4, 0.3, 0.6, 0.7]])
    torch.save(sd, tmp_path / "sfd_face.pth")
    loaded = load_s3fd(str(tmp_path / "sfd_face.pth"))
    assert torch.equal(loaded.L2Norm3_3.weight, sd["L2Norm3_3.weight"])
    bad = dict(sd)
    bad.pop("conf.5.bias")
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="weights.s3fd"):
        load_s3fd(str(tmp_path / "bad.pth"))
    dets = S3FD(loaded, conf_th=0.0).detect(np.zeros((128, 192, 3), np.uint8))
    assert dets.ndim == 2 and dets.shape[1] == 5
    with pytest.raises(Exception, match="facedet_scale"):
        S3FD(loaded).detect(np.zeros((64, 96, 3), np.uint8))


def _talking_clip(T=60, size=160, cut=None):
    rng = np.random.default_rng(0)
    frames = np.full((T, size, size, 3), 90, np.uint8)
    for t in range(T):
        frames[t, 40:120, 40:120] = 150 + (t % 5) * 10  # a "face" whose brightness moves with time
    if cut is not None:  # a hard cut to a reddish shot: saturation jumps from 0 to ~190 (HSV mean change > 30)
        frames[cut:, :, :, 1:] //= 4
    audio = (rng.standard_normal(T * 640) * 0.2).astype(np.float32)
    return Video(frames=frames, fps=25.0, audio=audio, sample_rate=16000)


def test_sync_scorer_on_s3fd_tracks_scores_each_track_with_its_audio():
    calls = []

    def detect(frame):  # a detector of one's own in S3FD's output format: [K, 5] pixel boxes + score
        calls.append(frame.shape)
        return np.array([[40.0, 40.0, 120.0, 120.0, 0.99]])

    tracks = S3FDTracks(detect, min_track=20, num_failed_det=25, min_face_size=50)
    video = _talking_clip(T=60, cut=30)  # a hard cut at 30: two shots, one track each
    found = tracks(video.frames)
    assert [(int(t.frames[0]), int(t.frames[-1])) for t in found] == [(0, 29), (30, 59)]
    sc = SyncScorer(weights_cfg={}, face_boxes=tracks)
    assert sc.box_source == "s3fd" and sc.deviations == ()
    calls.clear()
    r = sc.score_video(video)
    # run_pipeline crop_video: each track with the audio from frame[0] / 25 s to (frame[-1] + 1) / 25 s
    per = [sc._score_clip(crop_faces(video.frames[t.frames], t.boxes)[..., ::-1].copy(),
                          video.audio[t.frames[0] * 640:(t.frames[-1] + 1) * 640], 16000) for t in found]
    assert r["Sync-C"] == pytest.approx(np.mean([p["Sync-C"] for p in per]))
    assert r["Sync-D"] == pytest.approx(np.mean([p["Sync-D"] for p in per]))
    assert len(calls) == 60
    short = S3FDTracks(detect, min_track=100, min_face_size=50)
    with pytest.raises(Exception, match="no S3FD face track of more than 100 frames"):
        SyncScorer(weights_cfg={}, face_boxes=short).score_video(video)
    with pytest.raises(FileNotFoundError, match="s3fd"):
        SyncScorer(weights_cfg={}, face_boxes="s3fd")
    assert "min_track=50" in SyncScorer(weights_cfg={}, face_boxes=tracks, min_track=50).deviations[0]
