"""Decoupled facial representation in the LivePortrait form (JoyVASA §3.2, Eq. 1).

Per frame the motion is a rotation R (pitch, yaw, roll), a translation t, a scale s and the
expression deltas delta of K canonical 3D keypoints x_c. Eq. 1 deforms the canonical keypoints:

    x = T(x_c, s, R, t, delta) = s * (x_c R + delta) + t

A motion sequence X_i = [R_i, t_i, delta_i, s_i] (§3.3.1) is stored flat per frame as
``[delta (3K), s (1), t (3), pitch, yaw, roll (3)]`` -- 70 numbers for LivePortrait's K = 21.
Angles are in degrees, as LivePortrait's motion extractor reports them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MotionLayout:
    """Where each part of a flat per-frame motion vector sits.

    Args:
        num_kp: K canonical keypoints (LivePortrait: 21).
    """

    num_kp: int = 21

    def __post_init__(self):
        if self.num_kp < 1:
            raise ValueError(f"model.motion.num_kp must be >= 1, got {self.num_kp}")

    @property
    def dim(self) -> int:
        return 3 * self.num_kp + 7

    @property
    def exp(self) -> slice:  # expression deltas delta, 3K
        return slice(0, 3 * self.num_kp)

    @property
    def scale(self) -> slice:
        return slice(3 * self.num_kp, 3 * self.num_kp + 1)

    @property
    def translation(self) -> slice:
        return slice(3 * self.num_kp + 1, 3 * self.num_kp + 4)

    @property
    def angles(self) -> slice:  # pitch, yaw, roll in degrees
        return slice(3 * self.num_kp + 4, 3 * self.num_kp + 7)

    def split(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(..., dim) -> {exp (..., K, 3), scale (..., 1), t (..., 3), angles (..., 3)}."""
        if x.shape[-1] != self.dim:
            raise ValueError(f"motion vectors have {x.shape[-1]} numbers, the layout of {self.num_kp} keypoints "
                             f"needs {self.dim} (check model.motion.num_kp)")
        return {"exp": x[..., self.exp].unflatten(-1, (self.num_kp, 3)), "scale": x[..., self.scale],
                "t": x[..., self.translation], "angles": x[..., self.angles]}

    def pack(self, exp: torch.Tensor, scale: torch.Tensor, t: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`split`: exp (..., K, 3), scale (..., 1), t (..., 3), angles (..., 3) -> (..., dim)."""
        return torch.cat([exp.flatten(-2), scale, t, angles], -1)


def rotation_matrix(pitch: torch.Tensor, yaw: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Euler angles in degrees (...,) -> R (..., 3, 3) acting on ROW vectors (``x R``), as in Eq. 1.

    LivePortrait composes R_z(roll) R_y(yaw) R_x(pitch) for column vectors; Eq. 1 multiplies row
    vectors from the left, so the returned matrix is that product transposed."""
    p, y, r = (torch.deg2rad(a) for a in (pitch, yaw, roll))
    one, zero = torch.ones_like(p), torch.zeros_like(p)

    def mat(rows):
        return torch.stack([torch.stack(row, -1) for row in rows], -2)

    rx = mat([[one, zero, zero], [zero, p.cos(), -p.sin()], [zero, p.sin(), p.cos()]])
    ry = mat([[y.cos(), zero, y.sin()], [zero, one, zero], [-y.sin(), zero, y.cos()]])
    rz = mat([[r.cos(), -r.sin(), zero], [r.sin(), r.cos(), zero], [zero, zero, one]])
    return (rz @ ry @ rx).transpose(-1, -2)


# Keypoint transformation (JoyVASA §3.2, Eq. 1): x = s * (x_c R + delta) + t
def transform_keypoints(x_c: torch.Tensor, scale: torch.Tensor, rotation: torch.Tensor, t: torch.Tensor,
                        delta: torch.Tensor) -> torch.Tensor:
    """:param x_c: canonical keypoints (..., K, 3). :param scale: (..., 1). :param rotation: (..., 3, 3)
    for row vectors. :param t: (..., 3). :param delta: expression deltas (..., K, 3).
    :returns: deformed keypoints (..., K, 3)."""
    return scale[..., None] * (x_c @ rotation + delta) + t[..., None, :]


def keypoints_from_motion(x_c: torch.Tensor, motion: torch.Tensor, layout: MotionLayout) -> torch.Tensor:
    """Eq. 1 for flat motion vectors: x_c (B, K, 3), motion (B, ..., dim) -> keypoints (B, ..., K, 3)."""
    m = layout.split(motion)
    rot = rotation_matrix(*m["angles"].unbind(-1))
    while x_c.dim() < m["exp"].dim():  # broadcast the canonical keypoints over the frame axes
        x_c = x_c.unsqueeze(1)
    return transform_keypoints(x_c, m["scale"], rot, m["t"], m["exp"])


def headpose_bins_to_degrees(logits: torch.Tensor) -> torch.Tensor:
    """LivePortrait's 66-bin head-pose head -> degrees: softmax expectation over bins of 3 degrees
    centred at ``3 * i - 97.5`` (i = 0..65), i.e. [-97.5, 97.5]. (..., 66) -> (...)."""
    bins = torch.arange(logits.shape[-1], device=logits.device, dtype=logits.dtype)
    return (logits.softmax(-1) * bins).sum(-1) * 3.0 - 97.5
