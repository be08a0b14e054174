"""FVD-I and FVD-R: Frechet distance between video-level features of generated and ground-truth
videos (Loopy Tables 1-2 "FVD-Inc" / "FVD-Res"; metric_protocols.md section 2). The distance itself is
:func:`metrics.frechet.frechet_from_features`, shared with FID and E-FID.

Which I3D is "FVD-Inc". The two columns come as a pair, "FVD-Res" and "FVD-Inc", and the only public
tool with a 3D-ResNet FVD beside an Inception-3D FVD is DisCo's ``tool/metrics/metric_center.py``
(``FVD-3DRN50`` / ``FVD-3DInception``), the tool Hallo2's maintainers point to for FVD; the FVD-Res
column cannot come from StyleGAN-V, which has no 3D ResNet. So FVD-I follows DisCo by default
(``reference: disco``); StyleGAN-V's ``fvd2048_16f`` stays available as ``reference: styleganv``.

FVD-I, ``reference: disco`` (DisCo ``FVD-3DInception``, Wangt-CN/DisCo@c4fa48a):
    network  piergiaj pytorch-i3d ``InceptionI3d(400)`` (:class:`InceptionI3d`), ``i3d_pretrained_400.pt``
             (``weights.i3d_inception``), logits averaged over time;
    input    every frame resized to 224x224 with PIL bicubic on float32 channels (``make_resizer("PIL",
             False, "bicubic")``), x / 127.5 - 1, the whole video as one clip;
    set      one 400-d vector per video, covariance ``np.cov`` (``fid_from_feats``).

FVD-I, ``reference: styleganv`` (universome/stylegan-v@3fecd69 ``compute_fvd``):
    network  ``i3d_torchscript.pt`` (``weights.i3d``), called as ``detector(x, rescale=True, resize=True,
             return_features=True)`` on uint8 ``[B, 3, T, H, W]``: 0..255 -> [-1, 1], bilinear 224 inside;
    clips    16 consecutive frames per video; stylegan-v starts real clips at a random frame and
             generated ones at frame 0; here both start at frame 0 (a recorded deviation), videos
             shorter than 16 frames are skipped;
    set      400-d features, covariance divided by N (``FeatureStats.get_mean_cov``).

FVD-R (DisCo ``FVD-3DRN50``):
    network  Hara et al. 3D-ResNets ResNet-50 (Bottleneck [3, 4, 6, 3], shortcut B, Kinetics),
             ``resnet-50-kinetics.pth`` = ``{'state_dict': {'module.conv1.weight', ...}}``, no last fc.
    input    frames resized to 112x112 with PIL bicubic on float32 channels (as DisCo, no rounding
             to uint8), RGB on the 0..255 scale minus the mean (114.7748, 107.7354, 99.4750), no std.
    clips    the whole video cut into 16-frame segments, the last one padded with its last frame;
             the 2048-d average-pool features are averaged over segments: one vector per video;
    set      covariance ``np.cov``.

Stand-ins (no weight file and ``standin: true``): the same networks at reduced width with a fixed-seed
random init (``standin:inception-i3d-w0.125:seed0``, ``standin:resnet3d50-w8:seed0``) and, for the
StyleGAN-V call signature, a small 3D CNN (``standin:i3d-small3d:seed0``). Their numbers are not
comparable with any paper.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

from core.weights import fixed_seed_init, load_torch, resolve
from metrics.base import SET, VideoSkipped, standin_label, video_frames
from metrics.inception_i3d import InceptionI3d, load_inception_i3d

CLIP_LEN = 16
RESNET3D_MEAN = (114.7748, 107.7354, 99.4750)


def pil_bicubic_float(frames: np.ndarray, size: int) -> np.ndarray:
    """DisCo's ``make_resizer("PIL", False, "bicubic", (size, size))``: each channel as a float32 PIL
    image (mode ``F``), bicubic, kept as float (no rounding, no clipping). ``[T, H, W, 3] -> [T, size, size, 3]``."""
    out = np.empty((len(frames), size, size, 3), np.float32)
    for t, frame in enumerate(frames):
        for c in range(3):
            img = Image.fromarray(np.ascontiguousarray(frame[:, :, c], dtype=np.float32), mode="F")
            out[t, :, :, c] = np.asarray(img.resize((size, size), resample=Image.BICUBIC))
    return out


# ---------------------------------------------------------------- FVD-I (DisCo): input of metrics.inception_i3d.InceptionI3d

def disco_i3d_input(frames: np.ndarray, size: int = 224) -> torch.Tensor:
    """DisCo ``DatasetFVDVideoResize`` for ``FVD-3DInception``: PIL bicubic 224 on floats, x / 127.5 - 1,
    the whole video as one clip ``[1, 3, T, 224, 224]``."""
    x = pil_bicubic_float(frames, size) / 127.5 - 1.0
    return torch.from_numpy(np.ascontiguousarray(x.transpose(3, 0, 1, 2)))[None]


# ---------------------------------------------------------------- FVD-I (StyleGAN-V): I3D (TorchScript)

class SmallI3DStandin(nn.Module):
    """Fixed-seed stand-in with the I3D TorchScript call signature; ``[B,3,T,H,W] uint8 -> [B,400]``."""

    def __init__(self, dim: int = 400, width: int = 16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv3d(3, width, (3, 7, 7), stride=(1, 4, 4), padding=(1, 3, 3)), nn.ReLU(),
            nn.Conv3d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(2 * width, dim))

    def forward(self, x: torch.Tensor, rescale: bool = True, resize: bool = True,
                return_features: bool = True) -> torch.Tensor:
        x = x.float()
        if rescale:
            x = x / 127.5 - 1.0
        if resize:
            b, c, t, h, w = x.shape
            x = nn.functional.interpolate(x.transpose(1, 2).reshape(b * t, c, h, w), size=(112, 112),
                                          mode="bilinear", align_corners=False).reshape(b, t, c, 112, 112).transpose(1, 2)
        return self.net(x)


def load_i3d(path: str) -> torch.jit.ScriptModule:
    """Load the StyleGAN-V ``i3d_torchscript.pt`` (TorchScript) onto the CPU."""
    try:
        return torch.jit.load(path, map_location="cpu").eval()
    except Exception as e:  # torch raises several types for a non-TorchScript file
        raise RuntimeError(f"{path}: not a TorchScript I3D file (weights.i3d, i3d_torchscript.pt): {e}") from e


def video_clips(frames: np.ndarray, clip_len: int = CLIP_LEN, clips_per_video: int = 1) -> np.ndarray:
    """``clips_per_video`` evenly spaced clips of ``clip_len`` consecutive frames: ``[K, clip_len, H, W, 3]``."""
    if len(frames) < clip_len:
        raise VideoSkipped(f"{len(frames)} frames, FVD needs at least {clip_len}")
    starts = np.linspace(0, len(frames) - clip_len, clips_per_video).round().astype(int)
    return np.stack([frames[s:s + clip_len] for s in starts])


class FVDIScorer:
    """Set metric ``FVD-I``: ``features(video) -> [1, 400]`` (DisCo, whole video) or
    ``[clips_per_video, 400]`` (StyleGAN-V, 16-frame clips). Option ``reference``: ``disco`` | ``styleganv``."""

    name = "FVD-I"
    metric_names = ("FVD-I",)
    needs_gt = True
    kind = SET
    #: weights key per reference (the registry checks the one the options select)
    WEIGHT_KEYS = {"disco": "i3d_inception", "styleganv": "i3d"}

    def __init__(self, weights_cfg: dict | None = None, device: str = "cpu", standin: bool = True,
                 reference: str = "disco", clip_len: int = CLIP_LEN, clips_per_video: int = 1,
                 standin_width: float = 0.125):
        if reference not in self.WEIGHT_KEYS:
            raise ValueError(f"metrics.FVD-I.reference must be one of {list(self.WEIGHT_KEYS)}, got {reference!r}")
        self.reference, self.weight_key = reference, self.WEIGHT_KEYS[reference]
        path = resolve(self.weight_key, weights_cfg, standin=standin)
        with fixed_seed_init(0):  # a stand-in's fixed seed must not reset the caller's random stream
            if reference == "disco":
                self.model, self.backbone = ((InceptionI3d(400, standin_width).eval(),
                                              standin_label(f"inception-i3d-w{standin_width:g}"))
                                             if path is None else (load_inception_i3d(path), path))
            else:
                self.model, self.backbone = ((SmallI3DStandin().eval(), standin_label("i3d-small3d"))
                                             if path is None else (load_i3d(path), path))
        self.model.to(device)
        self.device, self.clip_len, self.clips_per_video = device, clip_len, clips_per_video
        if reference == "disco":
            self.ddof, self.deviations = 1, ()
            self.protocol = ("DisCo FVD-3DInception (Wangt-CN/DisCo@c4fa48a tool/metrics/metric_center.py): "
                             "pytorch-i3d InceptionI3d(400) logits averaged over time, whole video as one clip, "
                             "PIL bicubic 224 on floats, x/127.5-1, np.cov; chosen as Loopy's FVD-Inc because "
                             "FVD-Res/FVD-Inc pair up as DisCo's FVD-3DRN50/FVD-3DInception (StyleGAN-V has no "
                             "3D-ResNet FVD)")
        else:
            self.ddof = 0
            self.deviations = ("clip start: frame 0 for real videos too (stylegan-v: random start for real clips)",) \
                + ((f"{clips_per_video} clips per video (stylegan-v: 1)",) if clips_per_video != 1 else ()) \
                + ((f"{clip_len}-frame clips (fvd2048_16f: 16)",) if clip_len != CLIP_LEN else ())
            self.protocol = (f"StyleGAN-V compute_fvd (universome/stylegan-v@3fecd69, fvd2048_16f): i3d_torchscript "
                             f"(rescale=True, resize=True, return_features=True) on uint8 BCTHW, {clips_per_video} "
                             f"clip(s) x {clip_len} frames from frame 0, 400-d, covariance / N (get_mean_cov)")

    @torch.no_grad()
    def features(self, video) -> np.ndarray:
        frames = video_frames(video)
        if self.reference == "disco":
            x = disco_i3d_input(frames).to(self.device)
            return self.model(x).cpu().numpy().astype(np.float64)
        clips = video_clips(frames, self.clip_len, self.clips_per_video)
        x = torch.from_numpy(clips).permute(0, 4, 1, 2, 3).contiguous().to(self.device)  # [K,3,T,H,W] uint8
        return self.model(x, rescale=True, resize=True, return_features=True).cpu().numpy().astype(np.float64)


# ---------------------------------------------------------------- FVD-R: Hara 3D-ResNet-50

class Bottleneck3d(nn.Module):
    """3D bottleneck (1x1x1 -> 3x3x3 -> 1x1x1, expansion 4); key names of Hara's ``resnet.py``."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv3d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet3D50(nn.Module):
    """Hara et al. 3D ResNet-50 (shortcut B) without the last fc: ``[B,3,16,112,112] -> [B, 32*width]``.

    ``width=64`` is the Kinetics model (2048-d features); smaller widths build stand-ins.
    """

    def __init__(self, width: int = 64, layers=(3, 4, 6, 3)):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv3d(3, width, 7, stride=(1, 2, 2), padding=3, bias=False)
        self.bn1 = nn.BatchNorm3d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(3, stride=2, padding=1)
        self.layer1 = self._layer(width, layers[0], 1)
        self.layer2 = self._layer(width * 2, layers[1], 2)
        self.layer3 = self._layer(width * 4, layers[2], 2)
        self.layer4 = self._layer(width * 8, layers[3], 2)
        self.out_dim = width * 8 * Bottleneck3d.expansion

    def _layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        down = None
        if stride != 1 or self.inplanes != planes * 4:  # shortcut B: projection where shapes change
            down = nn.Sequential(nn.Conv3d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                                 nn.BatchNorm3d(planes * 4))
        mods = [Bottleneck3d(self.inplanes, planes, stride, down)]
        self.inplanes = planes * 4
        mods += [Bottleneck3d(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3, 4))  # the avgpool over (T/16, 4, 4) of a 16x112x112 segment


def load_resnet3d50(path: str) -> ResNet3D50:
    """Load ``resnet-50-kinetics.pth`` (``{'state_dict': {'module.*'}}``); the fc head is dropped."""
    ckpt = load_torch(path, "resnet3d50", weights_only=False)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise RuntimeError(f"{path}: expected a dict with key 'state_dict' (weights.resnet3d50, resnet-50-kinetics.pth)")
    state = {k.removeprefix("module."): v for k, v in ckpt["state_dict"].items() if not k.startswith("module.fc.")}
    model = ResNet3D50()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise RuntimeError(f"{path}: state dict does not match the 3D ResNet-50 (weights.resnet3d50): {e}") from e
    return model.eval()


def resnet3d_segments(frames: np.ndarray, size: int = 112, seg_len: int = CLIP_LEN) -> np.ndarray:
    """DisCo preprocessing: PIL bicubic on floats to ``size``, subtract the mean, pad to whole 16-frame segments.

    Returns float32 ``[S, 3, seg_len, size, size]``.
    """
    x = pil_bicubic_float(frames, size)
    x -= np.asarray(RESNET3D_MEAN, np.float32)
    pad = (-len(x)) % seg_len
    if pad:
        x = np.concatenate([x, np.repeat(x[-1:], pad, 0)])
    return x.reshape(-1, seg_len, size, size, 3).transpose(0, 4, 1, 2, 3).copy()


class FVDRScorer:
    """Set metric ``FVD-R``: ``features(video) -> [1, 2048]`` (segment-averaged)."""

    name = "FVD-R"
    metric_names = ("FVD-R",)
    needs_gt = True
    kind = SET
    weight_key = "resnet3d50"

    def __init__(self, weights_cfg: dict | None = None, device: str = "cpu", standin: bool = True,
                 size: int = 112, batch_size: int = 4, standin_width: int = 8):
        path = resolve(self.weight_key, weights_cfg, standin=standin)
        if path is None:
            with fixed_seed_init(0):
                self.model = ResNet3D50(width=standin_width).eval()
            self.backbone = standin_label(f"resnet3d50-w{standin_width}")
        else:
            self.model, self.backbone = load_resnet3d50(path), path
        self.model.to(device)
        self.device, self.size, self.batch_size = device, size, batch_size
        self.ddof = 1
        self.deviations = () if size == 112 else (f"{size} px input (DisCo FVD-3DRN50: 112)",)
        self.protocol = ("DisCo FVD-3DRN50 (Wangt-CN/DisCo@c4fa48a): Hara 3D ResNet-50 avgpool 2048-d, PIL bicubic "
                         f"{size} px on floats, minus (114.7748, 107.7354, 99.4750), 16-frame segments (last padded "
                         "with its last frame) averaged per video, np.cov")

    @torch.no_grad()
    def features(self, video) -> np.ndarray:
        segs = torch.from_numpy(resnet3d_segments(video_frames(video), self.size))
        out = [self.model(segs[i:i + self.batch_size].to(self.device)) for i in range(0, len(segs), self.batch_size)]
        return torch.cat(out).mean(0, keepdim=True).cpu().numpy().astype(np.float64)


__all__ = ["FVDIScorer", "FVDRScorer", "InceptionI3d", "ResNet3D50", "SmallI3DStandin", "disco_i3d_input",
           "load_i3d", "load_inception_i3d", "load_resnet3d50", "pil_bicubic_float", "resnet3d_segments",
           "video_clips"]
