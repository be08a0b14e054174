"""Temporal segment module (TSM), Loopy §3.2, Equation 2.

The preceding frames (newest first) are cut into ``num_segments`` segments; segment k (k = 0 the
closest) covers ``s * r**k`` frames and is abstracted into ``s`` motion frames. Output element i
(segment k = i // s) is

    c_mf,i^o = c_mf[ sum_{j<k} r**j * s  +  r**k * (i mod s) ]          (Eq. 2, uniform sampling)

With the paper's default s = 4, r = 2 and 5 segments, 124 preceding frames become 20 motion frames.
"""

from __future__ import annotations

import torch
from torch import nn

ABSTRACTIONS = ("uniform", "mean", "random")


def segment_starts(stride: int, expand_ratio: int, num_segments: int) -> list[int]:
    """First frame index of every segment (Eq. 2's ``sum_{j<k} r^j * s``)."""
    return [stride * sum(expand_ratio ** j for j in range(k)) for k in range(num_segments)]


def coverage(stride: int, expand_ratio: int, num_segments: int) -> int:
    """Number of preceding frames the module covers: ``s * sum_k r^k`` (124 for 4, 2, 5)."""
    return stride * sum(expand_ratio ** k for k in range(num_segments))


def segment_indices(stride: int, expand_ratio: int, num_segments: int) -> list[int]:
    """Eq. 2 with uniform sampling: the index of every output motion frame, newest first."""
    starts = segment_starts(stride, expand_ratio, num_segments)
    return [starts[i // stride] + expand_ratio ** (i // stride) * (i % stride)
            for i in range(stride * num_segments)]


class TemporalSegmentModule(nn.Module):
    """Abstracts the preceding frames into ``s * num_segments`` motion frames (Loopy §3.2, Eq. 2).

    Each output frame stands for a window of ``r**k`` consecutive frames of segment k; the window is
    abstracted by its first frame (``uniform``, Eq. 2, the default), its mean (``mean``) or a random
    member (``random``: drawn anew per call in training, the window's first frame in eval so sampling
    is deterministic). With ``enabled=False`` (the "w/o TSM" ablation) it keeps the newest
    ``plain_frames`` frames.

    Args:
        stride: s, abstract frames per segment.
        expand_ratio: r, growth of the segment length.
        num_segments: number of segments.
        abstraction: 'uniform' | 'mean' | 'random'.
        enabled: False keeps the newest ``plain_frames`` frames instead.
        plain_frames: motion frames used when the module is disabled (4 in the paper's ablation).
    """

    def __init__(self, stride: int = 4, expand_ratio: int = 2, num_segments: int = 5,
                 abstraction: str = "uniform", enabled: bool = True, plain_frames: int = 4):
        super().__init__()
        for key, value in (("stride", stride), ("expand_ratio", expand_ratio), ("num_segments", num_segments),
                           ("plain_frames", plain_frames)):
            if int(value) < 1:
                raise ValueError(f"model.tsm.{key} must be a positive integer, got {value!r}")
        if abstraction not in ABSTRACTIONS:
            raise ValueError(f"model.tsm.abstraction must be one of {ABSTRACTIONS}, got {abstraction!r}")
        self.stride, self.expand_ratio, self.num_segments = int(stride), int(expand_ratio), int(num_segments)
        self.abstraction, self.enabled, self.plain_frames = abstraction, bool(enabled), int(plain_frames)
        self.register_buffer("indices", torch.tensor(segment_indices(self.stride, self.expand_ratio,
                                                                     self.num_segments)), persistent=False)

    @property
    def num_input_frames(self) -> int:
        """Preceding frames the module reads (124 for the default)."""
        if not self.enabled:
            return self.plain_frames
        return coverage(self.stride, self.expand_ratio, self.num_segments)

    @property
    def num_output_frames(self) -> int:
        """Motion frames handed to the reference net (20 for the default)."""
        return self.stride * self.num_segments if self.enabled else self.plain_frames

    def window_sizes(self) -> torch.Tensor:
        """(num_output_frames,) frames each output stands for: r**k for segment k."""
        k = torch.arange(self.num_output_frames) // self.stride
        return self.expand_ratio ** k

    def forward(self, frames: torch.Tensor, mask: torch.Tensor | None = None):
        """:param frames: (B, N, ...) preceding frames (latents), newest first, N >= num_input_frames
        (shorter inputs are zero-padded at the old end, as frames before a video's start are zeros).
        :param mask: (B, N) 1 where a frame is real, or None.
        :returns: (motion frames (B, M, ...), mask (B, M)) with M = num_output_frames."""
        b, n = frames.shape[:2]
        need = self.num_input_frames
        if mask is None:
            mask = torch.ones(b, n, device=frames.device, dtype=frames.dtype)
        if n < need:
            pad = frames.new_zeros((b, need - n) + frames.shape[2:])
            frames, mask = torch.cat([frames, pad], 1), torch.cat([mask, mask.new_zeros(b, need - n)], 1)
        frames, mask = frames[:, :need], mask[:, :need].to(frames.dtype)
        if not self.enabled:
            return frames, mask
        idx = self.indices.to(frames.device)
        if self.abstraction == "uniform" or (self.abstraction == "random" and not self.training):
            return frames[:, idx], mask[:, idx]
        sizes = self.window_sizes().to(frames.device)
        if self.abstraction == "random":
            offset = (torch.rand(b, idx.numel(), device=frames.device) * sizes).long()
            pick = idx[None] + offset
            gather = pick.view(b, -1, *([1] * (frames.dim() - 2))).expand(-1, -1, *frames.shape[2:])
            return frames.gather(1, gather), mask.gather(1, pick)
        # mean pooling over each output's window of r**k frames
        outs, masks = [], []
        for start, size in zip(idx.tolist(), sizes.tolist()):
            outs.append(frames[:, start:start + size].mean(1))
            masks.append(mask[:, start:start + size].amax(1))
        return torch.stack(outs, 1), torch.stack(masks, 1)
