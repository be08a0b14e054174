"""Smo: VBench motion smoothness (Huang et al., 2024), used by Loopy section 4.1.

Protocol of ``vbench/motion_smoothness.py`` (metric_protocols.md section 4): keep the
even frames (0, 2, 4, ...) as RGB / 255, pad to a multiple of 16, let a frame
interpolator predict the midpoint (``embt = 0.5``) of each consecutive kept pair,
interleave, unpad, x255 -> clip -> uint8; compare the predicted odd frames with the
original odd frames by ``mean(absdiff)`` over H x W x 3; Smo = (255 - mean) / 255.

The reference interpolator is AMT-S (:class:`AMTS`, loaded from ``amt-s.pth`` by
:func:`load_amt_s`). Without that file, scoring uses :class:`LinearBlendInterpolator`, a
labelled stand-in with the same calling convention (``standin:linear-blend``).
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.weights import load_torch, resolve
from metrics.base import video_frames
from metrics.landmarks import VideoSkipped

STANDIN_LABEL = "standin:linear-blend"
PAD_DIVISOR = 16


class Interpolator(Protocol):
    """Calling convention of AMT: ``model(img0, img1, embt, scale_factor=1.0, eval=True)``
    with img0, img1 [B,3,H,W] in [0,1] and embt [B,1,1,1] (0.5 = midpoint) returns
    ``{"imgt_pred": [B,3,H,W]}``."""

    def __call__(self, img0: torch.Tensor, img1: torch.Tensor, embt: torch.Tensor,
                 scale_factor: float = 1.0, eval: bool = True) -> dict: ...


class LinearBlendInterpolator(nn.Module):
    """Stand-in :class:`Interpolator`: img_t = (1 - t) img0 + t img1. Exact for static and
    linearly fading content; it has no motion model, so absolute Smo values differ from AMT-S."""

    def forward(self, img0, img1, embt, scale_factor: float = 1.0, eval: bool = True) -> dict:
        return {"imgt_pred": (1 - embt) * img0 + embt * img1}


# ----------------------------------------------------------------------------- AMT-S network
# AMT (Li et al., CVPR 2023), the "S" configuration VBench uses: corr_radius 3, corr_lvls 4,
# num_flows 3, pyramid channels (20, 32, 44, 56), skip channels 20. Module attribute names
# and nn.Sequential positions follow the layout of ``amt-s.pth`` so its state_dict loads.
def _up(x: torch.Tensor, factor: float) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


def _backwarp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample img [B,C,H,W] at pixel + flow [B,2,H,W] (border padding, align_corners)."""
    B, _, H, W = flow.shape
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, H, device=img.device),
                            torch.linspace(-1, 1, W, device=img.device), indexing="ij")
    grid = torch.stack([xs + flow[:, 0] * 2 / (W - 1), ys + flow[:, 1] * 2 / (H - 1)], -1)
    return F.grid_sample(img, grid.to(img.dtype), mode="bilinear", padding_mode="border", align_corners=True)


def _pixel_grid(B: int, H: int, W: int, device) -> torch.Tensor:
    """[B,2,H,W] pixel coordinates (x, y)."""
    ys, xs = torch.meshgrid(torch.arange(H, device=device), torch.arange(W, device=device), indexing="ij")
    return torch.stack([xs, ys]).float()[None].expand(B, -1, -1, -1)


def _conv_prelu(cin: int, cout: int, k: int = 3, s: int = 1, p: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, p), nn.PReLU(cout))


class _Bottleneck(nn.Module):
    """Instance-normalised bottleneck of the correlation feature encoder."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout // 4, 1)
        self.conv2 = nn.Conv2d(cout // 4, cout // 4, 3, stride, 1)
        self.conv3 = nn.Conv2d(cout // 4, cout, 1)
        self.norm1, self.norm2, self.norm3 = (nn.InstanceNorm2d(c) for c in (cout // 4, cout // 4, cout))
        self.downsample = None if stride == 1 else nn.Sequential(nn.Conv2d(cin, cout, 1, stride), nn.InstanceNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.norm1(self.conv1(x)))
        y = F.relu(self.norm2(self.conv2(y)))
        y = F.relu(self.norm3(self.conv3(y)))
        return F.relu((x if self.downsample is None else self.downsample(x)) + y)


class _CorrEncoder(nn.Module):
    """[B,3,H,W] -> [B,84,H/8,W/8] features for the correlation volume."""

    def __init__(self, out_dim: int = 84):
        super().__init__()
        self.conv1, self.norm1 = nn.Conv2d(3, 32, 7, 2, 3), nn.InstanceNorm2d(32)
        dims, cin = ((32, 1), (64, 2), (96, 2)), 32
        for i, (d, s) in enumerate(dims, 1):
            setattr(self, f"layer{i}", nn.Sequential(_Bottleneck(cin, d, s), _Bottleneck(d, d)))
            cin = d
        self.conv2 = nn.Conv2d(96, out_dim, 1)

    def forward(self, x):
        x = F.relu(self.norm1(self.conv1(x)))
        return self.conv2(self.layer3(self.layer2(self.layer1(x))))


class _Pyramid(nn.Module):
    """Context pyramid: features at 1/2, 1/4, 1/8, 1/16 resolution."""

    def __init__(self, channels):
        super().__init__()
        self.n, cin = len(channels), 3
        for i, c in enumerate(channels, 1):
            self.register_module(f"pyramid{i}", nn.Sequential(_conv_prelu(cin, c, 3, 2, 1), _conv_prelu(c, c)))
            cin = c

    def forward(self, x):
        out = []
        for i in range(1, self.n + 1):
            x = getattr(self, f"pyramid{i}")(x)
            out.append(x)
        return out


class _SideResBlock(nn.Module):
    """Residual block whose last ``side`` channels get extra convolutions (IFRNet)."""

    def __init__(self, c: int, side: int):
        super().__init__()
        self.side = side
        self.conv1, self.conv2 = _conv_prelu(c, c), _conv_prelu(side, side)
        self.conv3, self.conv4 = _conv_prelu(c, c), _conv_prelu(side, side)
        self.conv5, self.prelu = nn.Conv2d(c, c, 3, 1, 1), nn.PReLU(c)

    def _side(self, x, conv):
        return torch.cat([x[:, :-self.side], conv(x[:, -self.side:])], 1)

    def forward(self, x):
        out = self._side(self.conv1(x), self.conv2)
        out = self._side(self.conv3(out), self.conv4)
        return self.prelu(x + self.conv5(out))


def _decoder_block(cin: int, cmid: int, cout: int, side: int) -> nn.Sequential:
    return nn.Sequential(_conv_prelu(cin, cmid), _SideResBlock(cmid, side), nn.ConvTranspose2d(cmid, cout, 4, 2, 1))


class _Decoder(nn.Module):
    """One coarse-to-fine step. The first level sees (f0, f1, t); later ones see
    (ft, warped f0, warped f1, flow0, flow1) and add the upsampled incoming flows.
    The last level predicts ``num_flows`` flow pairs, blend masks and residuals."""

    def __init__(self, c: int, out: int, side: int, first: bool = False, num_flows: int = 0):
        super().__init__()
        self.first, self.num_flows = first, num_flows
        cin, cmid = (2 * c + 1, 2 * c) if first else (3 * c + 4, 3 * c)
        self.convblock = _decoder_block(cin, cmid, 8 * num_flows if num_flows else out + 4, side)

    def forward(self, *args):
        if self.first:
            f0, f1, embt = args
            out = self.convblock(torch.cat([f0, f1, embt.expand(-1, 1, *f0.shape[2:])], 1))
            return out[:, 0:2], out[:, 2:4], out[:, 4:]
        ft, f0, f1, flow0, flow1 = args
        out = self.convblock(torch.cat([ft, _backwarp(f0, flow0), _backwarp(f1, flow1), flow0, flow1], 1))
        n = self.num_flows or 1
        up0, up1 = (2.0 * _up(f, 2.0).repeat(1, n, 1, 1) for f in (flow0, flow1))
        if not self.num_flows:
            return out[:, 0:2] + up0, out[:, 2:4] + up1, out[:, 4:]
        d0, d1, mask, res = torch.split(out, [2 * n, 2 * n, n, 3 * n], 1)
        return d0 + up0, d1 + up1, torch.sigmoid(mask), res


class _CorrVolume:
    """All-pairs correlation of two H/8 feature maps, pooled over ``levels`` scales, read in
    both directions within ``radius`` (RAFT-style lookup, bidirectional as in AMT)."""

    def __init__(self, fmap0, fmap1, levels: int, radius: int):
        B, C, H, W = fmap0.shape
        corr = torch.einsum("bci,bcj->bij", fmap0.flatten(2), fmap1.flatten(2)) / C**0.5
        fwd = corr.reshape(B * H * W, 1, H, W)
        bwd = corr.transpose(1, 2).reshape(B * H * W, 1, H, W)
        self.levels, self.radius, self.pyr = levels, radius, [(fwd, bwd)]
        for _ in range(levels - 1):
            fwd, bwd = F.avg_pool2d(fwd, 2, 2), F.avg_pool2d(bwd, 2, 2)
            self.pyr.append((fwd, bwd))

    @staticmethod
    def _sample(vol, xy):
        h, w = vol.shape[-2:]
        grid = torch.stack([2 * xy[..., 0] / (w - 1) - 1, 2 * xy[..., 1] / (h - 1) - 1], -1)
        return F.grid_sample(vol, grid, align_corners=True)

    def __call__(self, coords0, coords1):
        B, _, H, W = coords0.shape
        r = self.radius
        d = torch.linspace(-r, r, 2 * r + 1, device=coords0.device)
        dy, dx = torch.meshgrid(d, d, indexing="ij")
        # offsets added in (dy, dx) order, as the reference stacks them
        delta = torch.stack([dy, dx], -1)[None]
        outs = ([], [])
        for lvl, vols in enumerate(self.pyr):
            for k, (vol, c) in enumerate(zip(vols, (coords0, coords1), strict=True)):
                centre = c.permute(0, 2, 3, 1).reshape(B * H * W, 1, 1, 2) / 2**lvl
                outs[k].append(self._sample(vol, centre + delta).reshape(B, H, W, -1))
        return tuple(torch.cat(o, -1).permute(0, 3, 1, 2).contiguous().float() for o in outs)


class _Update(nn.Module):
    """Residual refinement of (features, flows) from correlation lookups (SmallUpdateBlock)."""

    def __init__(self, cdim: int, scale: int | None, hidden=76, flow_dim=20, corr_dim=64, fc_dim=68, levels=4, radius=3):
        super().__init__()
        self.scale = scale
        planes = levels * (2 * radius + 1) ** 2
        self.convc1 = nn.Conv2d(2 * planes, corr_dim, 1)
        self.convf1 = nn.Conv2d(4, flow_dim * 2, 7, padding=3)
        self.convf2 = nn.Conv2d(flow_dim * 2, flow_dim, 3, padding=1)
        self.conv = nn.Conv2d(corr_dim + flow_dim, fc_dim, 3, padding=1)
        head = lambda cin, cout: nn.Sequential(  # noqa: E731
            nn.Conv2d(cin, hidden, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv2d(hidden, cout, 3, padding=1))
        self.gru, self.feat_head, self.flow_head = head(fc_dim + 4 + cdim, hidden), head(hidden, cdim), head(hidden, 4)

    def forward(self, net, flow, corr):
        act = lambda x: F.leaky_relu(x, 0.1)  # noqa: E731
        if self.scale:
            net = _up(net, 1 / self.scale)
        motion = act(self.conv(torch.cat([act(self.convc1(corr)), act(self.convf2(act(self.convf1(flow))))], 1)))
        out = self.gru(torch.cat([motion, flow, net], 1))
        d_net, d_flow = self.feat_head(out), self.flow_head(out)
        if self.scale:
            d_net, d_flow = _up(d_net, self.scale), self.scale * _up(d_flow, self.scale)
        return d_net, d_flow


class AMTS(nn.Module):
    """AMT-S frame interpolator: (img0, img1 [B,3,H,W] in [0,1], H, W multiples of 16,
    embt [B,1,1,1]) -> {"imgt_pred": [B,3,H,W]}. VBench calls it with embt = 0.5.

    The coarsest correlation level is (H/8)/2^(levels-1) pixels; below 2 pixels the
    lookup divides by zero (as in the reference), so H and W must be >= ``min_side``."""

    min_side = 128

    def __init__(self, corr_radius=3, corr_lvls=4, num_flows=3, channels=(20, 32, 44, 56), skip_channels=20):
        super().__init__()
        c, s = channels, skip_channels
        self.radius, self.levels, self.num_flows = corr_radius, corr_lvls, num_flows
        self.feat_encoder = _CorrEncoder(84)
        self.encoder = _Pyramid(c)
        self.decoder4 = _Decoder(c[3], c[2], s, first=True)
        self.decoder3 = _Decoder(c[2], c[1], s)
        self.decoder2 = _Decoder(c[1], c[0], s)
        self.decoder1 = _Decoder(c[0], 0, s, num_flows=num_flows)
        self.update4 = _Update(c[2], None, levels=corr_lvls, radius=corr_radius)
        self.update3 = _Update(c[1], 2, levels=corr_lvls, radius=corr_radius)
        self.update2 = _Update(c[0], 4, levels=corr_lvls, radius=corr_radius)
        self.comb_block = nn.Sequential(
            nn.Conv2d(3 * num_flows, 6 * num_flows, 3, 1, 1), nn.PReLU(6 * num_flows), nn.Conv2d(6 * num_flows, 3, 3, 1, 1))

    def _refine(self, update, corr, coord, ft, flow0, flow1, embt, down):
        # flows t->0 / t->1 rescaled (linear motion) to 0->1 / 1->0 for the lookup
        f0, f1 = (flow0, flow1) if down == 1 else (_up(flow0, 1 / down) / down, _up(flow1, 1 / down) / down)
        c0, c1 = corr(coord + f1 / embt, coord + f0 / (1 - embt))
        d_ft, d_flow = update(ft, torch.cat([f0, f1], 1), torch.cat([c0, c1], 1))
        return ft + d_ft, flow0 + d_flow[:, :2], flow1 + d_flow[:, 2:]

    def forward(self, img0, img1, embt, scale_factor: float = 1.0, eval: bool = True, **kw) -> dict:
        if scale_factor != 1.0:
            raise ValueError("AMTS runs at scale_factor 1.0 (VBench's CPU path)")
        mean = torch.cat([img0, img1], 2).mean((1, 2, 3), keepdim=True)
        img0, img1 = img0 - mean, img1 - mean
        B, _, H, W = img0.shape
        coord = _pixel_grid(B, H // 8, W // 8, img0.device)
        fmap0, fmap1 = self.feat_encoder(torch.cat([img0, img1])).chunk(2)
        corr = _CorrVolume(fmap0, fmap1, self.levels, self.radius)
        f0s, f1s = self.encoder(img0), self.encoder(img1)
        flow0, flow1, ft = self.decoder4(f0s[3], f1s[3], embt)
        ft, flow0, flow1 = self._refine(self.update4, corr, coord, ft, flow0, flow1, embt, 1)
        flow0, flow1, ft = self.decoder3(ft, f0s[2], f1s[2], flow0, flow1)
        ft, flow0, flow1 = self._refine(self.update3, corr, coord, ft, flow0, flow1, embt, 2)
        flow0, flow1, ft = self.decoder2(ft, f0s[1], f1s[1], flow0, flow1)
        ft, flow0, flow1 = self._refine(self.update2, corr, coord, ft, flow0, flow1, embt, 4)
        flow0, flow1, mask, res = self.decoder1(ft, f0s[0], f1s[0], flow0, flow1)
        return {"imgt_pred": self._combine(img0, img1, flow0, flow1, mask, res, mean).clamp(0, 1)}

    def _combine(self, img0, img1, flow0, flow1, mask, res, mean):
        """Warp both frames with each of the n flow pairs, blend by mask, add residual and
        mean, then average the n candidates plus a learned correction (comb_block)."""
        B, _, H, W = img0.shape
        n = self.num_flows
        rep = lambda x, c: x.reshape(B * n, c, H, W)  # noqa: E731
        i0, i1 = (x.unsqueeze(1).expand(-1, n, -1, -1, -1).reshape(B * n, 3, H, W) for x in (img0, img1))
        m = mean.unsqueeze(1).expand(-1, n, -1, -1, -1).reshape(B * n, 1, 1, 1)
        w = rep(mask, 1)
        warps = w * _backwarp(i0, rep(flow0, 2)) + (1 - w) * _backwarp(i1, rep(flow1, 2)) + m + rep(res, 3)
        warps = warps.reshape(B, n, 3, H, W)
        return warps.mean(1) + self.comb_block(warps.reshape(B, n * 3, H, W))


def load_amt_s(path: str) -> AMTS:
    """Load ``amt-s.pth`` ({'state_dict': ...}) strictly into :class:`AMTS`; a missing or
    unexpected key raises ValueError naming the file."""
    ckpt = load_torch(path, "amt_s")
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ValueError(f"{path}: expected a dict with key 'state_dict' (the amt-s.pth layout)")
    model = AMTS()
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path} does not match the AMT-S layout: {str(e)[:400]}") from e
    return model.eval()


# ----------------------------------------------------------------------------- scoring
def _pad16(x: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """Replicate-pad H, W up to a multiple of 16, split evenly (AMT's InputPadder)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % PAD_DIVISOR, (-w) % PAD_DIVISOR
    pad = [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2]
    return F.pad(x, pad, mode="replicate"), pad


def _unpad(x: torch.Tensor, pad: list[int]) -> torch.Tensor:
    h, w = x.shape[-2:]
    return x[..., pad[2]:h - pad[3], pad[0]:w - pad[1]]


@torch.no_grad()
def interpolate_odd_frames(frames: np.ndarray, model: Interpolator, device="cpu", batch: int = 16) -> np.ndarray:
    """frames uint8 [T,H,W,3] RGB -> the predicted odd frames uint8 [ceil(T/2)-1,H,W,3]."""
    kept = torch.from_numpy(np.ascontiguousarray(frames[::2])).to(device).permute(0, 3, 1, 2).float() / 255.0
    kept, pad = _pad16(kept)
    out = []
    for i in range(0, len(kept) - 1, batch):
        a, b = kept[i:i + batch + 1][:-1], kept[i + 1:i + batch + 1]
        embt = torch.full((len(a), 1, 1, 1), 0.5, device=device)
        mid = _unpad(model(a, b, embt, scale_factor=1.0, eval=True)["imgt_pred"], pad)
        # tensor2img: x255, clip, truncating uint8 cast
        out.append((mid * 255.0).permute(0, 2, 3, 1).cpu().numpy().clip(0, 255).astype(np.uint8))
    return np.concatenate(out)


def vfi_score(originals: np.ndarray, interpolated: np.ndarray) -> float:
    """Mean over predicted frames of mean |orig - pred| (uint8 absdiff) -> (255 - m) / 255."""
    ori = originals[1::2][: len(interpolated)].astype(np.int16)
    diffs = [np.abs(o - p.astype(np.int16)).mean() for o, p in zip(ori, interpolated, strict=True)]
    return float((255.0 - np.mean(diffs)) / 255.0)


def motion_smoothness(frames: np.ndarray, model: Interpolator, device="cpu") -> float:
    """Smo of one video: frames uint8 [T,H,W,3] RGB, T >= 3."""
    frames = np.asarray(frames)
    if len(frames) < 3:
        raise VideoSkipped(f"Smo needs at least 3 frames, got {len(frames)}")
    return vfi_score(frames, interpolate_odd_frames(frames, model, device))


class SmoothnessScorer:
    """Per-video Smo with AMT-S from ``weights.amt_s``; without that file the linear-blend
    stand-in runs when ``standin`` is true, else construction fails naming the file."""

    name = "Smo"
    metric_names = ("Smo",)
    needs_gt = False
    kind = "per_video"

    def __init__(self, weights_cfg: dict | None = None, device: str = "cpu", standin: bool = True):
        self.device = device
        path = resolve("amt_s", weights_cfg, standin=standin)  # None -> stand-in
        if path is None:
            self.model, self.backbone = LinearBlendInterpolator(), STANDIN_LABEL
        else:
            self.model, self.backbone = load_amt_s(path), path
        self.model.to(device)
        self.protocol = ("VBench motion_smoothness (Vchitect/VBench@45e79ec): AMT-S midpoints of the even frames vs "
                         "the odd frames, (255 - mean absdiff) / 255")
        self.deviations: tuple[str, ...] = ()

    def score_video(self, pred, gt=None) -> dict[str, float]:
        frames = video_frames(pred)
        h, w = frames.shape[1:3]
        side = AMTS.min_side
        if isinstance(self.model, AMTS) and min(h + (-h) % PAD_DIVISOR, w + (-w) % PAD_DIVISOR) < side:
            raise VideoSkipped(f"AMT-S needs frames of at least {side}x{side} px, got {w}x{h}")
        return {"Smo": motion_smoothness(frames, self.model, self.device)}
