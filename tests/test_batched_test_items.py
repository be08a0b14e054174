"""Test items sampled side by side (``data.test_batch_size`` > 1, 16 on SynthTalk) do not leak into each
other: with the same random draws, item 0 of a batch is the same video whatever item 1 is, and item 1
follows its own reference. A renderer that drew every item from the first reference, or a norm or an
attention across the batch, turns this red (JoyVASA once failed every SynthTalk variant this way)."""

from __future__ import annotations

import pytest
import torch

SIZE, FRAMES = 32, 6


def _loopy():
    from tests.loopy_tiny import tiny_module, wake_zero_inits

    m = tiny_module()
    wake_zero_inits(m)  # the audio and temporal layers start at zero: wake them so they act on the items
    return m


def _mcdm():
    from tests.test_mcdm_module import make_module

    return make_module()


def _joyvasa():
    from tests.test_joyvasa_module import make_module

    return make_module()


@pytest.mark.parametrize("build", [_loopy, _mcdm, _joyvasa], ids=["loopy", "mcdm", "joyvasa"])
def test_items_of_a_batch_are_generated_independently(build):
    module = build().eval()
    g = torch.Generator().manual_seed(3)
    refs = torch.rand(3, 3, SIZE, SIZE, generator=g) * 2 - 1
    audio = torch.randn(2, (FRAMES + 4) * 640, generator=g)

    def videos(second: int) -> torch.Tensor:
        torch.manual_seed(0)
        batch = {"reference": refs[[0, second]], "audio": audio, "num_frames": torch.tensor([FRAMES, FRAMES]),
                 "fps": 25.0, "meta": [{"video_id": "a"}, {"video_id": "b"}]}
        with torch.no_grad():
            return module.predict_step(batch, 0)["video"]

    a, b = videos(1), videos(2)
    assert a.shape == (2, FRAMES, 3, SIZE, SIZE)
    assert torch.allclose(a[0], b[0], atol=1e-5)          # item 0 does not see item 1
    assert not torch.allclose(a[1], b[1], atol=1e-3)      # item 1 follows its own reference
