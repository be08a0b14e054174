"""Building a model or a stand-in metric backbone leaves the run's random state alone (issue 17, item 3).

The runner seeds every variant (``pl.seed_everything(seed)``) and then builds the model; a module that
seeds the global generator while it is built would give every entry of ``seeds=[0,1,2]`` the same
noise, timesteps, dropout and data order, and seed-pooled intervals would be too narrow."""

from __future__ import annotations

import importlib

import lightning as L
import pytest
import torch

from tests.loopy_tiny import tiny_kwargs
from tests.test_mcdm_module import mcdm_kwargs

torch.set_num_threads(1)


def _build_loopy():
    from lightning_modules.loopy import LoopyModule

    return LoopyModule(**tiny_kwargs())


def _build_mcdm():
    from lightning_modules.mcdm import MCDMModule

    return MCDMModule(**mcdm_kwargs())


def _scorer(target: str):
    module, name = target.split(":")
    return lambda: getattr(importlib.import_module(module), name)()


def _draws_after_building(build, seed: int) -> torch.Tensor:
    """As the runner does it: seed the variant, build the model, then draw (noise, timesteps, dropout)."""
    L.seed_everything(seed, verbose=False)
    build()
    return torch.cat([torch.randn(4), torch.randint(0, 1000, (4,)).float(), torch.rand(4)])


@pytest.mark.parametrize("build", [_build_mcdm, _build_loopy], ids=["mcdm", "loopy"])
def test_two_seeds_give_different_training_draws_after_the_model_is_built(build):
    assert not torch.equal(_draws_after_building(build, 0), _draws_after_building(build, 1))
    assert torch.equal(_draws_after_building(build, 1), _draws_after_building(build, 1))


STANDINS = {"FID": _scorer("metrics.fid:FIDScorer"), "FVD-I": _scorer("metrics.fvd:FVDIScorer"),
            "FVD-R": _scorer("metrics.fvd:FVDRScorer"), "E-FID": _scorer("metrics.efid:EFIDScorer")}


@pytest.mark.parametrize("name", list(STANDINS))
def test_stand_in_backbones_leave_the_global_generator_untouched(name, monkeypatch):
    for var in ("SUITE_FID_INCEPTION", "SUITE_I3D", "SUITE_RESNET3D50", "SUITE_DEEP3D_RECON"):
        monkeypatch.delenv(var, raising=False)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    scorer = STANDINS[name]()
    assert scorer.backbone.startswith("standin:")
    assert torch.equal(torch.get_rng_state(), before)


def test_stand_in_weights_are_the_seed0_ones():
    """The fix changes where the seed lives, not the stand-in: the same weights as torch.manual_seed(0)."""
    from metrics.fid import FIDScorer, SmallInceptionStandin

    torch.manual_seed(0)
    want = SmallInceptionStandin().state_dict()
    torch.manual_seed(5)
    got = FIDScorer().model.state_dict()
    assert all(torch.equal(want[k], got[k]) for k in want)


@pytest.mark.parametrize("build", [_build_mcdm, _build_loopy, *STANDINS.values()],
                         ids=["mcdm", "loopy", *STANDINS])
def test_building_never_reseeds_the_cuda_generators(build, monkeypatch):
    """torch.manual_seed also reseeds every CUDA generator (or queues that until CUDA starts): on a GPU
    every seed of a run would then draw the same noise. Building must not call it."""
    calls = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: calls.append(seed))
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda seed: calls.append(seed))
    build()
    assert calls == []
