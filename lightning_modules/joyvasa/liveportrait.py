"""LivePortrait's motion extractor (Guo et al., 2024), the frozen motion encoder E_mnt of JoyVASA
§3.3.1, with a loader for the public weight file from a local path.

Official layout (``KwaiVGI/LivePortrait`` release, ``pretrained_weights/liveportrait/``)::

    base_models/motion_extractor.pth              <- loaded here (ConvNeXtV2-tiny + 7 heads)
    base_models/appearance_feature_extractor.pth  (E_app)
    base_models/warping_module.pth                (warping network)
    base_models/spade_generator.pth               (generator)
    retargeting_models/stitching_retargeting_module.pth

``motion_extractor.pth`` is a plain ``torch.save``-d state dict whose keys start with ``detector.``
(``detector.downsample_layers.*``, ``detector.stages.*``, ``detector.norm.*``, ``detector.fc_kp``,
``fc_scale``, ``fc_pitch``, ``fc_yaw``, ``fc_roll``, ``fc_t``, ``fc_exp``); 21 keypoints, 66 pose bins,
input 256 x 256 RGB in [0, 1]. Only this file is loaded: the appearance, warping and SPADE networks
are not reimplemented, so rendering uses the trainable renderer (renderer.py) on these motions.
"""

from __future__ import annotations

import logging
import os

import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.joyvasa.face_representation import MotionLayout, headpose_bins_to_degrees

log = logging.getLogger(__name__)

MOTION_EXTRACTOR_FILE = os.path.join("base_models", "motion_extractor.pth")
LIVEPORTRAIT_KEY = "model.liveportrait.path (joyvasa)"  # its row in core.weights.MODEL_WEIGHTS


class ChannelsFirstLayerNorm(nn.LayerNorm):
    """LayerNorm over the channel axis of (B, C, H, W) (ConvNeXt's channels_first LayerNorm)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class GRN(nn.Module):
    """Global response normalisation (ConvNeXt V2), channels-last (B, H, W, C)."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class ConvNeXtV2Block(nn.Module):
    """Depthwise 7x7 conv -> LN -> MLP x4 with GRN, residual; (B, C, H, W) -> same."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(x).permute(0, 2, 3, 1)
        h = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(h)))))
        return x + h.permute(0, 3, 1, 2)


class ConvNeXtV2Detector(nn.Module):
    """ConvNeXtV2 backbone + LivePortrait heads: image -> {kp, pitch, yaw, roll, t, exp, scale} raw outputs."""

    def __init__(self, num_kp: int = 21, num_bins: int = 66, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768)):
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), ChannelsFirstLayerNorm(dims[0], eps=1e-6))]
            + [nn.Sequential(ChannelsFirstLayerNorm(dims[i], eps=1e-6), nn.Conv2d(dims[i], dims[i + 1], 2, 2))
               for i in range(3)])
        self.stages = nn.ModuleList([nn.Sequential(*[ConvNeXtV2Block(dims[i]) for _ in range(depths[i])])
                                     for i in range(4)])
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        d = dims[-1]
        self.fc_kp, self.fc_exp = nn.Linear(d, 3 * num_kp), nn.Linear(d, 3 * num_kp)
        self.fc_scale, self.fc_t = nn.Linear(d, 1), nn.Linear(d, 3)
        self.fc_pitch, self.fc_yaw, self.fc_roll = (nn.Linear(d, num_bins) for _ in range(3))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        h = self.norm(x.mean((-2, -1)))
        return {k: getattr(self, f"fc_{k}")(h) for k in ("kp", "exp", "scale", "t", "pitch", "yaw", "roll")}


class LivePortraitMotionExtractor(nn.Module):
    """E_mnt with the interface of renderer.MotionEncoder: image (B, 3, H, W) in [-1, 1] ->
    (x_c (B, K, 3), motion (B, 3K + 7)) in JoyVASA's layout, angles in degrees.

    LivePortrait drops the z translation when it transforms keypoints; it is zeroed here so Eq. 1
    gives LivePortrait's keypoints.

    Args:
        num_kp: keypoints (21). image_size: network input (256). depths, dims: ConvNeXtV2-tiny.
    """

    def __init__(self, num_kp: int = 21, image_size: int = 256, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768)):
        super().__init__()
        self.layout, self.image_size = MotionLayout(num_kp), image_size
        self.detector = ConvNeXtV2Detector(num_kp, 66, depths, dims)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (image.clamp(-1, 1) + 1) / 2  # LivePortrait takes RGB in [0, 1]
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        out = self.detector(x)
        k = self.layout.num_kp
        angles = torch.stack([headpose_bins_to_degrees(out[a]) for a in ("pitch", "yaw", "roll")], -1)
        t = out["t"] * torch.tensor([1.0, 1.0, 0.0], device=x.device, dtype=x.dtype)
        motion = self.layout.pack(out["exp"].view(-1, k, 3), out["scale"], t, angles)
        return out["kp"].view(-1, k, 3), motion


def load_liveportrait_motion_extractor(path: str, num_kp: int = 21, **kwargs) -> LivePortraitMotionExtractor:
    """Build E_mnt from ``<path>/base_models/motion_extractor.pth`` (or the file itself), frozen.

    :raises FileNotFoundError: naming the expected file and the config key when it is missing.
    :raises ValueError: (``core.weights.WeightsFormatError``) when the file's keys or shapes are not
        LivePortrait's, or it is not a torch file at all."""
    file = path if os.path.isfile(path) else os.path.join(path, MOTION_EXTRACTOR_FILE)
    if not os.path.isfile(file):
        raise FileNotFoundError(f"no LivePortrait motion extractor at {file!r}: model.liveportrait.path must be the "
                                f"LivePortrait weights folder (with {MOTION_EXTRACTOR_FILE}) or that .pth file; "
                                f"set it null to train the small motion encoder instead")
    from core.weights import load_torch, wrong_file  # the one table of pretrained files names this one too

    state = load_torch(file, LIVEPORTRAIT_KEY)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    model = LivePortraitMotionExtractor(num_kp, **kwargs)
    hint = f"(check model.liveportrait.path / model.motion.num_kp = {num_kp})"
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except (RuntimeError, TypeError, AttributeError) as e:  # shapes differ, or not a state dict
        raise wrong_file(LIVEPORTRAIT_KEY, file, f"not a LivePortrait motion_extractor.pth of this shape {hint}: "
                                                 f"{str(e).strip()[:300]}") from e
    if missing or unexpected:
        raise wrong_file(LIVEPORTRAIT_KEY, file, f"not a LivePortrait motion_extractor.pth: missing keys "
                                                 f"{missing[:5]}, unexpected keys {unexpected[:5]} {hint}")
    log.info("loaded the LivePortrait motion extractor from %s", file)
    return model.requires_grad_(False).eval()
