"""Sync-C / Sync-D: SyncNet lip-sync confidence and distance (Chung & Zisserman, 2017).

Loopy section 4.1 ("Metrics"), MCDM and JoyVASA all score lip sync with the public
``joonson/syncnet_python`` evaluation; this file follows that protocol
(metric_protocols.md section 1):

* the network ``S`` with the module/key names of ``syncnet_v2.model`` (a state_dict of S);
* audio: ``python_speech_features.mfcc(audio, 16000)`` defaults (13 ceps, 25 ms / 10 ms,
  appendEnergy) on int16-scaled samples, i.e. 100 MFCC columns per second;
* video: 224x224 face crops (``metrics/landmarks/face_crop.py``), BGR, raw 0-255;
  windows of 5 frames paired with 20 MFCC columns (frame i <-> columns 4i..4i+19);
* ``calc_pdist`` over offsets -vshift..vshift (vshift = 15), mean distance per offset;
  offset = vshift - argmin, Sync-D = min distance, Sync-C = median - min.

Offset sign: a positive offset means the audio runs ahead of the video (the lips
show at frame i what the audio carried at frame i - offset).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import Metric

from metrics.base import standin_label, video_frames
from metrics.landmarks import VideoSkipped
from metrics.weights import load_torch, resolve, wrong_file

FPS = 25
SAMPLES_PER_FRAME = 640  # 16000 / 25
VSHIFT = 15
STANDIN_LABEL = standin_label("syncnet-random", 0)
STANDIN_WIDTH = 0.125  # stand-in has 1/8 of the channels so it runs in seconds on CPU
SILENCE_PEAK = 1e-3  # -60 dBFS: an audio track below this peak is treated as silent (no speech)


def _fc(d_in: int, d_out: int) -> nn.Sequential:
    """netfcaud / netfclip: Linear d_in->512, BN1d, ReLU, Linear 512->d_out."""
    return nn.Sequential(nn.Linear(d_in, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, d_out))


class S(nn.Module):
    """SyncNet ``S`` (syncnet_python SyncNetModel.py), key names of ``syncnet_v2.model``.

    forward_aud: MFCC windows [B,1,13,20] -> [B,1024].
    forward_lip: BGR 0-255 clips [B,3,5,224,224] -> [B,1024]; a longer clip
    [B,3,T,224,224] gives [B,1024,T-4] (one embedding per 5-frame window) because only
    the first Conv3d looks across time (kernel 5, stride 1, no temporal padding).

    ``width`` scales the conv channels; 1.0 is the official network.
    """

    def __init__(self, num_layers_in_fc_layers: int = 1024, width: float = 1.0):
        super().__init__()
        c = lambda n: max(1, int(round(n * width)))  # noqa: E731
        self.netcnnaud = nn.Sequential(
            nn.Conv2d(1, c(64), (3, 3), (1, 1), (1, 1)), nn.BatchNorm2d(c(64)), nn.ReLU(inplace=True),
            nn.MaxPool2d((1, 1), (1, 1)),
            nn.Conv2d(c(64), c(192), (3, 3), (1, 1), (1, 1)), nn.BatchNorm2d(c(192)), nn.ReLU(inplace=True),
            nn.MaxPool2d((3, 3), (1, 2)),
            nn.Conv2d(c(192), c(384), (3, 3), padding=(1, 1)), nn.BatchNorm2d(c(384)), nn.ReLU(inplace=True),
            nn.Conv2d(c(384), c(256), (3, 3), padding=(1, 1)), nn.BatchNorm2d(c(256)), nn.ReLU(inplace=True),
            nn.Conv2d(c(256), c(256), (3, 3), padding=(1, 1)), nn.BatchNorm2d(c(256)), nn.ReLU(inplace=True),
            nn.MaxPool2d((3, 3), (2, 2)),
            nn.Conv2d(c(256), c(512), (5, 4), padding=(0, 0)), nn.BatchNorm2d(c(512)), nn.ReLU(),
        )
        self.netfcaud = _fc(c(512), num_layers_in_fc_layers)
        self.netfclip = _fc(c(512), num_layers_in_fc_layers)
        self.netcnnlip = nn.Sequential(
            nn.Conv3d(3, c(96), (5, 7, 7), (1, 2, 2), 0), nn.BatchNorm3d(c(96)), nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            nn.Conv3d(c(96), c(256), (1, 5, 5), (1, 2, 2), (0, 1, 1)), nn.BatchNorm3d(c(256)), nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            nn.Conv3d(c(256), c(256), (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(c(256)), nn.ReLU(inplace=True),
            nn.Conv3d(c(256), c(256), (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(c(256)), nn.ReLU(inplace=True),
            nn.Conv3d(c(256), c(256), (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(c(256)), nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            nn.Conv3d(c(256), c(512), (1, 6, 6), padding=0), nn.BatchNorm3d(c(512)), nn.ReLU(inplace=True),
        )

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        mid = self.netcnnaud(x)
        return self.netfcaud(mid.flatten(1))

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        mid = self.netcnnlip(x)  # [B,C,T-4,1,1]
        if mid.shape[2] == 1:
            return self.netfclip(mid.flatten(1))
        B, C, N = mid.shape[:3]
        out = self.netfclip(mid.reshape(B, C, N).transpose(1, 2).reshape(B * N, C))
        return out.reshape(B, N, -1).transpose(1, 2)


def load_syncnet(path: str) -> S:
    """Load ``syncnet_v2.model`` (a plain state_dict of S) strictly.

    Files saved by old PyTorch lack BatchNorm ``num_batches_tracked`` buffers; only
    those may be missing. Any other missing or unexpected key, other shapes or a non-torch file
    raise ``WeightsFormatError`` (a ValueError) naming the file and ``weights.syncnet_v2``."""
    state = load_torch(path, "syncnet_v2")
    if not isinstance(state, dict):
        raise wrong_file("syncnet_v2", path, f"expected a state_dict of SyncNet S, got {type(state).__name__}")
    model = S()
    try:
        res = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # same keys, other shapes
        raise wrong_file("syncnet_v2", path, f"not a syncnet_v2.model state_dict ({str(e).strip()[:300]})") from e
    missing = [k for k in res.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or res.unexpected_keys:
        raise wrong_file("syncnet_v2", path, f"not a syncnet_v2.model state_dict: missing keys {missing[:5]}, "
                         f"unexpected keys {list(res.unexpected_keys)[:5]} (the file of syncnet_python download_model.sh)")
    return model.eval()


def standin_syncnet(seed: int = 0) -> S:
    """Fixed-seed random SyncNet at 1/8 width (labelled ``standin:syncnet-random:seed0``).
    Its Sync-C/Sync-D numbers carry no lip-sync meaning; they exercise the pipeline."""
    g = torch.random.fork_rng()
    with g:
        torch.manual_seed(seed)
        model = S(width=STANDIN_WIDTH)
    return model.eval()


def mfcc_features(audio: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """float audio in [-1, 1] -> MFCC [13, M] at 100 Hz, python_speech_features defaults.
    Samples are scaled to the int16 range because the reference reads 16-bit wav files."""
    from python_speech_features import mfcc

    if sample_rate != 16000:
        raise ValueError(f"Sync needs 16 kHz audio, got {sample_rate} Hz (read the video with audio_rate=16000)")
    return mfcc(np.asarray(audio, dtype=np.float64) * 32768.0, 16000).T.astype(np.float32)


def calc_pdist(feat1: torch.Tensor, feat2: torch.Tensor, vshift: int = VSHIFT) -> torch.Tensor:
    """Distances per frame and offset. feat1 (video) [N,D], feat2 (audio) [N,D] ->
    [N, 2*vshift+1]: row i = ||v_i - a_j|| for j = i-vshift..i+vshift (zero-padded audio)."""
    win = 2 * vshift + 1
    f2 = F.pad(feat2, (0, 0, vshift, vshift))
    return torch.stack(
        [F.pairwise_distance(feat1[[i]].repeat(win, 1), f2[i:i + win]) for i in range(len(feat1))]
    )


def sync_from_features(im_feat: torch.Tensor, cc_feat: torch.Tensor, vshift: int = VSHIFT) -> dict:
    """(offset, Sync-C = median - min of the mean distance per offset, Sync-D = min)."""
    mdist = calc_pdist(im_feat, cc_feat, vshift).mean(0)
    minval, minidx = torch.min(mdist, 0)
    return {
        "Sync-C": float(torch.median(mdist) - minval),
        "Sync-D": float(minval),
        "sync_offset": float(vshift - int(minidx)),
    }


@torch.no_grad()
def embed(model: S, crops_bgr: np.ndarray, mfcc: np.ndarray, batch: int = 20, device="cpu"):
    """crops uint8 [T,224,224,3] BGR, mfcc [13,M] -> (video [N,1024], audio [N,1024]).

    min_length = min(T, floor(M / 4)) (= floor(samples / 640)); the reference loops over
    ``range(lastframe)`` with lastframe = min_length - 5, so N = min_length - 5."""
    min_length = min(len(crops_bgr), mfcc.shape[1] // 4)
    n = min_length - 5
    if n < 1:
        raise VideoSkipped(f"too short for SyncNet: {min_length} frames at 25 fps, need at least 6")
    vid = torch.from_numpy(crops_bgr).to(device).permute(3, 0, 1, 2).float()  # [3,T,224,224]
    aud = torch.from_numpy(mfcc).to(device)
    im, cc = [], []
    for i in range(0, n, batch):
        j = min(n, i + batch)
        # windows i..j-1 need frames i..j+3; the lip branch returns one embedding per window
        im.append(model.forward_lip(vid[:, i:j + 4][None])[0].T)
        cc.append(model.forward_aud(torch.stack([aud[:, 4 * k:4 * k + 20] for k in range(i, j)])[:, None]))
    return torch.cat(im), torch.cat(cc)


def resample_to_25fps(frames: np.ndarray, fps: float) -> np.ndarray:
    """Nearest-earlier-frame resampling to 25 fps (the reference runs ``ffmpeg -r 25``)."""
    if abs(fps - FPS) < 1e-3:
        return frames
    n = int(round(len(frames) * FPS / fps))
    idx = np.minimum((np.arange(n) * fps / FPS).astype(int), len(frames) - 1)
    return frames[idx]


class SyncScorer:
    """Per-video Sync-C / Sync-D / sync_offset of the generated video against its own audio."""

    name = "Sync"
    metric_names = ("Sync-C", "Sync-D")
    needs_gt = False
    kind = "per_video"

    def __init__(self, weights_cfg: dict | None = None, device: str = "cpu", standin: bool = True,
                 vshift: int = VSHIFT, min_face_fraction: float = 0.5):
        self.device, self.vshift, self.min_face_fraction = device, vshift, min_face_fraction
        path = resolve("syncnet_v2", weights_cfg, standin=standin)  # None -> stand-in
        if path is None:
            self.model, self.backbone = standin_syncnet(0), STANDIN_LABEL
        else:
            self.model, self.backbone = load_syncnet(path), path
        self.model.to(device)

    def crops(self, frames: np.ndarray) -> np.ndarray:
        """RGB frames [T,H,W,3] -> BGR face crops [T,224,224,3] (MediaPipe boxes)."""
        from metrics.landmarks.face_crop import crop_faces, interpolate_boxes
        from metrics.landmarks.mediapipe_backend import detect_face_boxes

        boxes = detect_face_boxes(frames)
        found = ~np.isnan(boxes).any(1)
        if found.mean() < self.min_face_fraction:
            raise VideoSkipped(f"face found in {found.sum()}/{len(found)} frames (< {self.min_face_fraction:.0%}): "
                               f"no face to crop the lips from; the video must show one visible face")
        return crop_faces(frames, interpolate_boxes(boxes))[..., ::-1].copy()

    def score_video(self, pred, gt=None) -> dict[str, float]:
        if pred.audio is None or len(pred.audio) == 0:
            raise VideoSkipped("video has no audio stream; Sync needs the driving audio muxed in")
        if float(np.abs(pred.audio).max()) < SILENCE_PEAK:  # no speech: any offset fits, Sync-C would mean nothing
            raise VideoSkipped("audio track is silent (peak below -60 dBFS); Sync needs the driving speech muxed in, "
                               "check the audio of this video")
        frames = resample_to_25fps(video_frames(pred), float(pred.fps))
        if len(frames) < 6:
            raise VideoSkipped(f"too short for SyncNet: {len(frames)} frames at 25 fps, need at least 6")
        mf = mfcc_features(pred.audio, pred.sample_rate)
        im, cc = embed(self.model, self.crops(frames), mf, device=self.device)
        return sync_from_features(im, cc, self.vshift)


class SyncMetric(Metric):
    """torchmetrics wrapper: ``update(video)`` scores one Video; ``compute()`` returns the mean
    Sync-C, Sync-D over scored videos (skipped videos are counted in ``skipped``)."""

    full_state_update = False

    def __init__(self, weights_cfg: dict | None = None, standin: bool = True, **kw):
        super().__init__(**kw)
        self.scorer = SyncScorer(weights_cfg, standin=standin)
        for s in ("conf_sum", "dist_sum", "n", "skipped"):
            self.add_state(s, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, video) -> None:
        try:
            r = self.scorer.score_video(video)
        except VideoSkipped:
            self.skipped += 1
            return
        self.conf_sum += r["Sync-C"]
        self.dist_sum += r["Sync-D"]
        self.n += 1

    def compute(self) -> dict[str, torch.Tensor]:
        return {"Sync-C": self.conf_sum / self.n, "Sync-D": self.dist_sum / self.n}
