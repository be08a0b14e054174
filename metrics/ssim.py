"""SSIM between generated and ground-truth frames, through torchmetrics (metric_protocols.md section 9).

Variant: the common_metrics_on_video_quality protocol (Wang et al. 2004 settings): RGB in [0, 1],
11x11 Gaussian window with sigma 1.5, C1 = 0.01^2, C2 = 0.03^2, population (co)variances, the
SSIM map averaged over the *valid* region (a 5-pixel border dropped), then over channels and
frames, then over videos. This equals scikit-image's
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1, channel_axis=-1)``. torchmetrics averages its reflect-padded full map, so the map is
taken with ``return_full_image=True`` and the border is cropped here.

DisCo's variant (grayscale uint8, 7x7 uniform window, sample covariance) gives different numbers
and is not implemented; numbers from the two must not share a column.
"""
from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from metrics.base import PER_VIDEO, VideoSkipped, video_frames

SIGMA = 1.5
PAD = int(3.5 * SIGMA + 0.5)  # 5: half-width of the 11x11 Gaussian window (skimage truncate=3.5)


def ssim_frames(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-frame SSIM of ``[N, 3, H, W]`` tensors in [0, 1] -> ``[N]`` (valid-region mean)."""
    if pred.shape != gt.shape:
        raise ValueError(f"SSIM needs equal shapes, got {tuple(pred.shape)} and {tuple(gt.shape)}")
    if min(pred.shape[-2:]) <= 2 * PAD:
        raise ValueError(f"frames of {tuple(pred.shape[-2:])} are too small for an 11x11 SSIM window")
    n, c, h, w = pred.shape
    # Channels folded into the batch: a single-channel float32 conv takes oneDNN's fast path on CPU
    # (a grouped float64 conv is ~10x slower); the per-channel maps are identical either way.
    _, full = structural_similarity_index_measure(pred.float().reshape(n * c, 1, h, w),
                                                  gt.float().reshape(n * c, 1, h, w), gaussian_kernel=True,
                                                  sigma=SIGMA, data_range=1.0, reduction="none",
                                                  return_full_image=True)
    return full[..., PAD:-PAD, PAD:-PAD].reshape(n, -1).double().mean(dim=1)


def _to_tensor(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).double() / 255.0


class SSIMScorer:
    """Per-video metric ``SSIM``: mean over frames of the frame SSIM against the ground truth.

    ``at_frames=(30, 300, ...)`` adds ``SSIM@k``, the SSIM of frame number k alone (1-based, frame
    index k - 1), for MCDM Figure 5(b); a video shorter than k frames gives no ``SSIM@k`` value
    (the summary's ``n`` counts the videos that had one). ``mean=False`` skips the all-frame mean.
    """

    name = "SSIM"
    metric_names = ("SSIM",)
    needs_gt = True
    kind = PER_VIDEO
    backbone = "none (closed form)"
    protocol = ("common_metrics_on_video_quality calculate_ssim (= skimage structural_similarity gaussian_weights, "
                "sigma 1.5, population covariance, data_range 1, valid region): RGB [0,1], mean over channels, "
                "frames, videos; which variant the papers ran is not published (metric_protocols.md section 9)")
    deviations: tuple[str, ...] = ()

    def __init__(self, weights_cfg: dict | None = None, device: str = "cpu", standin: bool = True, batch: int = 16,
                 at_frames=(), mean: bool = True):
        self.batch = batch
        self.at_frames = sorted({int(k) for k in at_frames})
        if any(k < 1 for k in self.at_frames):
            raise ValueError(f"SSIM at_frames are 1-based frame numbers, got {self.at_frames}")
        self.mean = mean

    def score_video(self, pred, gt=None) -> dict[str, float]:
        if gt is None:
            raise VideoSkipped("SSIM needs the ground-truth video")
        p, g = video_frames(pred), video_frames(gt)
        if p.shape[1:] != g.shape[1:]:
            raise VideoSkipped(f"frame size mismatch: pred {p.shape[2]}x{p.shape[1]} vs gt {g.shape[2]}x{g.shape[1]}")
        n = min(len(p), len(g))  # the evaluator notes length differences; compare the common prefix
        out = {}
        if self.mean:
            vals = [ssim_frames(_to_tensor(p[i:i + self.batch]), _to_tensor(g[i:i + self.batch]))
                    for i in range(0, n, self.batch)]
            out["SSIM"] = float(torch.cat(vals).mean())
        ks = [k for k in self.at_frames if k <= n]
        if self.at_frames and not ks and not self.mean:
            raise VideoSkipped(f"{n} frames: shorter than every requested SSIM@k frame {self.at_frames}")
        if ks:
            idx = [k - 1 for k in ks]
            vals = ssim_frames(_to_tensor(p[idx]), _to_tensor(g[idx]))
            out.update({f"SSIM@{k}": float(v) for k, v in zip(ks, vals)})
        return out


__all__ = ["SSIMScorer", "ssim_frames"]
