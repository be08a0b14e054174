"""Motion-diffusion losses (JoyVASA §3.3.2, Eqs. 4-8).

All act on clean motion over both windows, X^0_{-W_pre:W_cur}, shaped (B, N, D) with N = W_pre + W_cur.
``||.||^2`` is taken as the mean of squared elements (over batch, frames and channels), so each term
stays on the same scale whatever the window length. An optional ``mask`` (B, N) marks real frames
(random truncation, §3.3.1); a difference counts only where every frame it touches is real.
"""

from __future__ import annotations

import torch

from lightning_modules.joyvasa.face_representation import MotionLayout

# The paper's weights (§4.2): lambda_vel = 5.0, lambda_smooth = 0.5, lambda_exp = 0.1
PAPER_WEIGHTS = {"velocity": 5.0, "smooth": 0.5, "expression": 0.1}


def _masked_mean_sq(diff: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return diff.pow(2).mean()
    m = mask.to(diff.dtype)[..., None].expand_as(diff)
    return (diff.pow(2) * m).sum() / m.sum().clamp_min(1.0)


def _frames_mask(mask: torch.Tensor | None, k: int) -> torch.Tensor | None:
    """Validity of k-th order differences: all of frames i..i+k real."""
    if mask is None:
        return None
    out = mask[:, : mask.shape[1] - k]
    for j in range(1, k + 1):
        out = out * mask[:, j: mask.shape[1] - k + j]
    return out


# Eq. 4: L_simple = ||X^0 - X_hat^0||^2
def simple_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    return _masked_mean_sq(target - pred, mask)


# Eq. 5: L_vel = ||(X_{i+1} - X_i) - (X_hat_{i+1} - X_hat_i)||^2
def velocity_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    return _masked_mean_sq(target.diff(dim=1) - pred.diff(dim=1), _frames_mask(mask, 1))


# Eq. 6: L_smooth = ||X_hat_{i+2} - 2 X_hat_{i+1} + X_hat_i||^2 (acceleration of the prediction only)
def smooth_loss(pred: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    return _masked_mean_sq(pred[:, 2:] - 2 * pred[:, 1:-1] + pred[:, :-2], _frames_mask(mask, 2))


# Eq. 7: L_exp = ||delta^0 - delta_hat^0||^2 (the expression-delta channels only)
def expression_loss(pred: torch.Tensor, target: torch.Tensor, layout: MotionLayout,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
    return _masked_mean_sq(target[..., layout.exp] - pred[..., layout.exp], mask)


# Eq. 8: L_total = L_simple + lambda_vel L_vel + lambda_smooth L_smooth + lambda_exp L_exp
def total_loss(pred: torch.Tensor, target: torch.Tensor, layout: MotionLayout, weights: dict | None = None,
               mask: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """:returns: (L_total, {simple, velocity, smooth, expression}) -- the parts unweighted.
    A weight of 0 drops its term (the loss ablation)."""
    w = {**PAPER_WEIGHTS, **dict(weights or {})}
    unknown = set(w) - set(PAPER_WEIGHTS)
    if unknown:
        raise ValueError(f"model.loss: unknown weight(s) {sorted(unknown)}; use {sorted(PAPER_WEIGHTS)}")
    if pred.shape != target.shape or pred.dim() != 3:
        raise ValueError(f"motion prediction {tuple(pred.shape)} and target {tuple(target.shape)} must both be (B, N, D)")
    parts = {"simple": simple_loss(pred, target, mask), "velocity": velocity_loss(pred, target, mask),
             "smooth": smooth_loss(pred, mask), "expression": expression_loss(pred, target, layout, mask)}
    total = parts["simple"] + sum(float(w[k]) * parts[k] for k in PAPER_WEIGHTS)
    return total, parts
