"""LivePortrait-form motion (JoyVASA Eq. 1): rotation, keypoint transform, motion layout."""

import pytest
import torch

from lightning_modules.joyvasa.face_representation import (
    MotionLayout,
    headpose_bins_to_degrees,
    keypoints_from_motion,
    rotation_matrix,
    transform_keypoints,
)


def test_rotation_matrix_known_angles():
    z = torch.zeros(())
    assert torch.allclose(rotation_matrix(z, z, z), torch.eye(3))
    x = torch.tensor([[1.0, 0.0, 0.0]])
    # yaw 90 deg turns +x towards -z; roll 90 deg turns +x into +y; pitch 90 deg turns +y into +z
    assert torch.allclose(x @ rotation_matrix(z, z + 90, z), torch.tensor([[0.0, 0.0, -1.0]]), atol=1e-6)
    assert torch.allclose(x @ rotation_matrix(z, z, z + 90), torch.tensor([[0.0, 1.0, 0.0]]), atol=1e-6)
    y = torch.tensor([[0.0, 1.0, 0.0]])
    assert torch.allclose(y @ rotation_matrix(z + 90, z, z), torch.tensor([[0.0, 0.0, 1.0]]), atol=1e-6)


def test_rotation_is_orthonormal():
    g = torch.Generator().manual_seed(0)
    ang = (torch.rand(5, 3, generator=g) - 0.5) * 180
    r = rotation_matrix(*ang.unbind(-1))
    assert torch.allclose(r @ r.transpose(-1, -2), torch.eye(3).expand(5, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(r), torch.ones(5), atol=1e-5)


def test_eq1_on_known_values():
    # x = s * (x_c R + delta) + t with R = I: 2 * ([1,2,3] + [0.5,0,0]) + [1,1,1] = [4,5,7]
    x_c = torch.tensor([[1.0, 2.0, 3.0]])
    out = transform_keypoints(x_c, torch.tensor([2.0]), torch.eye(3), torch.ones(3), torch.tensor([[0.5, 0.0, 0.0]]))
    assert torch.allclose(out, torch.tensor([[4.0, 5.0, 7.0]]))
    # roll 90 deg, s = 1, no delta, t = [0, 0, 2]: [1,0,0] -> [0,1,2]
    r = rotation_matrix(torch.tensor(0.0), torch.tensor(0.0), torch.tensor(90.0))
    out = transform_keypoints(torch.tensor([[1.0, 0.0, 0.0]]), torch.ones(1), r, torch.tensor([0.0, 0.0, 2.0]),
                              torch.zeros(1, 3))
    assert torch.allclose(out, torch.tensor([[0.0, 1.0, 2.0]]), atol=1e-6)


def test_layout_roundtrip_and_flat_motion_matches_eq1():
    lay = MotionLayout(21)
    assert lay.dim == 70  # LivePortrait: 63 expression numbers + scale + t(3) + pitch/yaw/roll
    g = torch.Generator().manual_seed(1)
    exp, s, t, ang = (torch.randn(2, 4, 21, 3, generator=g), torch.rand(2, 4, 1, generator=g) + 0.5,
                      torch.randn(2, 4, 3, generator=g), torch.randn(2, 4, 3, generator=g) * 20)
    flat = lay.pack(exp, s, t, ang)
    parts = lay.split(flat)
    assert torch.equal(parts["exp"], exp) and torch.equal(parts["angles"], ang)
    x_c = torch.randn(2, 21, 3, generator=g)
    kp = keypoints_from_motion(x_c, flat, lay)
    frame = transform_keypoints(x_c[1], s[1, 2], rotation_matrix(*ang[1, 2].unbind(-1)), t[1, 2], exp[1, 2])
    assert kp.shape == (2, 4, 21, 3) and torch.allclose(kp[1, 2], frame, atol=1e-5)
    with pytest.raises(ValueError, match="model.motion.num_kp"):
        lay.split(torch.zeros(3, 69))


def test_headpose_bins():
    logits = torch.full((2, 66), -1e4)
    logits[0, 0], logits[1, 33] = 0.0, 0.0
    assert torch.allclose(headpose_bins_to_degrees(logits), torch.tensor([-97.5, 1.5]))
