"""JoyVASA losses (Eqs. 4-8) against their formulas on hand-computed tensors."""

import pytest
import torch

from lightning_modules.joyvasa.face_representation import MotionLayout
from lightning_modules.joyvasa.losses import (
    PAPER_WEIGHTS,
    expression_loss,
    simple_loss,
    smooth_loss,
    total_loss,
    velocity_loss,
)

LAYOUT = MotionLayout(num_kp=1)  # 3 expression numbers + s + t(3) + angles(3) = 10


def quadratic():
    """One channel X_i = i^2 over 4 frames against a zero prediction."""
    target = torch.tensor([0.0, 1.0, 4.0, 9.0]).view(1, 4, 1)
    return torch.zeros_like(target), target


def test_simple_loss_eq4():
    pred, target = quadratic()
    assert simple_loss(pred, target).item() == pytest.approx((0 + 1 + 16 + 81) / 4)


def test_velocity_loss_eq5():
    pred, target = quadratic()  # target velocities 1, 3, 5; prediction still
    assert velocity_loss(pred, target).item() == pytest.approx((1 + 9 + 25) / 3)
    # a constant offset has the same velocity: no velocity loss, but a simple loss
    assert velocity_loss(target + 7.0, target).item() == pytest.approx(0.0)
    assert simple_loss(target + 7.0, target).item() == pytest.approx(49.0)


def test_smooth_loss_eq6_penalises_acceleration_of_prediction():
    pred, target = quadratic()
    assert smooth_loss(target).item() == pytest.approx(4.0)  # second difference of i^2 is 2 everywhere
    assert smooth_loss(torch.arange(5.0).view(1, 5, 1) * 3).item() == pytest.approx(0.0)  # linear motion


def test_expression_loss_eq7_only_sees_expression_channels():
    target = torch.zeros(1, 2, LAYOUT.dim)
    pred = torch.zeros_like(target)
    pred[..., LAYOUT.exp] = torch.tensor([1.0, 2.0, 3.0])
    pred[..., LAYOUT.angles] = 100.0  # pose errors do not count
    assert expression_loss(pred, target, LAYOUT).item() == pytest.approx((1 + 4 + 9) / 3)


def test_total_loss_eq8_weights_and_ablation():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 6, LAYOUT.dim, generator=g), torch.randn(2, 6, LAYOUT.dim, generator=g)
    total, parts = total_loss(pred, target, LAYOUT)
    expect = parts["simple"] + 5.0 * parts["velocity"] + 0.5 * parts["smooth"] + 0.1 * parts["expression"]
    assert PAPER_WEIGHTS == {"velocity": 5.0, "smooth": 0.5, "expression": 0.1}
    assert total.item() == pytest.approx(expect.item())
    no_vel, _ = total_loss(pred, target, LAYOUT, {"velocity": 0.0})
    assert no_vel.item() == pytest.approx((expect - 5.0 * parts["velocity"]).item())
    with pytest.raises(ValueError, match="model.loss"):
        total_loss(pred, target, LAYOUT, {"veloctiy": 1.0})


def test_mask_drops_unreal_frames():
    pred, target = quadratic()
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    assert simple_loss(pred, target, mask).item() == pytest.approx((0 + 1 + 16) / 3)
    assert velocity_loss(pred, target, mask).item() == pytest.approx((1 + 9) / 2)
    assert smooth_loss(target, mask).item() == pytest.approx(4.0)
