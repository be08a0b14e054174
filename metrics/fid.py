"""FID: Frechet distance between InceptionV3 pool-3 features (2048-d) of generated and ground-truth
frames, computed with pytorch-fid 0.3.0 (metric_protocols.md section 3).

Protocol: frames are RGB ``[0, 1]``; pytorch-fid's ``InceptionV3([3], resize_input=True,
normalize_input=True, use_fid_inception=True)`` resizes them bilinearly to 299x299 and maps them
to [-1, 1]. Every frame of every video is used by default (``frame_stride=1``, ``max_frames=None``,
as Hallo/DisCo do with pytorch-fid over all frames); the tiny preset samples every k-th frame
(recorded in the summary's ``protocol``).

Weights: pytorch-fid only downloads ``pt_inception-2015-12-05-6726825d.pth`` through torch.hub.
Here the FID Inception is assembled from pytorch-fid's own blocks with no download and the state
dict is loaded, strictly, from the local file named in ``core/weights.py`` (``weights.fid_inception``).
"""
from __future__ import annotations

from unittest import mock

import numpy as np
import torch
from pytorch_fid import inception as pfi

from core.weights import fixed_seed_init, load_torch, resolve, wrong_file
from metrics.base import SET, sample_frames, standin_label, video_frames


def fid_inception_v3_local(path: str | None = None, seed: int = 0) -> torch.nn.Module:
    """pytorch-fid's FID Inception (1008 classes, FID-specific Mixed blocks), weights from ``path``.

    ``path=None`` gives the same architecture with a fixed-seed random init (a stand-in).
    A state-dict key mismatch or a non-torch file raises ``WeightsFormatError`` (also a RuntimeError).
    """
    with fixed_seed_init(seed):
        net = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
        # The FID graph differs from torchvision's in these blocks (pytorch-fid fid_inception_v3).
        net.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
        net.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
        net.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
        net.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
        net.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b = pfi.FIDInceptionE_1(1280)
        net.Mixed_7c = pfi.FIDInceptionE_2(2048)
    if path is not None:
        state = load_torch(path, "fid_inception")
        try:
            res = net.load_state_dict(state, strict=False)
        except (RuntimeError, TypeError, AttributeError) as e:  # other shapes, or not a state dict at all
            detail = (str(e).strip().splitlines() or [""])[-1].strip()[:200]
            raise wrong_file("fid_inception", path, f"not a pytorch-fid Inception state dict ({detail})") from e
        if res.missing_keys or res.unexpected_keys:
            raise wrong_file("fid_inception", path, f"not a pytorch-fid Inception state dict: missing keys "
                                                    f"{res.missing_keys[:3]}, unexpected keys {res.unexpected_keys[:3]}")
    return net


def build_fid_model(path: str | None = None, seed: int = 0, dims: int = 2048) -> pfi.InceptionV3:
    """pytorch-fid ``InceptionV3`` wrapper (resize to 299, [-1, 1]) around the local FID Inception."""
    net = fid_inception_v3_local(path, seed)
    # InceptionV3.__init__ calls fid_inception_v3(), which downloads; hand it the local network.
    with mock.patch.object(pfi, "fid_inception_v3", lambda: net):
        model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[dims]], resize_input=True,
                                normalize_input=True, use_fid_inception=True)
    return model.eval()


@torch.no_grad()
def inception_features(model: torch.nn.Module, frames: np.ndarray, batch_size: int = 50,
                       device: str = "cpu") -> np.ndarray:
    """uint8 ``[N, H, W, 3]`` RGB -> pool-3 features ``[N, 2048]`` (pytorch-fid get_activations; a model
    built for an earlier block gives that block's spatially averaged features)."""
    out = []
    for i in range(0, len(frames), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(frames[i:i + batch_size])).permute(0, 3, 1, 2)
        pred = model(x.to(device).float() / 255.0)[0]  # ToTensor scaling to [0, 1]
        if pred.shape[2:] != (1, 1):  # an earlier block (dims 64 / 192 / 768): pooled as get_activations does
            pred = torch.nn.functional.adaptive_avg_pool2d(pred, (1, 1))
        out.append(pred.squeeze(-1).squeeze(-1).cpu().numpy())
    return np.concatenate(out).astype(np.float64)


class SmallInceptionStandin(torch.nn.Module):
    """Fast fixed-seed stand-in with the pytorch-fid ``InceptionV3`` interface:
    ``[N, 3, H, W]`` in [0, 1] -> ``[[N, 2048, 1, 1]]`` (resize to 75 instead of 299, 3 convs).

    The full FID Inception takes ~0.7 s per frame on one CPU core; this one is for tiny runs only
    and is labelled ``standin:fid-small-cnn:seed0``.
    """

    def __init__(self, dims: int = 2048, width: int = 32):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(3, width, 3, 2, 1), torch.nn.ReLU(), torch.nn.Conv2d(width, 2 * width, 3, 2, 1), torch.nn.ReLU(),
            torch.nn.Conv2d(2 * width, 4 * width, 3, 2, 1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(), torch.nn.Linear(4 * width, dims))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = torch.nn.functional.interpolate(x, size=(75, 75), mode="bilinear", align_corners=False) * 2 - 1
        return [self.net(x)[:, :, None, None]]


class FIDScorer:
    """Set metric ``FID``: ``features(video) -> [N, 2048]`` for the sampled frames of one video."""

    name = "FID"
    metric_names = ("FID",)
    needs_gt = True
    kind = SET
    weight_key = "fid_inception"

    def __init__(self, weights_cfg: dict | None = None, device: str = "cpu", standin: bool = True,
                 frame_stride: int = 1, max_frames: int | None = None, batch_size: int = 50,
                 standin_arch: str = "small"):
        path = resolve(self.weight_key, weights_cfg, standin=standin)
        if path is None and standin_arch == "small":
            with fixed_seed_init(0):
                self.model, self.backbone = SmallInceptionStandin().eval(), standin_label("fid-small-cnn")
        elif path is None and standin_arch == "inception":
            self.model, self.backbone = build_fid_model(None), standin_label("fid-inception-v3-random")
        elif path is None:
            raise ValueError(f"metrics.FID.standin_arch must be 'small' or 'inception', got {standin_arch!r}")
        else:
            self.model, self.backbone = build_fid_model(path), path
        self.model.to(device)
        self.device, self.frame_stride, self.max_frames, self.batch_size = device, frame_stride, max_frames, batch_size
        net = "small stand-in CNN at 75 px" if isinstance(self.model, SmallInceptionStandin) else "InceptionV3 pool3, bilinear 299"
        self.protocol = (f"pytorch-fid 0.3.0 (mseitzer/pytorch-fid@b9c1811 fid_score.py): {net}, 2048-d, RGB/255, "
                         f"np.cov, every frame of every video (Hallo / DisCo); frame_stride={frame_stride}, "
                         f"max_frames={max_frames}")
        self.deviations = tuple(d for d in (
            f"every {frame_stride}th frame (pytorch-fid protocol: every frame)" if frame_stride != 1 else "",
            f"at most {max_frames} frames per video (pytorch-fid protocol: every frame)" if max_frames else "") if d)

    def features(self, video) -> np.ndarray:
        frames = sample_frames(video_frames(video), self.frame_stride, self.max_frames)
        return inception_features(self.model, frames, self.batch_size, self.device)


__all__ = ["FIDScorer", "SmallInceptionStandin", "build_fid_model", "fid_inception_v3_local", "inception_features"]
