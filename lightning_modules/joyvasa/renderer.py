"""A small trainable face renderer in the LivePortrait form (JoyVASA §3.2, §3.4; Fig. 1), for
``scale=tiny``: an appearance encoder E_app (image -> 3D feature volume f_face), a motion encoder
E_mnt (image -> canonical keypoints x_c and the motion [delta, s, t, pitch/yaw/roll]) and a warping
generator (f_face warped from source keypoints x_s to driving keypoints x_d, then decoded).

The three parts share the interface of LivePortrait's appearance feature extractor, motion extractor
and warping module + SPADE generator, so the pipeline is the same at every scale; this one trains on
CPU in a minute by self-reenactment (source = reference frame, driving = a frame of the same video).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.joyvasa.face_representation import MotionLayout, keypoints_from_motion


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1), nn.GroupNorm(1, cout), nn.SiLU())


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1),
                         nn.GroupNorm(1, cout), nn.SiLU())


class AppearanceEncoder(nn.Module):
    """E_app: image (B, 3, H, W) in [-1, 1] -> f_face (B, C, D, H/4, W/4), a 3D feature volume."""

    def __init__(self, channels: int = 8, depth: int = 4, width: int = 32):
        super().__init__()
        self.channels, self.depth = channels, depth
        self.net = nn.Sequential(_down(3, width), _down(width, width), nn.Conv2d(width, channels * depth, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h = self.net(image)
        return h.unflatten(1, (self.channels, self.depth))


class MotionEncoder(nn.Module):
    """E_mnt: image (B, 3, H, W) -> canonical keypoints x_c (B, K, 3) and motion (B, 3K + 7).

    Output ranges follow LivePortrait's: keypoints in [-1, 1], angles within +-max_angle degrees,
    scale near 1, small translations and expression deltas."""

    def __init__(self, layout: MotionLayout, width: int = 32, max_angle: float = 45.0):
        super().__init__()
        self.layout, self.max_angle = layout, max_angle
        k = layout.num_kp
        self.net = nn.Sequential(_down(3, width), _down(width, width), _down(width, width),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.kp = nn.Linear(width, 3 * k)
        self.head = nn.Linear(width, layout.dim)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net(image)
        x_c = torch.tanh(self.kp(h)).unflatten(-1, (self.layout.num_kp, 3))
        m = self.layout.split(self.head(h))
        motion = self.layout.pack(0.2 * torch.tanh(m["exp"]), 1.0 + 0.2 * torch.tanh(m["scale"]),
                                  0.3 * torch.tanh(m["t"]), self.max_angle * torch.tanh(m["angles"]))
        return x_c, motion


class WarpingGenerator(nn.Module):
    """Warp f_face by the keypoint motion x_s -> x_d and decode an image.

    Each point p of the driving volume samples the source volume at p + sum_k w_k(p) (x_s,k - x_d,k),
    with w = softmax over (K keypoints + background) of -|p - x_d,k|^2 / (2 sigma^2) -- the zero-order
    keypoint flow of FOMM/LivePortrait without their dense-motion refinement network."""

    def __init__(self, channels: int = 8, depth: int = 4, width: int = 32, sigma: float = 0.2):
        super().__init__()
        self.sigma = sigma
        self.decode = nn.Sequential(nn.Conv2d(channels * depth, width, 3, 1, 1), nn.SiLU(), _up(width, width),
                                    _up(width, width), nn.Conv2d(width, 3, 3, 1, 1))

    def flow(self, x_s: torch.Tensor, x_d: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
        """(B, K, 3) keypoints -> sampling grid (B, D, h, w, 3) in grid_sample's (x, y, z) order."""
        d, h, w = size
        axes = [torch.linspace(-1, 1, n, device=x_s.device, dtype=x_s.dtype) for n in (d, h, w)]
        zz, yy, xx = torch.meshgrid(*axes, indexing="ij")
        grid = torch.stack([xx, yy, zz], -1)                                          # (D, h, w, 3)
        dist = (grid[None, :, :, :, None] - x_d[:, None, None, None]).pow(2).sum(-1)  # (B, D, h, w, K)
        logits = torch.cat([-dist / (2 * self.sigma ** 2), torch.zeros_like(dist[..., :1])], -1)
        weights = logits.softmax(-1)[..., :-1]                                      # background weight dropped
        shift = (weights[..., None] * (x_s - x_d)[:, None, None, None]).sum(-2)
        return grid[None] + shift

    def forward(self, f_face: torch.Tensor, x_s: torch.Tensor, x_d: torch.Tensor) -> torch.Tensor:
        """f_face (B, C, D, h, w), x_s / x_d (B, K, 3) -> image (B, 3, 4h, 4w) in [-1, 1]."""
        grid = self.flow(x_s, x_d, f_face.shape[2:])
        warped = F.grid_sample(f_face, grid, mode="bilinear", padding_mode="border", align_corners=True)
        return torch.tanh(self.decode(warped.flatten(1, 2)))


class FaceRenderer(nn.Module):
    """E_app + E_mnt + warping generator behind the interface the JoyVASA pipeline uses.

    Args:
        layout: motion layout (K keypoints).
        channels, depth: feature volume C x D. width: conv width. sigma: keypoint flow width.
        max_angle: range of the head-pose angles in degrees.
        motion_encoder: a pretrained E_mnt with the same interface (e.g. LivePortrait's, liveportrait.py);
            None builds the small trainable one.
    """

    def __init__(self, layout: MotionLayout, channels: int = 8, depth: int = 4, width: int = 32,
                 sigma: float = 0.2, max_angle: float = 45.0, motion_encoder: nn.Module | None = None):
        super().__init__()
        self.layout = layout
        self.appearance = AppearanceEncoder(channels, depth, width)
        self.motion = motion_encoder if motion_encoder is not None else MotionEncoder(layout, width, max_angle)
        self.warp = WarpingGenerator(channels, depth, width, sigma)

    def encode_source(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Source image (B, 3, H, W) -> {f_face, x_c, motion, x_s} (§3.4)."""
        x_c, motion = self.motion(image)
        return {"f_face": self.appearance(image), "x_c": x_c, "motion": motion,
                "x_s": keypoints_from_motion(x_c, motion, self.layout)}

    def render(self, source: dict[str, torch.Tensor], motion_d: torch.Tensor) -> torch.Tensor:
        """Driving motion (B, dim) -> images (B, 3, H, W): x_d by Eq. 1 from the source's x_c."""
        x_d = keypoints_from_motion(source["x_c"], motion_d, self.layout)
        return self.warp(source["f_face"], source["x_s"], x_d)
