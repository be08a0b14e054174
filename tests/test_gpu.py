"""GPU tests (``pytest -m gpu``): each model's training stages and sampling in bf16 autocast on CUDA at
small width, through Lightning with the suite's own ``trainer=gpu`` config (``precision: bf16-mixed``),
and the CUDA paths of the metrics against their CPU results.

Deselected by default (setup.cfg). On a machine without CUDA, ``pytest -m gpu`` stops with a message
naming the missing device (tests/conftest.py) instead of skipping.
"""

from __future__ import annotations

import math
import shutil

import pytest
import torch
from torch.utils.data import DataLoader

from tests.data_fixtures import TINY, synth_root  # noqa: F401  (fixture)

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def gpu_trainer_cfg():
    from hydra import compose, initialize_config_dir

    from tests.conftest import REPO

    with initialize_config_dir(str(REPO / "experiments" / "configs"), version_base="1.3"):
        cfg = compose("run", overrides=["trainer=gpu", "+trainer.enable_progress_bar=false"])
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.precision == "bf16-mixed"
    return cfg


def _trainer(cfg, max_steps: int, root):
    from experiments.run import make_trainer

    return make_trainer(cfg, max_steps, root_dir=root)


def _fit_stages(module, cfg, stages, batches, root) -> set[str]:
    """Every stage in turn as the runner does it; returns the parameter names the stages changed."""
    before = {k: v.detach().clone() for k, v in module.state_dict().items()}
    for stage in stages:
        module.set_stage(stage)
        _trainer(cfg, 2, root / stage).fit(module, DataLoader(batches, batch_size=None))
    after = module.state_dict()
    assert all(torch.isfinite(v.float()).all() for v in after.values() if v.is_floating_point())
    return {k for k in before if not torch.equal(before[k].cpu(), after[k].cpu())}


def _predict(module, cfg, item, root) -> torch.Tensor:
    out = _trainer(cfg, 1, root / "predict").predict(module, DataLoader([item], batch_size=None))
    video = out[0]["video"].float()
    assert torch.isfinite(video).all() and video.min() >= -1 and video.max() <= 1
    return video


def _item(frames: int, size: int = 32, audio_frames: int | None = None) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"reference": torch.rand(1, 3, size, size, generator=g) * 2 - 1,
            "audio": torch.randn(1, (audio_frames or frames) * 640, generator=g) * 0.1,
            "num_frames": torch.tensor([frames]), "fps": torch.tensor([25.0]), "meta": [{"video_id": "x"}]}


def test_loopy_trains_and_samples_in_bf16_on_cuda(gpu_trainer_cfg, tmp_path):
    from tests.loopy_tiny import make_batch, tiny_module

    m = tiny_module(sampling={"num_steps": 2})
    changed = _fit_stages(m, gpu_trainer_cfg, ("stage1", "stage2"),
                          [make_batch(b=2, seed=i) for i in range(2)], tmp_path)
    assert any(k.startswith("dual_unet.temporal.") for k in changed)
    assert any("denoising_unet" in k for k in changed)
    assert _predict(m, gpu_trainer_cfg, _item(6), tmp_path).shape == (1, 6, 3, 32, 32)


def test_mcdm_trains_and_samples_in_bf16_on_cuda(gpu_trainer_cfg, tmp_path):
    from tests.test_mcdm_module import make_batch, make_module

    m = make_module()
    changed = _fit_stages(m, gpu_trainer_cfg, ("stage1", "stage2", "stage3"),
                          [make_batch() for _ in range(2)], tmp_path)
    for part in ("archived.", "unet.unet.", "motion_prior.", "unet.temporal.", "unet.present_ref."):
        assert any(k.startswith(part) for k in changed), part
    assert _predict(m, gpu_trainer_cfg, _item(6, audio_frames=8), tmp_path).shape == (1, 6, 3, 32, 32)


def test_joyvasa_trains_and_samples_in_bf16_on_cuda(gpu_trainer_cfg, tmp_path):
    from tests.test_joyvasa_module import SIZE, make_batch, make_module

    m = make_module()
    changed = _fit_stages(m, gpu_trainer_cfg, ("render", "motion"),
                          [make_batch(b=2, seed=i) for i in range(2)], tmp_path)
    assert {k.split(".")[0] for k in changed} >= {"renderer", "dit"}
    assert _predict(m, gpu_trainer_cfg, _item(15, SIZE), tmp_path).shape == (1, 15, 3, SIZE, SIZE)


def test_building_models_and_stand_ins_leaves_the_cuda_generator_alone():
    """Issue 17, item 3: whatever is built after the runner seeded a variant must not reseed the GPU."""
    from lightning_modules.loopy import LoopyModule
    from lightning_modules.mcdm import MCDMModule
    from metrics.fid import FIDScorer
    from metrics.fvd import FVDRScorer
    from tests.loopy_tiny import tiny_kwargs
    from tests.test_mcdm_module import mcdm_kwargs

    torch.cuda.manual_seed(1234)
    state = torch.cuda.get_rng_state()
    for build in (lambda: MCDMModule(**mcdm_kwargs()), lambda: LoopyModule(**tiny_kwargs()),
                  lambda: FIDScorer(device="cuda"), lambda: FVDRScorer(device="cuda")):
        build()
        assert torch.equal(torch.cuda.get_rng_state(), state)


@pytest.fixture
def exact_cuda_matmuls():
    """TF32 off while comparing CUDA with CPU numbers (it is on by default for cuDNN convolutions)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_metrics_on_cuda_match_cpu(synth_root, tmp_path, exact_cuda_matmuls):  # noqa: F811
    """`metrics.evaluate --device cuda`: every scorer with a CUDA path gives the CPU numbers."""
    from datamodules.synthtalk import SynthTalk
    from metrics.evaluate import evaluate_folders

    videos = sorted((SynthTalk(synth_root, **TINY).folder / "videos").glob("*.mp4"))
    assert len(videos) >= 3
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    for i, v in enumerate(videos):  # each prediction is another video of the set, under this one's name
        shutil.copy(v, gt / v.name)
        shutil.copy(videos[(i + 1) % len(videos)], pred / v.name)
    names = ["FID", "FVD-I", "FVD-R", "E-FID", "Sync-C", "Sync-D", "Smo", "SSIM"]
    kw = dict(metrics=names, n_boot=20, progress=False, preset="tiny")
    cpu = evaluate_folders(pred, gt, device="cpu", **kw).summary
    cuda = evaluate_folders(pred, gt, device="cuda", **kw).summary
    for name in names:
        assert cuda[name]["backbone"] == cpu[name]["backbone"], name
        a, b = cpu[name]["mean"], cuda[name]["mean"]
        assert math.isnan(a) == math.isnan(b), (name, a, b)
        if not math.isnan(a):
            assert b == pytest.approx(a, rel=1e-2, abs=1e-3), (name, a, b)
    for name in ("FID", "FVD-I", "FVD-R", "E-FID", "SSIM"):
        assert math.isfinite(cuda[name]["mean"]), name
