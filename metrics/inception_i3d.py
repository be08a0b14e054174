"""I3D (Carreira & Zisserman 2017) with the module names of piergiaj/pytorch-i3d, the network of
``i3d_pretrained_400.pt`` that DisCo's ``FVD-3DInception`` loads (``tool/metrics/inception3d.py``) and
cd-fvd wraps. Convolutions and max-pools pad like TensorFlow's "SAME"; the head is DisCo's (1x7x7 average
pool, Logits, mean over time). Used by :mod:`metrics.fvd` (FVD-I).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.weights import load_torch, wrong_file


def _same_pad(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    """TensorFlow "SAME" zero padding of pytorch-i3d (``compute_pad``): per axis, total
    ``max(k - s, 0)`` when the size divides by the stride, else ``max(k - size % s, 0)``; the smaller
    half in front."""
    pads = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class Unit3D(nn.Module):
    """Conv3d (no bias) + BatchNorm3d (eps 1e-5, momentum 0.001) + ReLU with SAME padding; keys ``conv3d``, ``bn``."""

    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), bn: bool = True,
                 relu: bool = True, bias: bool = False):
        super().__init__()
        self.kernel, self.stride, self.relu = tuple(kernel), tuple(stride), relu
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=1e-5, momentum=0.001) if bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_same_pad(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class MaxPool3dSame(nn.MaxPool3d):
    """Max pooling after SAME zero padding (pytorch-i3d ``MaxPool3dSamePadding``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_same_pad(x, self.kernel_size, self.stride))


class InceptionModule(nn.Module):
    """Four branches: 1x1 | 1x1 -> 3x3x3 | 1x1 -> 3x3x3 | max-pool 3x3x3 -> 1x1, concatenated."""

    def __init__(self, cin: int, out: tuple[int, ...]):
        super().__init__()
        self.b0 = Unit3D(cin, out[0])
        self.b1a, self.b1b = Unit3D(cin, out[1]), Unit3D(out[1], out[2], (3, 3, 3))
        self.b2a, self.b2b = Unit3D(cin, out[3]), Unit3D(out[3], out[4], (3, 3, 3))
        self.b3a, self.b3b = MaxPool3dSame((3, 3, 3), (1, 1, 1)), Unit3D(cin, out[5])
        self.out_channels = out[0] + out[2] + out[4] + out[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


#: Inception modules of I3D (Carreira & Zisserman 2017): name -> branch widths; None = a max-pool.
_I3D_BLOCKS = (
    ("MaxPool3d_2a_3x3", ((1, 3, 3), (1, 2, 2))), ("Conv3d_2b_1x1", 64), ("Conv3d_2c_3x3", 192),
    ("MaxPool3d_3a_3x3", ((1, 3, 3), (1, 2, 2))),
    ("Mixed_3b", (64, 96, 128, 16, 32, 32)), ("Mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("MaxPool3d_4a_3x3", ((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", (192, 96, 208, 16, 48, 64)), ("Mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", (128, 128, 256, 24, 64, 64)), ("Mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("MaxPool3d_5a_2x2", ((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", (256, 160, 320, 32, 128, 128)), ("Mixed_5c", (384, 192, 384, 48, 128, 128)),
)


class InceptionI3d(nn.Module):
    """I3D with the module names of piergiaj/pytorch-i3d (``i3d_pretrained_400.pt``, DisCo, cd-fvd).

    ``[B, 3, T, 224, 224]`` in [-1, 1] -> logits ``[B, num_classes]``: the Logits 1x1x1 conv after a
    1x7x7 average pool, averaged over the remaining time steps. Dropout is inactive in eval mode.
    ``width`` scales every channel count (1.0 = the Kinetics network; smaller for stand-ins).
    """

    def __init__(self, num_classes: int = 400, width: float = 1.0):
        super().__init__()
        c = lambda n: max(1, int(round(n * width)))  # noqa: E731
        self.Conv3d_1a_7x7 = Unit3D(3, c(64), (7, 7, 7), (2, 2, 2))
        cin = c(64)
        for name, spec in _I3D_BLOCKS:
            if name.startswith("MaxPool"):
                setattr(self, name, MaxPool3dSame(*spec))
            elif name.startswith("Conv3d"):
                setattr(self, name, Unit3D(cin, c(spec), (3, 3, 3) if name.endswith("3x3") else (1, 1, 1)))
                cin = c(spec)
            else:
                block = InceptionModule(cin, tuple(c(n) for n in spec))
                setattr(self, name, block)
                cin = block.out_channels
        self.avg_pool = nn.AvgPool3d((1, 7, 7), (1, 1, 1))
        self.dropout = nn.Dropout(0.5)
        self.logits = Unit3D(cin, num_classes, bn=False, relu=False, bias=True)
        self.order = ["Conv3d_1a_7x7"] + [name for name, _ in _I3D_BLOCKS]

    def pre_pool(self, x: torch.Tensor) -> torch.Tensor:
        """Mixed_5c output ``[B, 1024, T', 7, 7]`` (every layer before the average pool)."""
        for name in self.order:
            x = getattr(self, name)(x)
        return x

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """DisCo's head: 1x7x7 average pool (piergiaj's original pools 2x7x7), Logits, mean over time."""
        x = self.logits(self.dropout(self.avg_pool(x)))
        return x.squeeze(3).squeeze(3).mean(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pre_pool(x))


def load_inception_i3d(path: str) -> InceptionI3d:
    """Load ``i3d_pretrained_400.pt`` (a plain state dict of pytorch-i3d's InceptionI3d(400)) strictly."""
    state = load_torch(path, "i3d_inception")
    if not isinstance(state, dict):
        raise wrong_file("i3d_inception", path, f"expected a state dict, got {type(state).__name__}")
    model = InceptionI3d(400)
    try:
        model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=True)
    except RuntimeError as e:
        raise wrong_file("i3d_inception", path, f"not a pytorch-i3d InceptionI3d(400) state dict "
                                                f"({str(e).strip().splitlines()[0][:200]})") from e
    return model.eval()


__all__ = ["InceptionI3d", "InceptionModule", "MaxPool3dSame", "Unit3D", "load_inception_i3d"]
