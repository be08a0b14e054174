"""E-FID: Deep3DFaceRecon checkpoint layout (net_recon, 257 coefficients), exp = coeffs[80:144]."""
import numpy as np
import pytest
import torch

from metrics.efid import EFIDScorer, ReconNetWrapper, expression_coeffs, load_deep3d_recon


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "epoch_20.pth"
    return path, _checkpoint(path)


def _checkpoint(path):
    g = torch.Generator().manual_seed(0)
    sd = {k: (torch.randn(v.shape, generator=g) * 0.02 if v.is_floating_point() else v)
          for k, v in ReconNetWrapper("resnet50").state_dict().items()}
    for k in sd:
        if k.endswith("running_var"):
            sd[k] = sd[k].abs() + 1
    torch.save({"net_recon": sd, "epoch": 20}, path)
    return sd


def test_checkpoint_keys_and_expression_slice(ckpt):
    path, sd = ckpt
    assert "backbone.layer4.2.conv3.weight" in sd and not any(k.startswith("backbone.fc") for k in sd)
    heads = [sd[f"final_layers.{i}.weight"].shape[0] for i in range(7)]
    assert heads == [80, 64, 80, 3, 27, 2, 1] and sum(heads) == 257
    model = load_deep3d_recon(str(path))
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        coeffs = model(x)
        exp_head = model.final_layers[1](model.backbone(x)[:, :, None, None]).flatten(1)
    assert coeffs.shape == (2, 257)
    torch.testing.assert_close(expression_coeffs(coeffs), exp_head)
    s = EFIDScorer({"deep3d_recon": str(path)}, standin=False, max_frames=2, size=64)
    assert s.features(np.zeros((5, 48, 48, 3), np.uint8)).shape == (2, 64)


def test_key_mismatch_fails(ckpt, tmp_path):
    sd = dict(ckpt[1])
    sd["final_layers.1.w"] = sd.pop("final_layers.1.weight")
    torch.save({"net_recon": sd}, tmp_path / "bad.pth")
    with pytest.raises(RuntimeError, match="ReconNetWrapper"):
        load_deep3d_recon(str(tmp_path / "bad.pth"))


def test_standin_label():
    s = EFIDScorer(max_frames=3)
    assert s.backbone == "standin:deep3d-reconnet-resnet18-112px:seed0"
    assert s.features(np.zeros((10, 32, 32, 3), np.uint8)).shape == (3, 64)
