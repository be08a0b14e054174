"""E-FID: Frechet distance between the 3DMM expression coefficients of generated and ground-truth
frames (EMO / EchoMimic protocol, metric_protocols.md section 5).

Regressor: Deep3DFaceRecon_pytorch ``ReconNetWrapper`` (ResNet-50 backbone, seven 1x1-conv heads,
257 coefficients: id 80 | exp 64 | tex 80 | angle 3 | gamma 27 | trans 3). Checkpoint
``epoch_20.pth`` = ``{'net_recon': state_dict, ...}`` with keys ``backbone.*`` and
``final_layers.{0..6}.*``. The expression vector is ``coeffs[80:144]`` (64-d, BFM09 + Guo basis).

Input: Deep3DFaceRecon's own preprocessing, ``align_img`` (:mod:`metrics.face_align`): five points
(eye centres, nose tip, mouth corners) from the 68 iBUG landmarks of a pluggable landmark backend
(option ``landmarks``: ``mediapipe``, the offline default, ``dwpose``, ``module:function`` or a callable
``frames -> FaceTrack``), a POS fit to the standard 3D face, resize by 102 / s and a 224x224 crop,
RGB / 255. Frames without a face are left out of the set (the video is skipped when none has one).
``landmarks: none`` resizes the whole frame instead, a recorded deviation. Frames are sampled as for
FID (``frame_stride``, ``max_frames``); every per-frame exp vector is one sample of the set.

Stand-in (no file, ``standin: true``): the same wrapper on a ResNet-18 backbone with a fixed-seed
random init at 112 px, ``standin:deep3d-reconnet-resnet18-112px:seed0``.
"""
from __future__ import annotations

import importlib

import cv2
import numpy as np
import torch
from torch import nn
from torchvision.models import resnet18, resnet50

from core.weights import fixed_seed_init, load_torch, resolve
from metrics.base import SET, VideoSkipped, sample_frames, standin_label, video_frames
from metrics.face_align import TARGET_SIZE, align_face

#: Coefficient layout of Deep3DFaceRecon (split_coeff).
COEFF_SPLITS = {"id": (0, 80), "exp": (80, 144), "tex": (144, 224), "angle": (224, 227), "gamma": (227, 254),
                "trans": (254, 257)}
_HEAD_DIMS = (80, 64, 80, 3, 27, 2, 1)


class ReconNetWrapper(nn.Module):
    """ResNet backbone + seven 1x1 conv heads: ``[B, 3, 224, 224] in [0, 1] -> [B, 257]`` coefficients."""

    def __init__(self, backbone: str = "resnet50"):
        super().__init__()
        builders = {"resnet50": (resnet50, 2048), "resnet18": (resnet18, 512)}
        if backbone not in builders:
            raise ValueError(f"ReconNetWrapper backbone must be one of {list(builders)}, got {backbone!r}")
        build, last_dim = builders[backbone]
        self.backbone = build(weights=None)
        del self.backbone.fc  # use_last_fc=False: the checkpoint has no backbone.fc.*
        self.backbone.fc = nn.Identity()
        self.final_layers = nn.ModuleList([nn.Conv2d(last_dim, d, 1, bias=True) for d in _HEAD_DIMS])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.backbone(x)[:, :, None, None]  # avg-pooled [B, C, 1, 1]
        return torch.cat([head(feat) for head in self.final_layers], dim=1).flatten(1)


def load_deep3d_recon(path: str) -> ReconNetWrapper:
    """Load ``epoch_20.pth`` (``{'net_recon': ...}``) strictly into a ResNet-50 ReconNetWrapper."""
    ckpt = load_torch(path, "deep3d_recon", weights_only=False)
    if not isinstance(ckpt, dict) or "net_recon" not in ckpt:
        raise RuntimeError(f"{path}: expected a dict with key 'net_recon' (weights.deep3d_recon, epoch_20.pth)")
    model = ReconNetWrapper("resnet50")
    state = {k.removeprefix("module."): v for k, v in ckpt["net_recon"].items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise RuntimeError(f"{path}: 'net_recon' does not match Deep3DFaceRecon's ReconNetWrapper: {e}") from e
    return model.eval()


def expression_coeffs(coeffs: torch.Tensor) -> torch.Tensor:
    """The 64 expression coefficients ``coeffs[:, 80:144]`` of ``[B, 257]`` outputs."""
    lo, hi = COEFF_SPLITS["exp"]
    return coeffs[:, lo:hi]


class EFIDScorer:
    """Set metric ``E-FID``: ``features(video) -> [N_frames, 64]`` expression coefficients."""

    name = "E-FID"
    metric_names = ("E-FID",)
    needs_gt = True
    kind = SET
    weight_key = "deep3d_recon"

    def __init__(self, weights_cfg: dict | None = None, device: str = "cpu", standin: bool = True,
                 frame_stride: int = 1, max_frames: int | None = None, batch_size: int = 32, size: int | None = None,
                 landmarks="mediapipe"):
        path = resolve(self.weight_key, weights_cfg, standin=standin)
        if path is None:
            size = size or 112  # stand-in runs at 112 px to stay fast on CPU
            with fixed_seed_init(0):
                self.model = ReconNetWrapper("resnet18").eval()
            self.backbone = standin_label(f"deep3d-reconnet-resnet18-{size}px")
        else:
            self.model, self.backbone, size = load_deep3d_recon(path), path, size or TARGET_SIZE
        self.model.to(device)
        self.device, self.frame_stride, self.max_frames, self.batch_size, self.size = (
            device, frame_stride, max_frames, batch_size, size)
        self.landmarks, self.landmark_source = landmark_backend(landmarks, weights_cfg)
        self.ddof = 1
        align = ("whole frame resized (no alignment)" if self.landmarks is None else
                 f"align_img with 5 points from {self.landmark_source} iBUG-68 landmarks, 224 crop")
        self.protocol = ("EMO / EchoMimic E-FID (inferred, no code): Deep3DFaceRecon_pytorch@9167c71 ReconNetWrapper "
                         f"exp coeffs[80:144] per frame, {align}, RGB/255, np.cov; input {size} px, "
                         f"frame_stride={frame_stride}, max_frames={max_frames}")
        self.deviations = tuple(d for d in (
            "whole frame resized, no 5-point align_img" if self.landmarks is None else "",
            f"input {size} px (Deep3DFaceRecon: 224)" if size != TARGET_SIZE and path is not None else "",
            f"every {frame_stride}th frame" if frame_stride != 1 else "",
            f"at most {max_frames} frames per video" if max_frames else "") if d)

    def _inputs(self, frames: np.ndarray) -> np.ndarray:
        """Network inputs ``[N, size, size, 3]`` uint8: aligned faces (frames without one left out)."""
        if self.landmarks is None:
            return np.stack([cv2.resize(f, (self.size, self.size), interpolation=cv2.INTER_AREA) for f in frames])
        track = self.landmarks(frames)
        h, w = frames.shape[1:3]
        keep = np.flatnonzero(np.asarray(track.found, bool))
        if len(keep) == 0:
            raise VideoSkipped(f"E-FID: no face in any of the {len(frames)} sampled frames for the 5-point alignment "
                               f"({self.landmark_source}); set metrics.E-FID.landmarks=none to resize whole frames")
        faces = [align_face(frames[i], np.asarray(track.points[i]) * [w, h]) for i in keep]
        if self.size != TARGET_SIZE:  # a stand-in's smaller input
            faces = [cv2.resize(f, (self.size, self.size), interpolation=cv2.INTER_AREA) for f in faces]
        return np.stack(faces)

    @torch.no_grad()
    def features(self, video) -> np.ndarray:
        frames = sample_frames(video_frames(video), self.frame_stride, self.max_frames)
        x = torch.from_numpy(self._inputs(frames)).permute(0, 3, 1, 2).float() / 255.0
        out = [expression_coeffs(self.model(x[i:i + self.batch_size].to(self.device)))
               for i in range(0, len(x), self.batch_size)]
        return torch.cat(out).cpu().numpy().astype(np.float64)


def landmark_backend(spec, weights_cfg: dict | None = None):
    """Option ``metrics.E-FID.landmarks`` -> ``(frames -> FaceTrack callable or None, name)``."""
    if spec in (None, "none"):
        return None, "none"
    if callable(spec):
        return spec, getattr(spec, "__name__", type(spec).__name__)
    if isinstance(spec, str) and ":" in spec:
        module, _, attr = spec.partition(":")
        try:
            return getattr(importlib.import_module(module), attr), spec
        except (ImportError, AttributeError) as e:
            raise ValueError(f"metrics.E-FID.landmarks={spec!r}: cannot import {attr!r} from {module!r} ({e})") from e
    from metrics.landmarks import get_backend

    return get_backend(str(spec), weights_cfg), str(spec)


__all__ = ["COEFF_SPLITS", "EFIDScorer", "ReconNetWrapper", "expression_coeffs", "landmark_backend",
           "load_deep3d_recon"]
