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
    scorer = FVDIScorer({"i3d": str(path)}, standin=False, reference="styleganv")
    assert scorer.backbone == str(path) and scorer.ddof == 0  # stylegan-v FeatureStats: covariance / N
    assert any("random start" in d for d in scorer.deviations)
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


def test_disco_resize_is_pil_bicubic_on_floats():
    # DisCo make_resizer("PIL", False, "bicubic"): float32 'F' images, no rounding and no clipping, so a
    # hard edge overshoots below 0 and above 255 (cv2 INTER_CUBIC on uint8 saturates to 0..255)
    from PIL import Image

    from metrics.fvd import pil_bicubic_float

    board = (np.indices((24, 24)).sum(0) % 2 * 255).astype(np.uint8)
    frames = np.repeat(board[None, :, :, None], 3, axis=3)
    out = pil_bicubic_float(frames, 112)
    assert out.dtype == np.float32 and out.min() < -1.0 and out.max() > 256.0
    assert not np.allclose(out, np.round(out))
    ref = np.asarray(Image.fromarray(board.astype(np.float32), mode="F").resize((112, 112), Image.BICUBIC))
    np.testing.assert_array_equal(out[0, :, :, 1], ref)
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (17, 40, 56, 3), dtype=np.uint8)
    segs = resnet3d_segments(video, size=112)
    expect = np.stack([np.stack([np.asarray(Image.fromarray(f[:, :, c].astype(np.float32), mode="F")
                                            .resize((112, 112), Image.BICUBIC)) for c in range(3)], -1)
                       for f in video]) - np.asarray(RESNET3D_MEAN, np.float32)
    np.testing.assert_allclose(segs[0].transpose(1, 2, 3, 0), expect[:16], atol=1e-4)
    np.testing.assert_allclose(segs[1, :, 0].transpose(1, 2, 0), expect[16], atol=1e-4)


def test_fvd_i_default_is_disco_whole_video_inception_i3d():
    from metrics.fvd import InceptionI3d, disco_i3d_input

    s = FVDIScorer()
    assert s.reference == "disco" and s.backbone == "standin:inception-i3d-w0.125:seed0" and s.ddof == 1
    assert "FVD-3DInception" in s.protocol and s.deviations == ()
    video = np.random.default_rng(1).integers(0, 256, (9, 40, 48, 3), dtype=np.uint8)
    x = disco_i3d_input(video)
    assert x.shape == (1, 3, 9, 224, 224) and float(x.min()) < -0.99 and float(x.max()) > 0.99
    f = s.features(video)  # a video shorter than 16 frames is one clip too
    assert f.shape == (1, 400) and np.isfinite(f).all()
    with torch.no_grad():
        np.testing.assert_allclose(f, s.model(x).numpy(), rtol=1e-5, atol=1e-6)
    # the full network's Kinetics layout (pytorch-i3d key names)
    sd = InceptionI3d(400).state_dict()
    assert sd["Conv3d_1a_7x7.conv3d.weight"].shape == (64, 3, 7, 7, 7)
    assert sd["Mixed_5c.b1b.conv3d.weight"].shape == (384, 192, 3, 3, 3)
    assert sd["logits.conv3d.weight"].shape == (400, 1024, 1, 1, 1) and "logits.conv3d.bias" in sd
    assert "Mixed_4f.b3b.bn.running_var" in sd and not any(k.startswith("logits.bn") for k in sd)
    with pytest.raises(ValueError, match="reference"):
        FVDIScorer(reference="tats")
