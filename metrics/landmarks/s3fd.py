"""S3FD face detector (Zhang et al. 2017) as syncnet_python runs it (``detectors/s3fd``), for the Sync face tracks.

The network and the official weights ``sfd_face.pth`` (``weights.s3fd``; a plain state dict) follow the
module names of joonson/syncnet_python@6efbb1c ``detectors/s3fd/nets.py``: a VGG-16 trunk ``vgg.{i}`` up to
a dilated fc6 / 1x1 fc7, L2-normalised conv3_3 / conv4_3 / conv5_3 sources (``L2Norm3_3`` ... with learned
scales), two ``extras`` stages, and per source a 3x3 ``loc`` (4) and ``conf`` head (2; 4 on conv3_3, whose
first three background scores are max-pooled, "max-out background").

Detection (``detectors/s3fd/__init__.py detect_faces`` and ``box_utils``):

* the RGB frame is resized by ``scale`` (0.25 in run_pipeline, bilinear), minus the means (123, 117, 104);
* anchors: one square prior per cell, sizes 16..512 px for strides 4..128, centres at (j + 0.5) * stride;
* boxes decoded with variances (0.1, 0.2); face scores = softmax class 1; scores > 0.05 go to a per-image
  NMS (IoU 0.3, the 5000 best in, at most 750 out);
* boxes scored above ``conf_th`` (0.9 in run_pipeline) are scaled to the frame and merged by NMS at IoU 0.1.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import nms

from core.weights import load_torch, wrong_file
from metrics.landmarks import VideoSkipped

MEANS_RGB = (123.0, 117.0, 104.0)
MIN_SIZES = (16, 32, 64, 128, 256, 512)
STEPS = (4, 8, 16, 32, 64, 128)
VARIANCES = (0.1, 0.2)
MIN_INPUT = 32  # smallest side the five stride-2 poolings of the trunk leave at least one cell of

# VGG-16 trunk of S3FD: conv widths, "M" = 2x2 max-pool ("C" = ceil mode), indices as in nets.py.
_VGG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "C", 512, 512, 512, "M", 512, 512, 512, "M")
_SOURCE_ENDS = (16, 23, 30)  # vgg indices after conv3_3, conv4_3, conv5_3 (+ ReLU)


class L2Norm(nn.Module):
    """Channel-wise L2 normalisation with a learned per-channel scale (``weight``)."""

    def __init__(self, channels: int, scale: float):
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight[None, :, None, None] * x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)


def _vgg() -> nn.ModuleList:
    layers, cin = [], 3
    for v in _VGG:
        if v in ("M", "C"):
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=v == "C"))
        else:
            layers += [nn.Conv2d(cin, v, 3, 1, padding=1), nn.ReLU(inplace=True)]
            cin = v
    layers += [nn.Conv2d(512, 1024, 3, 1, padding=6, dilation=6), nn.ReLU(inplace=True),
               nn.Conv2d(1024, 1024, 1, 1), nn.ReLU(inplace=True)]
    return nn.ModuleList(layers)


class S3FDNet(nn.Module):
    """``[B, 3, H, W]`` (RGB minus means) -> ``(loc [B, P, 4], scores [B, P, 2], priors [P, 4])``."""

    def __init__(self):
        super().__init__()
        self.vgg = _vgg()
        self.L2Norm3_3, self.L2Norm4_3, self.L2Norm5_3 = L2Norm(256, 10), L2Norm(512, 8), L2Norm(512, 5)
        self.extras = nn.ModuleList([nn.Conv2d(1024, 256, 1, 1), nn.Conv2d(256, 512, 3, 2, padding=1),
                                     nn.Conv2d(512, 128, 1, 1), nn.Conv2d(128, 256, 3, 2, padding=1)])
        src = (256, 512, 512, 1024, 512, 256)
        self.loc = nn.ModuleList([nn.Conv2d(c, 4, 3, 1, padding=1) for c in src])
        self.conf = nn.ModuleList([nn.Conv2d(c, 4 if i == 0 else 2, 3, 1, padding=1) for i, c in enumerate(src)])

    def forward(self, x: torch.Tensor):
        size = x.shape[2:]
        sources, start = [], 0
        for end, norm in zip(_SOURCE_ENDS, (self.L2Norm3_3, self.L2Norm4_3, self.L2Norm5_3)):
            for k in range(start, end):
                x = self.vgg[k](x)
            sources.append(norm(x))
            start = end
        for k in range(start, len(self.vgg)):
            x = self.vgg[k](x)
        sources.append(x)
        for k, layer in enumerate(self.extras):
            x = F.relu(layer(x), inplace=True)
            if k % 2 == 1:
                sources.append(x)
        locs, confs, maps = [], [], []
        for i, s in enumerate(sources):
            c = self.conf[i](s)
            if i == 0:  # max-out background over the first three scores
                c = torch.cat([c[:, :3].max(1, keepdim=True)[0], c[:, 3:]], 1)
            locs.append(self.loc[i](s).permute(0, 2, 3, 1).reshape(len(s), -1, 4))
            confs.append(c.permute(0, 2, 3, 1).reshape(len(s), -1, 2))
            maps.append(s.shape[2:])
        return torch.cat(locs, 1), torch.cat(confs, 1).softmax(-1), priors(size, maps).to(x)


def priors(image_size, feature_maps) -> torch.Tensor:
    """Prior boxes ``[P, 4]`` (cx, cy, w, h), relative to the image, row-major per feature map."""
    h, w = int(image_size[0]), int(image_size[1])
    out = []
    for (fh, fw), step, size in zip(feature_maps, STEPS, MIN_SIZES):
        i, j = np.meshgrid(np.arange(int(fh)), np.arange(int(fw)), indexing="ij")
        cx, cy = (j.ravel() + 0.5) * step / w, (i.ravel() + 0.5) * step / h
        out.append(np.stack([cx, cy, np.full_like(cx, size / w), np.full_like(cy, size / h)], 1))
    return torch.from_numpy(np.concatenate(out)).float()


def decode(loc: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """Offsets ``[P, 4]`` against priors -> boxes ``[P, 4]`` (x0, y0, x1, y1) relative to the image."""
    centre = prior[:, :2] + loc[:, :2] * VARIANCES[0] * prior[:, 2:]
    size = prior[:, 2:] * torch.exp(loc[:, 2:] * VARIANCES[1])
    return torch.cat([centre - size / 2, centre + size / 2], 1)


def load_s3fd(path: str) -> S3FDNet:
    """Load ``sfd_face.pth`` (a plain state dict of syncnet_python's S3FDNet) strictly."""
    state = load_torch(path, "s3fd")
    if not isinstance(state, dict):
        raise wrong_file("s3fd", path, f"expected a state dict of S3FDNet, got {type(state).__name__}")
    net = S3FDNet()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise wrong_file("s3fd", path, f"not an S3FD state dict ({str(e).strip().splitlines()[0][:200]})") from e
    return net.eval()


class S3FD:
    """``detect(frame RGB uint8 [H, W, 3]) -> [K, 5]`` boxes (x0, y0, x1, y1 in pixels, score)."""

    def __init__(self, net: S3FDNet, device: str = "cpu", scale: float = 0.25, conf_th: float = 0.9,
                 conf_min: float = 0.05, nms_iou: float = 0.3, nms_in: int = 5000, keep: int = 750):
        self.net, self.device = net.to(device).eval(), device
        self.scale, self.conf_th, self.conf_min, self.nms_iou, self.nms_in, self.keep = (
            scale, conf_th, conf_min, nms_iou, nms_in, keep)

    @torch.no_grad()
    def detect(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        if min(h, w) * self.scale < MIN_INPUT:
            raise VideoSkipped(f"frames of {w}x{h} px are {w * self.scale:.0f}x{h * self.scale:.0f} at S3FD's "
                               f"facedet_scale {self.scale}; its VGG trunk needs at least {MIN_INPUT} px: raise "
                               f"metrics.Sync.facedet_scale for small videos")
        img = cv2.resize(frame, dsize=(0, 0), fx=self.scale, fy=self.scale, interpolation=cv2.INTER_LINEAR)
        x = torch.from_numpy(img.astype(np.float32) - np.asarray(MEANS_RGB, np.float32)).permute(2, 0, 1)[None]
        loc, scores, prior = self.net(x.to(self.device))
        boxes, face = decode(loc[0].float().cpu(), prior.cpu()), scores[0, :, 1].float().cpu()
        mask = face > self.conf_min
        boxes, face = boxes[mask], face[mask]
        top = torch.argsort(face, descending=True)[:self.nms_in]
        boxes, face = boxes[top], face[top]
        kept = nms(boxes, face, self.nms_iou)[:self.keep]
        sure = kept[face[kept] > self.conf_th]
        dets = torch.cat([boxes[sure] * torch.tensor([w, h, w, h], dtype=torch.float32), face[sure, None]], 1)
        if len(dets) == 0:
            return np.empty((0, 5))
        final = nms(dets[:, :4].double(), dets[:, 4].double(), 0.1)
        return dets[final].double().numpy()


__all__ = ["L2Norm", "S3FD", "S3FDNet", "decode", "load_s3fd", "priors"]
