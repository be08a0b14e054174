"""The speed measure behind Loopy Tables 5-6 (experiment.measure: speed): what is timed and how the
columns follow from it. Bounds only: wall times are not asserted (benchmarks hold those)."""

from __future__ import annotations

import time

import pytest
import torch
from omegaconf import OmegaConf

from experiments.timing import measure_generation, speed_row

STEPS, FRAMES, FPS, SLEEP = 5, 25, 25.0, 0.002


class _Denoiser(torch.nn.Module):
    def forward(self, x):
        time.sleep(SLEEP)
        return x


class _Generator(torch.nn.Module):
    """Calls its denoiser STEPS times per item and returns a 1-s video."""

    def __init__(self):
        super().__init__()
        self.denoiser, self.calls = _Denoiser(), 0

    def predict_step(self, batch, i):
        x = torch.zeros(1)
        for _ in range(STEPS):
            x = self.denoiser(x)
            self.calls += 1
        return {"video": torch.zeros(1, FRAMES, 3, 4, 4)}


class _Data:
    def prepare_data(self):
        pass

    def predict_dataloader(self):
        return [{"fps": torch.tensor([FPS])}] * 3


def test_denoising_steps_are_the_denoiser_calls():
    module = _Generator()
    out = measure_generation(module, _Data(), items=2, denoiser="denoiser")
    assert module.calls == 2 * STEPS and out["items"] == 2
    assert out["s_per_denoising_step"] >= SLEEP
    # generation time covers every step; the video lasts FRAMES / FPS = 1 s per item
    assert out["RTF"] >= STEPS * SLEEP and out["s_per_item"] == pytest.approx(out["RTF"] * FRAMES / FPS)
    assert not module.denoiser._forward_hooks and not module.denoiser._forward_pre_hooks  # hooks removed


def test_speed_row_columns_follow_from_the_measure():
    cfg = OmegaConf.create({"experiment": {"speed": {"num_items": 1, "denoiser": "denoiser"}},
                            "model": {"sampling": {"num_steps": 25}}})
    row = speed_row(cfg, _Generator(), _Data())
    assert row["Cost/clip"] == pytest.approx(25 * row["s/step"])
    assert row["Cost/15s"] == pytest.approx(15 * row["RTF"])
