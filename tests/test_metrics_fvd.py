"""FVD-I TorchScript loader, FVD-R 3D ResNet-50 checkpoint layout and DisCo preprocessing."""
import numpy as np
import pytest
import torch
from torch import nn

from metrics.base import VideoSkipped
from metrics.fvd import (
    RESNET3D_MEAN,
    FVDIScorer,
    FVDRScorer,
    ResNet3D50,
    load_resnet3d50,
    resnet3d_segments,
    video_clips,
)


class _FakeI3D(nn.Module):
    """Same call signature as StyleGAN-V's i3d_torchscript.pt; output records the flags it got."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 400)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        y = self.proj(x.float().mean(dim=(2, 3, 4)))
        flags = torch.tensor([float(rescale), float(resize), float(return_features)])
        return torch.cat([flags.expand(y.shape[0], 3), y[:, 3:]], dim=1)


def test_i3d_torchscript_loader(tmp_path):
    path = tmp_path / "i3d_torchscript.pt"
    torch.jit.save(torch.jit.script(_FakeI3D()), str(path))
    scorer = FVDIScorer({"i3d": str(path)}, standin=False)
    assert scorer.backbone == str(path)
    video = np.random.default_rng(0).integers(0, 256, (20, 24, 24, 3), dtype=np.uint8)
    f = scorer.features(video)
    assert f.shape == (1, 400)
    np.testing.assert_array_equal(f[0, :3], [1.0, 1.0, 1.0])  # rescale=True, resize=True, return_features=True
    with pytest.raises(VideoSkipped, match="at least 16"):
        scorer.features(video[:10])


def test_video_clips_are_consecutive():
    v = np.arange(40)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    c = video_clips(v, 16, 3)
    assert c.shape == (3, 16, 2, 2, 3) and c[0, 0, 0, 0, 0] == 0 and c[-1, -1, 0, 0, 0] == 39
    np.testing.assert_array_equal(np.diff(c[1, :, 0, 0, 0]), 1)


def _hara_checkpoint(path):
    # Hara et al. layout: DataParallel prefix, a 400-way fc, no num_batches_tracked (PyTorch 0.3 era).
    g = torch.Generator().manual_seed(0)
    sd = {f"module.{k}": torch.randn(v.shape, generator=g) * 0.02 for k, v in ResNet3D50().state_dict().items()
          if not k.endswith("num_batches_tracked")}
    sd["module.fc.weight"], sd["module.fc.bias"] = torch.zeros(400, 2048), torch.zeros(400)
    torch.save({"state_dict": sd, "arch": "resnet-50", "epoch": 200}, path)
    return sd


@pytest.fixture(scope="module")
def hara(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "resnet-50-kinetics.pth"
    return path, _hara_checkpoint(path)


def test_resnet3d50_checkpoint_layout(hara):
    path, sd = hara
    # Shapes of Hara's ResNet-50 (shortcut B, Bottleneck [3, 4, 6, 3]).
    assert sd["module.conv1.weight"].shape == (64, 3, 7, 7, 7)
    assert sd["module.layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1, 1)
    assert sd["module.layer3.5.conv2.weight"].shape == (256, 256, 3, 3, 3)
    assert sd["module.layer4.2.conv3.weight"].shape == (2048, 512, 1, 1, 1)
    assert sum(k.startswith("module.layer3.") and k.endswith("conv1.weight") for k in sd) == 6
    model = load_resnet3d50(str(path))
    assert torch.equal(model.layer2[1].bn3.weight,
                       sd["module.layer2.1.bn3.weight"])
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 16, 32, 32)).shape == (1, 2048)


def test_resnet3d50_missing_key_fails(hara, tmp_path):
    sd = dict(hara[1])
    sd.pop("module.layer1.0.conv2.weight")
    torch.save({"state_dict": sd}, tmp_path / "bad.pth")
    with pytest.raises(RuntimeError, match="resnet3d50"):
        load_resnet3d50(str(tmp_path / "bad.pth"))


def test_disco_preprocessing_and_standin():
    frames = np.full((20, 30, 30, 3), 120, np.uint8)
    segs = resnet3d_segments(frames, size=112)
    assert segs.shape == (2, 3, 16, 112, 112)  # 20 frames -> 2 segments, last one padded
    np.testing.assert_allclose(segs[1, :, -1, 0, 0], 120 - np.asarray(RESNET3D_MEAN), atol=1e-3)
    s = FVDRScorer()
    assert s.backbone == "standin:resnet3d50-w8:seed0" and s.features(frames).shape == (1, 256)
