"""Mouth-region loss weights (lightning_modules.blocks.mouth_weights, model.stages[i].lip_weight): the box
of the iBUG-68 mouth points on the latent grid, the weighted diffusion loss, and Loopy reading the key."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDPMScheduler

from lightning_modules.blocks.mouth_weights import mouth_weights
from lightning_modules.sampling import SD15_SCHEDULE, diffusion_loss
from tests.loopy_tiny import make_batch, tiny_module


def face(x0: float, x1: float, y0: float, y1: float) -> torch.Tensor:
    """(68, 2) points: the 20 mouth points (48-67) spread over [x0, x1] x [y0, y1], the rest far away."""
    pts = torch.full((68, 2), 0.05)
    t = torch.linspace(0, 1, 20)
    pts[48:68, 0] = x0 + (x1 - x0) * t
    pts[48:68, 1] = y0 + (y1 - y0) * t.flip(0)
    return pts


def test_the_weights_cover_the_cells_of_the_mouths_box_and_its_margin():
    # mouth x in [0.40, 0.59], y in [0.56, 0.61] on an 8 x 8 grid (cell centres 0.0625, 0.1875, ..., 0.9375):
    # margin 0 keeps the centres inside the box: columns 3-4 (0.4375, 0.5625), row 4 (0.5625);
    # margin 1 grows the box by 1/8 on each side: x [0.275, 0.715] -> columns 2-5, y [0.435, 0.735] -> rows 3-5
    lm = face(0.40, 0.59, 0.56, 0.61)[None, None]
    tight = torch.ones(8, 8)
    tight[4, 3:5] = 4.0
    wide = torch.ones(8, 8)
    wide[3:6, 2:6] = 4.0
    assert torch.equal(mouth_weights(lm, (8, 8), 3.0, margin=0)[0, 0, 0], tight)
    assert torch.equal(mouth_weights(lm, (8, 8), 3.0, margin=1)[0, 0, 0], wide)
    assert mouth_weights(lm, (8, 8), 3.0).shape == (1, 1, 1, 8, 8)


def test_clips_without_keypoints_weigh_every_cell_the_same():
    lm = face(0.40, 0.59, 0.56, 0.61).expand(2, 3, 68, 2)
    w = mouth_weights(lm, (8, 8), 5.0, has=torch.tensor([1.0, 0.0]))
    assert w[0].max() == 6.0 and torch.equal(w[1], torch.ones(3, 1, 8, 8))


def test_mouth_weights_refuse_another_landmark_layout():
    with pytest.raises(ValueError, match=r"\(B, T, 68, 2\) iBUG-68"):
        mouth_weights(torch.rand(1, 2, 98, 2), (8, 8), 3.0)


@pytest.mark.parametrize("gamma", [None, 2.0])
def test_a_weighted_error_costs_its_weight_times_the_plain_error(gamma):
    """One wrong element d of an x0 prediction with weight 1 + w: the loss is (1 + w) d^2 / numel, times
    min(SNR_t, gamma) under Min-SNR (x0 targets weigh the clean-sample error directly)."""
    sched = DDPMScheduler(**{**{k: v for k, v in SD15_SCHEDULE.items() if k not in ("set_alpha_to_one", "steps_offset")},
                             "prediction_type": "sample"})
    target = torch.zeros(1, 4, 8, 8)
    pred = target.clone()
    pred[0, 1, 4, 3] = 0.5
    weights = torch.ones(1, 1, 8, 8)
    weights[0, 0, 4, 3] = 7.0
    t = torch.tensor([600])
    snr = float(sched.alphas_cumprod[600] / (1 - sched.alphas_cumprod[600]))
    scale = 1.0 if gamma is None else min(snr, gamma)
    expected = scale * 7.0 * 0.25 / target.numel()
    assert diffusion_loss(sched, pred, target, t, gamma, weights).item() == pytest.approx(expected, rel=1e-5)
    assert diffusion_loss(sched, pred, target, t, gamma).item() == pytest.approx(expected / 7.0, rel=1e-5)


def test_loopy_weighs_the_mouth_cells_of_each_trained_frame_during_a_stage_with_lip_weight(monkeypatch):
    """The weights Loopy hands to its loss are the mouth boxes of the batch's landmarks: every frame of
    the clip in stage 2, the one picked frame in stage 1; none without the key; no landmarks -> a message."""
    import lightning_modules.loopy.loopy_module as lm_mod
    from experiments.run import stage_loss_keys

    seen = []
    real = lm_mod.diffusion_loss

    def spy(*args):
        seen.append(args[5] if len(args) > 5 else None)
        return real(*args)

    monkeypatch.setattr(lm_mod, "diffusion_loss", spy)
    m = tiny_module()  # 32 px, factor 8: a 4 x 4 latent grid
    batch = make_batch(b=2, t=4)
    # item 0: mouth x [0.30, 0.32], y [0.55, 0.57]; grown by one cell (1/4): x [0.05, 0.57], y [0.30, 0.82],
    # which holds the cell centres 0.125, 0.375 across (columns 0-1) and 0.375, 0.625 down (rows 1-2);
    # item 1: no keypoints
    batch["landmarks"] = face(0.30, 0.32, 0.55, 0.57).expand(2, 4, 68, 2).clone()
    batch["landmark_mask"] = torch.tensor([1.0, 0.0])
    box = torch.ones(4, 4)
    box[1:3, 0:2] = 3.0
    with torch.no_grad():
        for stage, frames in (("stage2", 4), ("stage1", 1)):
            m.set_stage(stage)
            m.model_step(batch)
            assert seen[-1] is None  # without the key: the paper's plain loss
            with stage_loss_keys(m, {"name": stage, "max_steps": 1, "lip_weight": 2}, 0):
                m.model_step(batch)
            w = seen[-1]
            assert w.shape == (2 * frames, 1, 4, 4)
            assert all(torch.equal(w[i, 0], box) for i in range(frames))
            assert torch.equal(w[frames:], torch.ones(frames, 1, 4, 4))
        del batch["landmarks"]
        with stage_loss_keys(m, {"name": "stage1", "max_steps": 1, "lip_weight": 2}, 0), \
                pytest.raises(ValueError, match=r"lip_weight weighs the mouth region by the batch's 'landmarks'"):
            m.model_step(batch)
