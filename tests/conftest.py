"""Shared test fixtures: CPU only, one thread, a Hydra compose helper over the suite's configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
TEST_CONFIGS = Path(__file__).resolve().parent / "configs"

torch.set_num_threads(1)
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture
def compose():
    """compose(overrides) -> the runner's config, with the test-only configs on the search path."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    def _compose(overrides=(), with_test_configs=True):
        ov = list(overrides)
        if with_test_configs:
            ov.append(f"hydra.searchpath=[file://{TEST_CONFIGS}]")
        with initialize_config_dir(str(REPO / "experiments" / "configs"), version_base="1.3"):
            return hydra_compose("run", overrides=ov, return_hydra_config=False)

    return _compose


@pytest.hookimpl(trylast=True)  # after `-m` has deselected what it deselects
def pytest_collection_modifyitems(config, items):
    """`pytest -m gpu` without a CUDA device stops with one clear message instead of skipping silently."""
    if config.option.collectonly or not any(item.get_closest_marker("gpu") for item in items):
        return
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "a CPU-only build"
        raise pytest.UsageError(
            f"GPU tests were selected (-m gpu) but torch {torch.__version__} ({build}) finds no CUDA device "
            f"on this machine. Run them on a machine with an NVIDIA GPU, or leave them out with "
            f"-m 'not gpu' (the default).")
