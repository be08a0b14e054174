"""Sync-C / Sync-D: SyncNet lip-sync confidence and distance (Chung & Zisserman, 2017).

Loopy section 4.1 ("Metrics"), MCDM and JoyVASA all score lip sync with the public
``joonson/syncnet_python`` evaluation; this file follows that protocol
(metric_protocols.md section 1):

* the network ``S`` with the module/key names of ``syncnet_v2.model`` (a state_dict of S);
* audio: ``python_speech_features.mfcc(audio, 16000)`` defaults (13 ceps, 25 ms / 10 ms,
  appendEnergy) on int16-scaled samples, i.e. 100 MFCC columns per second;
* video: 224x224 face crops (``metrics/landmarks/face_crop.py``), BGR, raw 0-255;
  windows of 5 frames paired with 20 MFCC columns (frame i <-> columns 4i..4i+19);
  ``min(T, floor(samples / 640)) - 5`` windows (:func:`window_count`);
* faces: syncnet_python's S3FD tracks (``face_boxes="s3fd"``, :mod:`metrics.sync_tracks`) or, the
  offline default and a recorded deviation, MediaPipe boxes over the whole clip (any callable
  ``frames -> boxes`` can be plugged in);
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

from core.weights import load_torch, resolve, wrong_file
from metrics.base import standin_label, video_frames
from metrics.landmarks import VideoSkipped

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

    def __init__(self, num_layers_in_fc_layers: int = 1024, width: float = 1.0, channels: dict | None = None):
        super().__init__()
        # channels: official width -> this network's (e.g. read from a state dict); else scaled by width
        c = lambda n: int(channels[n]) if channels else max(1, int(round(n * width)))  # noqa: E731
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


#: One conv per official channel count whose output width a state dict gives (syncnet_v2 key layout).
_WIDTH_KEYS = {64: "netcnnaud.0.weight", 192: "netcnnaud.4.weight", 384: "netcnnaud.8.weight",
               256: "netcnnaud.11.weight", 512: "netcnnaud.18.weight", 96: "netcnnlip.0.weight"}


def syncnet_from_state(state: dict) -> S:
    """An ``S`` whose channel counts and embedding size are read from a state dict in the syncnet_v2 key layout.

    Each official width (64, 96, 192, 256, 384, 512) is read off one conv's output channels and the
    embedding size off ``netfcaud.3.weight``, so a narrower SyncNet trained with this code (e.g. on the
    synthetic benchmark, any ``width``) loads like the official one.
    """
    shapes = {n: state.get(k) for n, k in _WIDTH_KEYS.items()}
    last = state.get("netfcaud.3.weight")
    if not all(torch.is_tensor(v) and v.ndim >= 4 for v in shapes.values()) or not torch.is_tensor(last):
        return S()  # no width to read: the official network, whose strict load then names the missing keys
    return S(num_layers_in_fc_layers=int(last.shape[0]), channels={n: int(v.shape[0]) for n, v in shapes.items()})


def load_syncnet(path: str) -> S:
    """Load ``syncnet_v2.model`` (a plain state_dict of S) strictly, at the width its shapes give.

    Files saved by old PyTorch lack BatchNorm ``num_batches_tracked`` buffers; only
    those may be missing. Any other missing or unexpected key, other shapes or a non-torch file
    raise ``WeightsFormatError`` (a ValueError) naming the file and ``weights.syncnet_v2``."""
    state = load_torch(path, "syncnet_v2")
    if not isinstance(state, dict):
        raise wrong_file("syncnet_v2", path, f"expected a state_dict of SyncNet S, got {type(state).__name__}")
    model = syncnet_from_state(state)
    try:
        res = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # same keys, other shapes
        raise wrong_file("syncnet_v2", path, f"not a syncnet_v2.model state_dict ({str(e).strip()[:300]})") from e
    missing = [k for k in res.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or res.unexpected_keys:
        raise wrong_file("syncnet_v2", path, f"not a syncnet_v2.model state_dict: missing keys {missing[:5]}, "
                         f"unexpected keys {list(res.unexpected_keys)[:5]} (the file of syncnet_python download_model.sh)")
    return model.eval()


def syncnet_width(model) -> float:
    """Channel width of an ``S`` relative to the official network (1.0 for syncnet_v2.model)."""
    conv = getattr(getattr(model, "netcnnaud", None), "0", None)
    return float(conv.out_channels) / 64.0 if conv is not None else float("nan")


def has_official_shape(model: S) -> bool:
    """Every channel count and the 1024-d embedding of syncnet_v2.model (a narrower file cannot be it)."""
    state = model.state_dict()
    return (all(state[k].shape[0] == n for n, k in _WIDTH_KEYS.items())
            and state["netfcaud.3.weight"].shape[0] == 1024)


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


def window_count(n_frames: int, n_samples: int) -> int:
    """Number of 5-frame windows syncnet_python scores: ``min(T, floor(samples / 640)) - 5``.

    ``SyncNetInstance.evaluate`` sets ``min_length = min(len(images), floor(len(audio) / 640))`` and
    loops over ``range(lastframe)`` with ``lastframe = min_length - 5``. The count comes from the
    audio samples, not from the MFCC columns (``floor(M / 4)`` is one less for a whole-second clip:
    48,000 samples give 299 columns).
    """
    return min(int(n_frames), int(n_samples) // SAMPLES_PER_FRAME) - 5


def _lip_windows(model, clip: torch.Tensor) -> torch.Tensor:
    """Lip embeddings ``[N, D]`` of the N 5-frame windows of ``clip`` ``[3, N + 4, 224, 224]``.

    ``forward_lip`` returns ``[1, D]`` for a single window and ``[1, D, N]`` for several; both are
    brought to ``[N, D]`` here (a batch holding one window used to come back one dimension short).
    """
    out = model.forward_lip(clip[None])
    if out.ndim == 2:
        out = out[:, :, None]
    return out[0].T


@torch.no_grad()
def embed(model: S, crops_bgr: np.ndarray, mfcc: np.ndarray, n_samples: int, batch: int = 20, device="cpu"):
    """crops uint8 [T,224,224,3] BGR, mfcc [13,M] of ``n_samples`` audio samples ->
    (video [N,1024], audio [N,1024]) with N = :func:`window_count` (syncnet_python's ``lastframe``).

    Window i pairs frames i..i+4 with MFCC columns 4i..4i+19, in batches of ``batch`` windows."""
    n = window_count(len(crops_bgr), n_samples)
    if n < 1:
        raise VideoSkipped(f"too short for SyncNet: {n + 5} frames with audio at 25 fps, need at least 6")
    if 4 * (n - 1) + 20 > mfcc.shape[1]:
        raise VideoSkipped(f"audio gives {mfcc.shape[1]} MFCC columns, window {n - 1} needs {4 * (n - 1) + 20}")
    vid = torch.from_numpy(np.ascontiguousarray(crops_bgr)).to(device).permute(3, 0, 1, 2).float()  # [3,T,224,224]
    aud = torch.from_numpy(np.ascontiguousarray(mfcc)).to(device)
    im, cc = [], []
    for i in range(0, n, batch):
        j = min(n, i + batch)
        # windows i..j-1 need frames i..j+3; only the first Conv3d looks across time
        im.append(_lip_windows(model, vid[:, i:j + 4]))
        cc.append(model.forward_aud(torch.stack([aud[:, 4 * k:4 * k + 20] for k in range(i, j)])[:, None]))
    return torch.cat(im), torch.cat(cc)


def resample_to_25fps(frames: np.ndarray, fps: float) -> np.ndarray:
    """Nearest-earlier-frame resampling to 25 fps (the reference runs ``ffmpeg -r 25``)."""
    if abs(fps - FPS) < 1e-3:
        return frames
    n = int(round(len(frames) * FPS / fps))
    idx = np.minimum((np.arange(n) * fps / FPS).astype(int), len(frames) - 1)
    return frames[idx]


#: syncnet_python ``run_pipeline.py`` defaults of the S3FD face-track path (argparse defaults there).
S3FD_TRACK_DEFAULTS = {"facedet_scale": 0.25, "conf_th": 0.9, "min_track": 100, "num_failed_det": 25,
                       "min_face_size": 100}


def face_box_source(spec, weights_cfg: dict | None = None, device: str = "cpu", **s3fd_options):
    """Resolve option ``metrics.Sync.face_boxes``: ``"s3fd"``, ``"mediapipe"``, ``"module:function"`` or a callable.

    Every source but S3FD is a callable ``frames uint8 [T,H,W,3] RGB -> boxes [T,4]`` (pixels, x0 y0 x1 y1,
    NaN rows where no face), cropped as one track over the whole clip. ``"s3fd"`` returns a
    :class:`metrics.sync_tracks.S3FDTracks` (scene split, IoU tracks, ``min_track``, ``min_face_size``).
    Returns ``(source, name)``.
    """
    from metrics.sync_tracks import S3FDTracks

    if isinstance(spec, S3FDTracks):  # a track builder with a detector of one's own
        return spec, "s3fd"
    if callable(spec):
        return spec, getattr(spec, "__name__", type(spec).__name__)
    if spec == "s3fd":
        return S3FDTracks.from_weights(weights_cfg, device=device, **s3fd_options), "s3fd"
    if spec == "mediapipe":
        from metrics.landmarks.mediapipe_backend import detect_face_boxes

        return detect_face_boxes, "mediapipe"
    if isinstance(spec, str) and ":" in spec:
        import importlib

        module, _, attr = spec.partition(":")
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"metrics.Sync.face_boxes={spec!r}: cannot import {attr!r} from {module!r} ({e}); "
                             f"give 'module:function' of a callable frames [T,H,W,3] -> boxes [T,4]") from e
        return fn, spec
    raise ValueError(f"metrics.Sync.face_boxes must be 's3fd', 'mediapipe', 'module:function' or a callable, "
                     f"got {spec!r}")


class SyncScorer:
    """Per-video Sync-C / Sync-D / sync_offset of the generated video against its own audio.

    Options (``metrics.Sync.*``): ``face_boxes`` (:func:`face_box_source`; ``"mediapipe"`` is the offline
    default, ``"s3fd"`` the paper's detector and track logic), the S3FD track settings of
    :data:`S3FD_TRACK_DEFAULTS`, ``vshift``, ``batch`` (windows per forward pass, 20 as syncnet_python)
    and ``backbone_label`` (e.g. ``synthtalk:syncnet-w0.25``) for a SyncNet that is not ``syncnet_v2.model``.
    """

    name = "Sync"
    metric_names = ("Sync-C", "Sync-D")
    needs_gt = False
    kind = "per_video"

    def __init__(self, weights_cfg: dict | None = None, device: str = "cpu", standin: bool = True,
                 vshift: int = VSHIFT, min_face_fraction: float = 0.5, face_boxes="mediapipe", batch: int = 20,
                 backbone_label: str | None = None, **s3fd_options):
        unknown = sorted(set(s3fd_options) - set(S3FD_TRACK_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown metrics.Sync option(s) {unknown}; known: vshift, min_face_fraction, "
                             f"face_boxes, batch, backbone_label, {', '.join(S3FD_TRACK_DEFAULTS)}")
        self.device, self.vshift, self.min_face_fraction, self.batch = device, vshift, min_face_fraction, batch
        path = resolve("syncnet_v2", weights_cfg, standin=standin)  # None -> stand-in
        if path is None:
            self.model, self.backbone = standin_syncnet(0), STANDIN_LABEL
        else:
            self.model = load_syncnet(path)
            # a narrower network than syncnet_v2.model cannot be the official file, whatever its name
            self.backbone = backbone_label or (path if has_official_shape(self.model) else
                                               f"custom:syncnet-w{syncnet_width(self.model):g}:{path}")
        self.model.to(device)
        track = {**S3FD_TRACK_DEFAULTS, **s3fd_options}
        self.boxes, self.box_source = face_box_source(face_boxes, weights_cfg, device, **track)
        self.deviations = self._deviations(track)
        self.protocol = ("joonson/syncnet_python@6efbb1c SyncNetInstance.evaluate (MFCC 100 Hz, "
                         "min(T, floor(samples/640)) - 5 windows of 5 frames / 20 columns, calc_pdist, "
                         f"vshift {vshift}, Sync-C = median - min, Sync-D = min) on run_pipeline.crop_video crops "
                         f"(224 px, crop_scale 0.4, medfilt 13, pad 110); face boxes: {self.box_source}"
                         + (" tracks (PySceneDetect ContentDetector shots, IoU tracking, mean over tracks as "
                            "LatentSync eval_sync_conf)" if self.box_source == "s3fd" else
                            " over the whole clip, one face"))

    def _deviations(self, track: dict) -> tuple[str, ...]:
        out = []
        if self.box_source != "s3fd":
            out.append(f"face boxes from {self.box_source} over the whole clip, not syncnet_python's S3FD tracks")
        else:
            out += [f"S3FD {k}={v} (syncnet_python: {S3FD_TRACK_DEFAULTS[k]})" for k, v in track.items()
                    if v != S3FD_TRACK_DEFAULTS[k]]
        if self.vshift != VSHIFT:
            out.append(f"vshift={self.vshift} (syncnet_python scripts: {VSHIFT})")
        return tuple(out)

    def crops(self, frames: np.ndarray) -> np.ndarray:
        """RGB frames [T,H,W,3] -> BGR face crops [T,224,224,3] from the whole-clip box source."""
        from metrics.landmarks.face_crop import crop_faces, interpolate_boxes

        boxes = np.asarray(self.boxes(frames), dtype=np.float64)
        if boxes.shape != (len(frames), 4):
            raise ValueError(f"face box source {self.box_source} returned shape {boxes.shape} for {len(frames)} "
                             f"frames; it must return [T, 4] pixel boxes (metrics.Sync.face_boxes)")
        found = ~np.isnan(boxes).any(1)
        if found.mean() < self.min_face_fraction:
            raise VideoSkipped(f"face found in {found.sum()}/{len(found)} frames (< {self.min_face_fraction:.0%}): "
                               f"no face to crop the lips from; the video must show one visible face")
        return crop_faces(frames, interpolate_boxes(boxes))[..., ::-1].copy()

    def _score_clip(self, crops_bgr: np.ndarray, audio: np.ndarray, sample_rate: int) -> dict[str, float]:
        mf = mfcc_features(audio, sample_rate)
        im, cc = embed(self.model, crops_bgr, mf, len(audio), batch=self.batch, device=self.device)
        return sync_from_features(im, cc, self.vshift)

    def score_video(self, pred, gt=None) -> dict[str, float]:
        if pred.audio is None or len(pred.audio) == 0:
            raise VideoSkipped("video has no audio stream; Sync needs the driving audio muxed in")
        if float(np.abs(pred.audio).max()) < SILENCE_PEAK:  # no speech: any offset fits, Sync-C would mean nothing
            raise VideoSkipped("audio track is silent (peak below -60 dBFS); Sync needs the driving speech muxed in, "
                               "check the audio of this video")
        frames = resample_to_25fps(video_frames(pred), float(pred.fps))
        if len(frames) < 6:
            raise VideoSkipped(f"too short for SyncNet: {len(frames)} frames at 25 fps, need at least 6")
        if self.box_source != "s3fd":
            return self._score_clip(self.crops(frames), pred.audio, pred.sample_rate)
        tracks = self.boxes(frames)
        if not tracks:
            raise VideoSkipped(f"no S3FD face track of more than {self.boxes.min_track} frames with faces larger "
                               f"than {self.boxes.min_face_size} px (syncnet_python run_pipeline); lower "
                               f"metrics.Sync.min_track / min_face_size for short or small videos")
        from metrics.landmarks.face_crop import crop_faces

        per_track = []
        for t in tracks:  # each track with its own audio span, as run_pipeline.crop_video cuts it
            crops = crop_faces(frames[t.frames], t.boxes)[..., ::-1].copy()
            a = pred.audio[t.frames[0] * SAMPLES_PER_FRAME:(t.frames[-1] + 1) * SAMPLES_PER_FRAME]
            per_track.append(self._score_clip(crops, a, pred.sample_rate))
        longest = int(np.argmax([len(t.frames) for t in tracks]))
        return {"Sync-C": float(np.mean([r["Sync-C"] for r in per_track])),
                "Sync-D": float(np.mean([r["Sync-D"] for r in per_track])),
                "sync_offset": per_track[longest]["sync_offset"]}
