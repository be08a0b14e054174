"""Training of :class:`metrics.synthtalk.facenet.FaceNet` on SynthTalk's training frames.

Positives are training frames under random similarity transforms (rotation, zoom, shift), mirror
flips (points renumbered with :data:`IBUG_MIRROR`), colour changes and, for some, a moderate blur;
their keypoints go through the same transform, so the labels stay exact. The colour and geometry
changes are what let six or so training identities generalise to held-out faces.

Negatives teach the presence head what is not a face (the honest ``found`` decision):
patch-shuffled frames (face parts present, face layout gone), noise, flat colour with a gradient,
and heavily blurred frames (a shapeless blob of face colours). A moderately blurred face stays a
positive. Losses: L1 on keypoints in pixels, binary cross-entropy on presence, L1 on mouth opening
and blink; keypoint, mouth and blink losses use positives only.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from metrics.synthtalk.facenet import IBUG_MIRROR, FaceNet

NEGATIVE_KINDS = ("shuffled", "noise", "flat", "heavy_blur")
#: Blur (Gaussian sigma, as a fraction of the frame side) of positives and of "heavy_blur" negatives.
MODERATE_BLUR = 1.0 / 32  # 1 px at 32 px: still a face
HEAVY_BLUR = (1.0 / 8, 1.0 / 4)  # 4-8 px at 32 px: no face left
#: Share of a batch's frame pairs whose second frame is any frame of the clip, not the next one.
FAR_SHARE = 0.5


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur of ``[N,C,H,W]`` with a sigma in pixels per image (<= 0.05: unchanged)."""
    N, C, H, W = x.shape
    radius = int(math.ceil(3 * float(sigma.max()))) if len(sigma) else 0
    if radius < 1:
        return x
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t[None] / sigma.clamp(min=0.05)[:, None]) ** 2)
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(C, 0)
    y = x.reshape(1, N * C, H, W)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="replicate"), k[:, None, None, :], groups=N * C)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="replicate"), k[:, None, :, None], groups=N * C)
    return y.reshape(N, C, H, W)


def random_similarity(
    n: int, gen: torch.Generator, max_rot_deg: float = 12.0, zoom: float = 0.12, shift: float = 0.06
) -> torch.Tensor:
    """``n`` forward maps [n,2,3] of normalised points: rotation and zoom about the centre, then shift."""
    r = torch.rand(n, 4, generator=gen) * 2 - 1
    a = torch.deg2rad(r[:, 0] * max_rot_deg)
    s = 1.0 + zoom * r[:, 1]
    A = torch.zeros(n, 2, 3)
    A[:, 0, 0], A[:, 0, 1] = s * torch.cos(a), -s * torch.sin(a)
    A[:, 1, 0], A[:, 1, 1] = s * torch.sin(a), s * torch.cos(a)
    c = torch.tensor([0.5, 0.5])
    A[:, :, 2] = c - (A[:, :, :2] @ c) + shift * r[:, 2:4]
    return A


def warp(images: torch.Tensor, points: torch.Tensor, A: torch.Tensor, flip: torch.Tensor):
    """Apply maps ``A`` (then a mirror flip where ``flip``) to images [N,3,S,S] and points [N,68,2]."""
    N = len(images)
    Af = A.clone()
    Af[flip] = torch.tensor([[-1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]) @ torch.cat(
        [A[flip], torch.tensor([[[0.0, 0.0, 1.0]]]).expand(int(flip.sum()), 1, 3)], 1
    )
    pts = points @ Af[:, :, :2].transpose(1, 2) + Af[:, None, :, 2]
    pts[flip] = pts[flip][:, list(IBUG_MIRROR)]
    # grid_sample needs the inverse map in [-1, 1] coordinates: u = 2p - 1
    full = torch.cat([Af, torch.tensor([[[0.0, 0.0, 1.0]]]).expand(N, 1, 3)], 1)
    inv = torch.linalg.inv(full)[:, :2]
    T = torch.tensor([[2.0, 0.0, -1.0], [0.0, 2.0, -1.0], [0.0, 0.0, 1.0]])
    theta = (
        T[:2] @ torch.cat([inv, torch.tensor([[[0.0, 0.0, 1.0]]]).expand(N, 1, 3)], 1) @ torch.linalg.inv(T)
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False), pts


def colour_jitter(x: torch.Tensor, gen: torch.Generator, repeat: int = 1) -> torch.Tensor:
    """Random channel order, per-channel gain, brightness and contrast of images in [-1, 1].

    ``repeat``: consecutive groups of that many images share one draw (a frame pair stays a pair).
    """
    n = len(x) // repeat
    perm = torch.stack([torch.randperm(3, generator=gen) for _ in range(n)]).repeat_interleave(repeat, 0)
    swap = (torch.rand(n, generator=gen) < 0.5).repeat_interleave(repeat, 0)
    gain = (1.0 + 0.3 * (torch.rand(n, 3, 1, 1, generator=gen) * 2 - 1)).repeat_interleave(repeat, 0)
    bright = (0.3 * (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1)).repeat_interleave(repeat, 0)
    contrast = (1.0 + 0.3 * (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1)).repeat_interleave(repeat, 0)
    x = torch.where(swap[:, None, None, None], torch.gather(x, 1, perm[:, :, None, None].expand_as(x)), x)
    mean = x.mean((1, 2, 3), keepdim=True)
    return (((x - mean) * contrast + mean) * gain + bright).clamp(-1, 1)


def make_negatives(x: torch.Tensor, gen: torch.Generator, kinds: torch.Tensor | None = None) -> torch.Tensor:
    """Non-faces from frames [N,3,S,S] in [-1, 1]: kind ``kinds[i]`` of :data:`NEGATIVE_KINDS` (or random)."""
    N, _, S, _ = x.shape
    kind = torch.randint(0, len(NEGATIVE_KINDS), (N,), generator=gen) if kinds is None else kinds
    out = x.clone()
    g = 4  # patch grid of the shuffle
    p = S // g
    for i in torch.nonzero(kind == 0).flatten().tolist():
        tiles = (
            x[i, :, : p * g, : p * g].reshape(3, g, p, g, p).permute(1, 3, 0, 2, 4).reshape(g * g, 3, p, p)
        )
        tiles = tiles[torch.randperm(g * g, generator=gen)]
        out[i, :, : p * g, : p * g] = (
            tiles.reshape(g, g, 3, p, p).permute(2, 0, 3, 1, 4).reshape(3, p * g, p * g)
        )
    noise = kind == 1
    if noise.any():
        n = int(noise.sum())
        coarse = torch.rand(n, 3, 8, 8, generator=gen) * 2 - 1
        fine = torch.rand(n, 3, S, S, generator=gen) * 2 - 1
        mix = torch.rand(n, 1, 1, 1, generator=gen)
        out[noise] = (
            mix * F.interpolate(coarse, size=(S, S), mode="bilinear", align_corners=False) + (1 - mix) * fine
        )
    flat = kind == 2
    if flat.any():
        n = int(flat.sum())
        colour = torch.rand(n, 3, 1, 1, generator=gen) * 2 - 1
        ramp = (
            torch.linspace(-1, 1, S)[None, None, :, None]
            * 0.3
            * (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1)
        )
        out[flat] = (colour + ramp).clamp(-1, 1).expand(n, 3, S, S)
    heavy = kind == 3
    if heavy.any():
        lo, hi = HEAVY_BLUR
        sigma = S * (lo + (hi - lo) * torch.rand(int(heavy.sum()), generator=gen))
        out[heavy] = gaussian_blur(x[heavy], sigma)
    return out


def pair_starts(clip_ids: np.ndarray) -> np.ndarray:
    """Indices i whose next frame i + 1 belongs to the same clip."""
    clip_ids = np.asarray(clip_ids)
    return np.nonzero(clip_ids[1:] == clip_ids[:-1])[0]


def clip_bounds(clip_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last index of each frame's clip, ``[N]`` each (frames of a clip are contiguous)."""
    clip_ids = np.asarray(clip_ids)
    new = np.r_[True, clip_ids[1:] != clip_ids[:-1]]
    run = np.cumsum(new) - 1
    first = np.nonzero(new)[0]
    last = np.r_[first[1:] - 1, len(clip_ids) - 1]
    return first[run], last[run]


def sample_pairs(
    starts: torch.Tensor,
    weight: torch.Tensor,
    first_of: torch.Tensor,
    last_of: torch.Tensor,
    pairs: int,
    far_share: float,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``pairs`` frame pairs of one clip each -> (first [P], second [P], far [P] bool).

    ``first`` is drawn from ``starts`` (frames with a successor in their clip) by ``weight``; the
    second frame is its successor, or, for a share ``far_share`` of the pairs (``far``), any frame of
    the same clip drawn uniformly (``first_of`` / ``last_of``: the clip bounds of every frame)."""
    first = starts[torch.multinomial(weight, pairs, replacement=True, generator=gen)]
    far = torch.rand(pairs, generator=gen) < far_share
    lo, hi = first_of[first], last_of[first]
    anywhere = lo + (torch.rand(pairs, generator=gen) * (hi - lo + 1)).long().clamp(max=hi - lo)
    return first, torch.where(far, anywhere, first + 1), far


def _mean_where(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over ``mask`` (0 when the mask is empty)."""
    return (x * mask).sum() / mask.sum().clamp(min=1)


def train_facenet(
    frames: np.ndarray,
    points: np.ndarray,
    mouth: np.ndarray,
    blink: np.ndarray,
    clip_ids: np.ndarray,
    width: int,
    steps: int,
    pairs: int,
    negatives: int,
    lr: float,
    motion_weight: float,
    far_weight: float,
    blink_oversample: float,
    seed: int,
    progress: bool = True,
) -> FaceNet:
    """Train on uint8 frames [N,S,S,3] with keypoints [N,68,2] in [0,1], mouth [N], blink [N].

    A batch holds ``pairs`` pairs of frames of one clip (``clip_ids`` [N]) under one shared
    augmentation, plus ``negatives`` non-faces. Besides each frame's keypoints, the loss matches the
    pair's keypoint displacement. Half the pairs are consecutive frames (weight ``motion_weight``):
    Exp (Loopy eqs. 4-5) is built from frame-to-frame differences, so an error that flickers between
    neighbouring frames costs more there than a steady one. The other half pair a frame with any frame
    of its clip (weight ``far_weight``): Glo (eq. 3) is the nose's variance over the whole clip, and
    SynthTalk's head sway moves the nose by parallax (``datamodules.synth_faces``), a sub-pixel shift
    against the face that consecutive frames barely show; without these pairs the network shrank the
    nose's displacement from its clip mean to 0.79 of the truth and Glo by 35% (README "SynthTalk
    evaluators"). Frames with a blink are drawn ``blink_oversample`` times as often: blinks are rare
    (one 0.2 s blink every 3-5 s) but carry much of a clip's Exp.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    S = frames.shape[1]
    x_all = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(127.5).sub(1)
    p_all, m_all, b_all = (torch.from_numpy(np.asarray(a, np.float32)) for a in (points, mouth, blink))
    starts = torch.from_numpy(pair_starts(clip_ids))
    if len(starts) == 0:
        raise ValueError("the face network needs clips of at least 2 frames in the training split")
    first_of, last_of = (torch.from_numpy(b) for b in clip_bounds(clip_ids))
    weight = 1.0 + (blink_oversample - 1.0) * ((b_all[starts] > 0.05) | (b_all[starts + 1] > 0.05)).float()
    model = FaceNet(S, width)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=max(steps, 1), pct_start=0.1)
    n = 2 * pairs
    model.train()
    for _ in tqdm(range(steps), desc="SynthTalk face network", unit="step", disable=not progress):
        first, second, far = sample_pairs(starts, weight, first_of, last_of, pairs, FAR_SHARE, gen)
        idx = torch.stack([first, second], 1).flatten()  # pair members side by side
        x, pts = x_all[idx], p_all[idx]
        keep = (torch.rand(pairs, generator=gen) < 0.15).repeat_interleave(
            2
        )  # some pairs as the data shows them
        A = random_similarity(pairs, gen).repeat_interleave(2, 0)
        A[keep] = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        flip = (torch.rand(pairs, generator=gen) < 0.5).repeat_interleave(2) & ~keep
        x, pts = warp(x, pts, A, flip)
        x = torch.where(keep[:, None, None, None], x, colour_jitter(x, gen, repeat=2))
        blur = (torch.rand(pairs, generator=gen) < 0.3).repeat_interleave(2) & ~keep
        sigma = (S * MODERATE_BLUR * torch.rand(pairs, generator=gen)).repeat_interleave(2)
        x = torch.where(blur[:, None, None, None], gaussian_blur(x, sigma), x)
        neg = make_negatives(x_all[torch.randint(0, len(x_all), (negatives,), generator=gen)], gen)
        out = model(torch.cat([x, neg]))
        pred = out["points"][:n]
        moved = ((pred[1::2] - pred[0::2]) - (pts[1::2] - pts[0::2])).abs().mean((1, 2)) * S  # [P] px
        target = torch.cat([torch.ones(n), torch.zeros(negatives)])
        loss = (
            F.l1_loss(pred, pts) * S
            + motion_weight * _mean_where(moved, ~far)
            + far_weight * _mean_where(moved, far)
            + F.binary_cross_entropy_with_logits(out["presence"], target)
            + F.l1_loss(out["mouth"][:n], m_all[idx])
            + F.l1_loss(out["blink"][:n], b_all[idx])
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


__all__ = [
    "FAR_SHARE",
    "HEAVY_BLUR",
    "MODERATE_BLUR",
    "NEGATIVE_KINDS",
    "clip_bounds",
    "colour_jitter",
    "gaussian_blur",
    "make_negatives",
    "pair_starts",
    "random_similarity",
    "sample_pairs",
    "train_facenet",
    "warp",
]
