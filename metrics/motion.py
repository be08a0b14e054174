"""Glo, Exp, DGlo, DExp: head-motion and expression dynamics (Loopy appendix B.1, eqs. 3-7).

On keypoint tracks ``[T, K, 2]`` with coordinates normalised to [0, 1] and s = 1000:

* Glo (eq. 3): variance of the nose tip over the clip,
  ``sum_i (x_i - mean x)^2 + (y_i - mean y)^2`` divided by T, times s.
* Exp (eqs. 4-5): per frame and upper-face keypoint o, ``e_i = (x_i^o - x_i^n) + (y_i^o - y_i^n)``
  (offset from the nose tip n); ``d_i = e_{i+1} - e_i``; Exp = the squared deviation of d
  from its clip mean, summed over the keypoints and averaged over the T-1 differences,
  times s. The appendix does not say whether keypoints are summed or averaged; summing
  matches the magnitudes it quotes (GT Exp ~0.3 next to Glo ~3).
* DGlo / DExp (eqs. 6-7): |Glo_g - Glo_gt| and |Exp_g - Exp_gt|. Eq. 6 prints a plain
  difference, the main text calls it the absolute difference and the tables rank it
  lower-is-better, so the absolute value is reported.

One implementation of eqs. 3-5, batched in torch (:func:`head_motion_variance`,
:func:`expression_variance`), serves both the metrics (numpy tracks, through :func:`glo` and
:func:`exp_metric`) and Loopy's audio-to-latents conditions (appendix B.1: "The calculations for
Glo and Exp are also used to obtain the head movement variance and facial expression variance in
the audio-to-latents module").

Keypoints: the 68 iBUG face points of either landmark backend; nose tip = iBUG 30
(DWPose id 53; MediaPipe mesh vertex 4); the 37 upper-face points are
:data:`metrics.landmarks.IBUG_UPPER37` (DWPose ids 23 + those; MediaPipe vertices
``MESH_TO_IBUG68`` at those positions).
"""
from __future__ import annotations

import numpy as np
import torch

from core.weights import resolve
from metrics.base import video_frames
from metrics.landmarks import IBUG_NOSE_TIP, IBUG_UPPER37, FaceTrack, VideoSkipped, get_backend

SCALE = 1000.0
MIN_FACE_FRACTION = 0.5


def head_motion_variance(nose: torch.Tensor, s: float = SCALE) -> torch.Tensor:
    """Glo, eq. 3, batched: nose ``[..., T, 2]`` in [0, 1] -> ``[...]``.

    ``sum_i (x_i - mean x)^2 + (y_i - mean y)^2`` over the frames with a face, divided by their
    number, times s. Frames with a NaN coordinate (no face) are left out; fewer than 2 left gives NaN.
    Loopy's audio-to-latents condition (lightning_modules/loopy) and the Glo metric both call this."""
    found = ~torch.isnan(nose).any(-1)                                    # [..., T]
    n = found.sum(-1)
    x = torch.where(found[..., None], nose, torch.zeros_like(nose))
    mean = x.sum(-2, keepdim=True) / n.clamp(min=1)[..., None, None]
    sq = torch.where(found[..., None], (x - mean) ** 2, torch.zeros_like(x)).sum((-1, -2))
    return torch.where(n >= 2, sq / n.clamp(min=1) * s, torch.full_like(sq, float("nan")))


def expression_variance(points: torch.Tensor, s: float = SCALE, upper=IBUG_UPPER37,
                        nose: int = IBUG_NOSE_TIP) -> torch.Tensor:
    """Exp, eqs. 4-5, batched: iBUG-68 points ``[..., T, 68, 2]`` -> ``[...]``.

    e_i^o = (x_i^o - x_i^n) + (y_i^o - y_i^n) for each of the 37 upper-face points o (eq. 4);
    d_i = e_{i+1} - e_i; Exp = the squared deviation of d from its clip mean, summed over the
    points and averaged over the differences, times s (eq. 5). Only differences between two
    consecutive frames that both have a face count; none gives NaN. Loopy's audio-to-latents
    condition (appendix B.1: "the calculations for Glo and Exp are also used" there) and the Exp
    metric both call this."""
    rel = points[..., list(upper), :] - points[..., [nose], :]
    e = rel[..., 0] + rel[..., 1]                                          # [..., T, 37]
    d = e[..., 1:, :] - e[..., :-1, :]                                     # [..., T-1, 37]
    ok = ~torch.isnan(d).any(-1)                                           # [..., T-1]
    n = ok.sum(-1)
    d = torch.where(ok[..., None], d, torch.zeros_like(d))
    mean = d.sum(-2, keepdim=True) / n.clamp(min=1)[..., None, None]
    sq = torch.where(ok[..., None], (d - mean) ** 2, torch.zeros_like(d)).sum((-1, -2))
    return torch.where(n >= 1, sq / n.clamp(min=1) * s, torch.full_like(sq, float("nan")))


def glo(nose: np.ndarray, s: float = SCALE) -> float:
    """Eq. 3 on one track: nose [T,2] in [0,1] (NaN rows = no face, dropped) -> Glo."""
    nose = torch.as_tensor(np.asarray(nose, dtype=np.float64))
    found = int((~torch.isnan(nose).any(-1)).sum())
    if found < 2:
        raise VideoSkipped(f"Glo needs a face in at least 2 frames, found {found}")
    return float(head_motion_variance(nose, s))


def exp_metric(points: np.ndarray, upper=IBUG_UPPER37, nose: int = IBUG_NOSE_TIP, s: float = SCALE) -> float:
    """Eq. 5 on one track: points [T,68,2] (NaN rows dropped from the differences) -> Exp."""
    value = float(expression_variance(torch.as_tensor(np.asarray(points, dtype=np.float64)), s, upper, nose))
    if np.isnan(value):
        raise VideoSkipped("Exp needs a face in two consecutive frames")
    return value


def glo_exp(points: np.ndarray, s: float = SCALE) -> dict[str, float]:
    """iBUG-68 track [T,68,2] -> {"Glo", "Exp"}."""
    return {"Glo": glo(np.asarray(points)[:, IBUG_NOSE_TIP], s), "Exp": exp_metric(points, s=s)}


def dglo_dexp(pred: dict[str, float], gt: dict[str, float]) -> dict[str, float]:
    """Eqs. 6-7 as absolute differences."""
    return {"DGlo": abs(pred["Glo"] - gt["Glo"]), "DExp": abs(pred["Exp"] - gt["Exp"])}


class MotionScorer:
    """Per-video Glo / Exp (and DGlo / DExp with ground truth) from a landmark backend.

    ``backend``: ``"dwpose"`` (the paper's detector; needs the two ONNX files),
    ``"mediapipe"`` (offline default), ``"auto"`` (DWPose when its files resolve, else MediaPipe), or a
    backend object (``frames -> FaceTrack`` with ``name`` and ``label``, e.g. the SynthTalk face network).
    ``standin`` is accepted for the scorer protocol; every backend is a trained detector, and
    the backbone label says which one ran.
    """

    name = "Motion"
    metric_names = ("Glo", "Exp", "DGlo", "DExp")
    needs_gt = False  # DGlo / DExp are added when a gt video is given
    kind = "per_video"

    def __init__(self, weights_cfg: dict | None = None, device: str = "cpu", standin: bool = True,
                 backend="auto", min_face_fraction: float = MIN_FACE_FRACTION):
        if backend == "auto":
            have_dwpose = all(resolve(k, weights_cfg, standin=True) for k in ("dwpose_det", "dwpose_pose"))
            self.backend = get_backend("dwpose" if have_dwpose else "mediapipe", weights_cfg)
        elif isinstance(backend, str):
            self.backend = get_backend(backend, weights_cfg)
        else:
            self.backend = backend
        self.backbone = self.backend.label
        self.min_face_fraction = min_face_fraction
        self.protocol = ("Loopy appendix B.1 eqs. 3-7 (no public code): nose tip iBUG 30 and 37 upper-face iBUG "
                         f"points from {self.backend.name}, [0,1] coordinates, s = 1000")
        self.deviations = () if self.backend.name == "dwpose" else (
            f"keypoints from {self.backend.name} (face mesh mapped to iBUG-68), not DWPose as the paper",)

    def track(self, video, role: str = "pred") -> FaceTrack:
        frames = video_frames(video)
        if len(frames) < 2:
            raise VideoSkipped(f"{role} video has {len(frames)} frame(s); Glo/Exp need at least 2")
        tr = self.backend(frames)
        if tr.found_fraction < self.min_face_fraction:
            raise VideoSkipped(
                f"{role}: face found in {int(tr.found.sum())}/{len(tr.found)} frames (< {self.min_face_fraction:.0%}): "
                f"no face to measure head and expression motion on; the video must show one visible face"
            )
        return tr

    def score_video(self, pred, gt=None) -> dict[str, float]:
        if gt is not None and len(gt.frames) != len(pred.frames):
            raise VideoSkipped(f"pred has {len(pred.frames)} frames, gt has {len(gt.frames)}; DGlo/DExp need equal lengths")
        out = glo_exp(self.track(pred, "pred").points)
        if gt is not None:
            out.update(dglo_dexp(out, glo_exp(self.track(gt, "gt").points)))
        return out
