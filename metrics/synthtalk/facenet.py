"""The suite's face network for SynthTalk frames: 68 keypoints, face presence, mouth and blink.

Why: at SynthTalk's 32-64 px the official detectors (MediaPipe, DWPose) find no face, so the suite
trains its own on SynthTalk's training split against the generator's exact iBUG-68 keypoints
(Loopy appendix B.1 measures Glo/Exp on the same 68-point layout).

Architecture: a small fully convolutional encoder (three GroupNorm stages, 1, 1/2, 1/4 of the
input) and a decoder back to 1/2 that outputs one heatmap per keypoint; a point is the
expectation of its softmax-normalised heatmap (integral regression, Sun et al. 2018, "Integral
human pose regression", eq. 3), which keeps sub-pixel precision and follows the image when it
moves. The globally pooled deepest stage is the frame embedding (the FID feature of
:mod:`metrics.synthtalk.features`); three linear heads on it give the face-presence logit, the
mouth opening and the eyelid closure (the expression outputs, E-FID's analogue of the 3DMM
expression coefficients). GroupNorm, not BatchNorm: a clip of one identity must be scored the same
whatever else shares the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NUM_POINTS = 68

#: iBUG-68 index of each point's mirror image under a horizontal flip (jaw, brows, nose base,
#: eyes and lips swap sides; the nose ridge 27-30 maps onto itself).
IBUG_MIRROR = (
    tuple(range(16, -1, -1))  # jaw 0-16
    + tuple(range(26, 16, -1))  # brows 17-26
    + (27, 28, 29, 30)
    + (35, 34, 33, 32, 31)  # nose ridge, nose base
    + (45, 44, 43, 42, 47, 46)
    + (39, 38, 37, 36, 41, 40)  # eyes 36-41 <-> 42-47
    + (54, 53, 52, 51, 50, 49, 48)
    + (59, 58, 57, 56, 55)  # outer lips
    + (64, 63, 62, 61, 60)
    + (67, 66, 65)  # inner lips
)
assert sorted(IBUG_MIRROR) == list(range(NUM_POINTS))


def _block(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
        nn.GroupNorm(min(8, c_out // 4), c_out),
        nn.ReLU(),
    ]


class FaceNet(nn.Module):
    """Frames ``[B,3,S,S]`` in [-1, 1] -> keypoints, presence logit, mouth, blink, embedding.

    Args:
        image_size: SynthTalk frame side S; frames larger than 32 px get a stride-2 stem so that a
            step costs about what it costs at 32 px (48 px: 24 px inside, 64 px: 32 px inside).
        width: channels of the first stage (the second has 2x, the third 4x).
    """

    def __init__(self, image_size: int = 32, width: int = 16):
        super().__init__()
        self.image_size, self.width = int(image_size), int(width)
        w = self.width
        stem = 2 if self.image_size > 32 else 1
        self.enc1 = nn.Sequential(*_block(3, w, stem), *_block(w, w))
        self.enc2 = nn.Sequential(*_block(w, 2 * w, 2), *_block(2 * w, 2 * w))
        self.enc3 = nn.Sequential(*_block(2 * w, 4 * w, 2), *_block(4 * w, 4 * w))
        self.dec = nn.Sequential(*_block(6 * w, 2 * w), nn.Conv2d(2 * w, NUM_POINTS, 1))
        self.log_temperature = nn.Parameter(torch.zeros(()))  # sharpness of the heatmap softmax
        self.embed = nn.Sequential(nn.Linear(4 * w, 4 * w), nn.ReLU())
        self.heads = nn.Linear(4 * w, 3)  # presence logit, mouth opening, blink

    @property
    def embed_dim(self) -> int:
        return 4 * self.width

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f2 = self.enc2(self.enc1(x))
        f3 = self.enc3(f2)
        up = F.interpolate(f3, size=f2.shape[-2:], mode="bilinear", align_corners=False)
        heat = self.dec(torch.cat([up, f2], 1))
        emb = self.embed(f3.mean((2, 3)))
        heads = self.heads(emb)
        return {
            "points": soft_argmax(heat * self.log_temperature.exp()),
            "presence": heads[:, 0],
            "mouth": heads[:, 1],
            "blink": heads[:, 2],
            "embedding": emb,
        }


def soft_argmax(heat: torch.Tensor) -> torch.Tensor:
    """Heatmaps [B,K,H,W] -> expected positions [B,K,2] (x, y) in [0, 1] (pixel centres at (i+0.5)/n)."""
    B, K, H, W = heat.shape
    p = heat.flatten(2).softmax(-1).reshape(B, K, H, W)
    gx = (torch.arange(W, dtype=heat.dtype, device=heat.device) + 0.5) / W
    gy = (torch.arange(H, dtype=heat.dtype, device=heat.device) + 0.5) / H
    return torch.stack([(p.sum(2) * gx).sum(-1), (p.sum(3) * gy).sum(-1)], -1)


def to_input(frames_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 ``[B,S,S,3]`` RGB -> float ``[B,3,S,S]`` in [-1, 1]."""
    return frames_uint8.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


__all__ = ["IBUG_MIRROR", "NUM_POINTS", "FaceNet", "soft_argmax", "to_input"]
