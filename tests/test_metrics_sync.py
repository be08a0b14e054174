"""Sync-C / Sync-D: protocol maths, SyncNet layout and loader, scorer statuses."""
import numpy as np
import pytest
import torch

from core.video_io import Video
from metrics.landmarks import VideoSkipped
from metrics.sync import (
    S,
    SyncScorer,
    calc_pdist,
    embed,
    load_syncnet,
    mfcc_features,
    resample_to_25fps,
    standin_syncnet,
    sync_from_features,
)

torch.set_num_threads(1)


def test_calc_pdist_closed_form():
    g = torch.Generator().manual_seed(0)
    v, a = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    d = calc_pdist(v, a, vshift=2)
    assert d.shape == (6, 5)
    for i in range(6):
        for j in range(5):
            k = i + j - 2  # audio index compared with video frame i; outside -> zero row
            ref = a[k] if 0 <= k < 6 else torch.zeros(4)
            assert d[i, j] == pytest.approx(float(torch.norm(v[i] - ref + 1e-6)), abs=1e-5)


@pytest.mark.parametrize("k", [-4, 0, 3, 7])
def test_offset_recovers_audio_shift(k):
    # video embeddings v_i; the audio runs k frames ahead: a_j = v_{j+k}
    g = torch.Generator().manual_seed(1)
    N, D, pad = 60, 32, 10
    stream = torch.randn(N + 2 * pad, D, generator=g)
    v = stream[pad:pad + N]
    a = stream[pad + k:pad + k + N]
    r = sync_from_features(v, a, vshift=15)
    assert r["sync_offset"] == k
    # at the right offset only the |k| frames whose partner falls in the zero padding differ
    assert r["Sync-D"] == pytest.approx(float(v[:abs(k)].norm(dim=1).sum() if k > 0 else
                                              v[N + k:].norm(dim=1).sum()) / N, rel=1e-4, abs=1e-4)
    # audio of another clip: no offset stands out, confidence collapses
    other = sync_from_features(v, torch.randn(N, D, generator=g), vshift=15)
    assert other["Sync-C"] < 0.2 * r["Sync-C"]
    assert other["Sync-D"] > r["Sync-D"]


def test_confidence_is_median_minus_min():
    v = torch.zeros(3, 2)
    a = torch.tensor([[3.0, 4.0], [0.0, 0.0], [3.0, 4.0]])  # distances 5 or 0 (or 0 for padding)
    mdist = calc_pdist(v, a, vshift=1).mean(0)
    r = sync_from_features(v, a, vshift=1)
    assert r["Sync-D"] == pytest.approx(float(mdist.min()))
    assert r["Sync-C"] == pytest.approx(float(mdist.median() - mdist.min()))
    assert r["sync_offset"] == 1 - int(mdist.argmin())


def test_network_shapes_and_window_equivalence():
    m = standin_syncnet(0)
    with torch.no_grad():
        assert m.forward_aud(torch.randn(3, 1, 13, 20)).shape == (3, 1024)
        clip = torch.rand(1, 3, 7, 224, 224) * 255
        assert m.forward_lip(clip[:, :, :5]).shape == (1, 1024)
        long = m.forward_lip(clip)[0].T  # [3, 1024]: one per 5-frame window
        windows = torch.cat([m.forward_lip(clip[:, :, i:i + 5]) for i in range(3)])
    assert torch.allclose(long, windows, atol=1e-4)


OFFICIAL_SHAPES = {
    "netcnnaud.0.weight": (64, 1, 3, 3), "netcnnaud.4.weight": (192, 64, 3, 3),
    "netcnnaud.18.weight": (512, 256, 5, 4), "netcnnaud.19.running_var": (512,),
    "netfcaud.0.weight": (512, 512), "netfcaud.3.weight": (1024, 512),
    "netcnnlip.0.weight": (96, 3, 5, 7, 7), "netcnnlip.4.weight": (256, 96, 1, 5, 5),
    "netcnnlip.18.weight": (512, 256, 1, 6, 6), "netfclip.1.running_mean": (512,),
}


def test_official_layout_and_loader(tmp_path):
    state = S().state_dict()
    for key, shape in OFFICIAL_SHAPES.items():
        assert tuple(state[key].shape) == shape, key
    # random weights in the official format (plain state_dict, old files lack num_batches_tracked)
    g = torch.Generator().manual_seed(3)
    rnd = {k: torch.randn(v.shape, generator=g) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "syncnet_v2.model"
    torch.save(rnd, path)
    m = load_syncnet(str(path))
    assert not m.training
    for k, v in rnd.items():
        assert torch.equal(m.state_dict()[k], v), k
    # a renamed key must fail
    bad = dict(rnd)
    bad["netcnnaud.0.w"] = bad.pop("netcnnaud.0.weight")
    torch.save(bad, tmp_path / "bad.model")
    with pytest.raises(ValueError, match="missing keys"):
        load_syncnet(str(tmp_path / "bad.model"))


def test_mfcc_rate():
    a = np.random.default_rng(0).uniform(-0.1, 0.1, 16000).astype(np.float32)
    f = mfcc_features(a)
    assert f.shape[0] == 13 and f.shape[1] in (99, 100)  # 10 ms step
    with pytest.raises(ValueError, match="16 kHz"):
        mfcc_features(a, 8000)


class _CountingNet(torch.nn.Module):
    """Cheap 'SyncNet' with the official output conventions: forward_lip gives [B,D] for one 5-frame
    window and [B,D,N] for a longer clip; embeddings are the window's start frame value / column index."""

    def forward_lip(self, x):  # [B,3,T,H,W]
        starts = x[:, 0, :-4, 0, 0]  # frame value of each window's first frame
        out = starts[:, None, :].repeat(1, 2, 1)
        return out[:, :, 0] if out.shape[2] == 1 else out

    def forward_aud(self, x):  # [B,1,13,20]
        return x[:, 0, 0, :1].repeat(1, 2)


def test_embed_window_count_from_audio_samples():
    # syncnet_python: min_length = min(T, floor(samples / 640)), lastframe = min_length - 5.
    # 75 frames and 48,000 samples (3 s): 70 windows; the MFCC has 299 columns (floor(299 / 4) = 74).
    audio = np.random.default_rng(0).uniform(-0.3, 0.3, 48000).astype(np.float32)
    mf = mfcc_features(audio)
    assert mf.shape[1] == 299
    crops = np.arange(75, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
    im, cc = embed(_CountingNet(), crops, mf, len(audio))
    assert im.shape == (70, 2) and cc.shape == (70, 2)
    np.testing.assert_array_equal(im[:, 0].numpy(), np.arange(70))  # window i starts at frame i
    np.testing.assert_allclose(cc[:, 0].numpy(), mf[0, 4 * np.arange(70)], rtol=1e-6)  # columns 4i
    # the video limits the count when it is shorter than the audio
    assert embed(_CountingNet(), crops[:40], mf, len(audio))[0].shape == (35, 2)
    with pytest.raises(VideoSkipped, match="too short"):
        embed(_CountingNet(), crops[:5], mf, len(audio))


@pytest.mark.parametrize("T", [25, 26, 27, 45, 46, 47])
def test_embed_any_length_around_the_batch(T):
    # 26 frames: 21 windows, the second batch of 20 holds one window (forward_lip then returns [B, D])
    audio = np.random.default_rng(T).uniform(-0.3, 0.3, T * 640).astype(np.float32)
    crops = np.arange(T, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
    im, cc = embed(_CountingNet(), crops, mfcc_features(audio), len(audio), batch=20)
    assert im.shape == cc.shape == (T - 5, 2)
    np.testing.assert_array_equal(im[:, 0].numpy(), np.arange(T - 5))


def test_resample_to_25fps():
    f = np.arange(50)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    assert len(resample_to_25fps(f, 50.0)) == 25
    assert resample_to_25fps(f, 25.0) is f


def _astronaut_video(T=30, size=96, audio=True):
    import cv2
    from skimage.data import astronaut

    img = astronaut()
    frames = np.stack([cv2.resize(img[10 + t % 3:266 + t % 3, 100:356], (size, size)) for t in range(T)])
    sig = np.sin(np.linspace(0, 400, T * 640)).astype(np.float32) * 0.3 if audio else None
    return Video(frames=frames, fps=25.0, audio=sig, sample_rate=16000)


def test_scorer_standin_end_to_end_and_statuses():
    sc = SyncScorer(weights_cfg={}, standin=True)
    assert sc.backbone == "standin:syncnet-random:seed0" and sc.kind == "per_video" and not sc.needs_gt
    r = sc.score_video(_astronaut_video())
    assert set(r) == {"Sync-C", "Sync-D", "sync_offset"}
    assert -15 <= r["sync_offset"] <= 15 and r["Sync-C"] >= 0 and r["Sync-D"] > 0
    with pytest.raises(VideoSkipped, match="no audio"):
        sc.score_video(_astronaut_video(audio=False))
    blank = _astronaut_video(T=10)
    blank.frames[:] = 0
    with pytest.raises(VideoSkipped, match="face found in 0/10"):
        sc.score_video(blank)
    with pytest.raises(VideoSkipped, match="too short"):
        sc.score_video(_astronaut_video(T=1))


def test_scorer_without_weights_and_no_standin_fails_clearly():
    with pytest.raises(FileNotFoundError, match="syncnet_v2"):
        SyncScorer(weights_cfg={}, standin=False)


class _EnvelopeNet(torch.nn.Module):
    """A transparent 'SyncNet': the lip embedding of a window is the standardised frame
    brightness of its 5 frames, the audio embedding the standardised log energy (MFCC
    row 0 with appendEnergy) of its 20 columns averaged per video frame. Both follow the
    same hidden per-frame loudness, so the protocol must line them up."""

    @staticmethod
    def _std(x):
        return (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + 1e-6)

    def forward_lip(self, x):  # [B,3,T,H,W] -> [B,5,T-4]
        b = x.mean(dim=(1, 3, 4))
        return self._std(b.unfold(1, 5, 1)).transpose(1, 2)

    def forward_aud(self, x):  # [B,1,13,20] -> [B,5]
        return self._std(x[:, 0, 0].reshape(-1, 5, 4).mean(-1))


@pytest.mark.parametrize("k", [-3, 0, 2])
def test_embed_alignment_recovers_shift_end_to_end(k):
    rng = np.random.default_rng(4)
    T, pad = 80, 10
    loud = rng.uniform(0.02, 0.6, T + 2 * pad)
    crops = (np.log(loud[pad:pad + T]) * 40 + 200).clip(0, 255).astype(np.uint8)[:, None, None, None]
    crops = np.repeat(np.repeat(np.repeat(crops, 4, 1), 4, 2), 3, 3)
    # audio k frames ahead: during video frame t it plays the loudness of frame t + k
    env = np.repeat(loud[pad + k:pad + k + T], 640)
    audio = (rng.standard_normal(T * 640) * env).astype(np.float32) * 0.5
    im, cc = embed(_EnvelopeNet(), crops, mfcc_features(audio), len(audio))
    r = sync_from_features(im, cc)
    assert r["sync_offset"] == k
    shuffled = rng.permutation(T)  # another clip's audio: same loudness values, other order
    env2 = np.repeat(loud[pad:pad + T][shuffled], 640)
    audio2 = (rng.standard_normal(T * 640) * env2).astype(np.float32) * 0.5
    im2, cc2 = embed(_EnvelopeNet(), crops, mfcc_features(audio2), len(audio2))
    assert sync_from_features(im2, cc2)["Sync-C"] < 0.5 * r["Sync-C"]


@pytest.mark.parametrize("width", [0.25, 0.3])
def test_loader_reads_the_width_from_the_shapes(tmp_path, width):
    # a narrower SyncNet in the syncnet_v2 key layout (e.g. trained on the synthetic benchmark); at 0.3 the
    # rounded channel counts are not one ratio (64 -> 19, 192 -> 58), so each is read from its own conv
    small = S(width=width)
    g = torch.Generator().manual_seed(5)
    state = {k: torch.randn(v.shape, generator=g) if v.is_floating_point() else v for k, v in small.state_dict().items()}
    path = tmp_path / "syncnet_w025.model"
    torch.save(state, path)
    m = load_syncnet(str(path))
    assert m.netcnnaud[0].out_channels == round(64 * width) and m.netcnnlip[0].out_channels == round(96 * width)
    for k, v in state.items():
        assert torch.equal(m.state_dict()[k], v), k
    sc = SyncScorer({"syncnet_v2": str(path)}, standin=False)
    assert sc.backbone.startswith("custom:syncnet-w")  # never taken for the official file
    assert SyncScorer({"syncnet_v2": str(path)}, standin=False,
                      backbone_label="synthtalk:syncnet-w0.25").backbone == "synthtalk:syncnet-w0.25"


def test_pluggable_face_boxes_and_deviations():
    calls = []

    def centre_box(frames):  # a detector of one's own: frames [T,H,W,3] -> boxes [T,4], NaN = no face
        calls.append(frames.shape)
        t, h, w = frames.shape[:3]
        boxes = np.tile([w * 0.25, h * 0.2, w * 0.75, h * 0.8], (t, 1))
        boxes[1] = np.nan
        return boxes

    sc = SyncScorer(weights_cfg={}, face_boxes=centre_box)
    r = sc.score_video(_astronaut_video(T=12))
    assert calls == [(12, 96, 96, 3)] and set(r) == {"Sync-C", "Sync-D", "sync_offset"}
    assert sc.box_source == "centre_box" and any("centre_box" in d for d in sc.deviations)
    by_name = SyncScorer(weights_cfg={}, face_boxes="metrics.landmarks.mediapipe_backend:detect_face_boxes")
    assert by_name.box_source.endswith(":detect_face_boxes")
    assert "mediapipe" in SyncScorer(weights_cfg={}).deviations[0]
    with pytest.raises(ValueError, match="face_boxes"):
        SyncScorer(weights_cfg={}, face_boxes="nonexistent.module:fn")
    with pytest.raises(ValueError, match="min_trak"):
        SyncScorer(weights_cfg={}, min_trak=3)
