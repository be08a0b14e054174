"""The README's test markers mark real tests (issue 17, item 7): ``pytest -m slow`` runs the main job,
``pytest -m gpu`` the CUDA tests, and without a CUDA device ``-m gpu`` stops with a message."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO


def _pytest(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), **env}, capture_output=True, text=True,
                          timeout=600)


def test_slow_and_gpu_markers_collect_the_main_job_and_the_cuda_tests():
    p = _pytest("--co", "-q", "-m", "slow or gpu", "tests/test_main_job.py", "tests/test_gpu.py")
    ids = [ln for ln in p.stdout.splitlines() if "::" in ln]
    assert any(i.startswith("tests/test_main_job.py::") for i in ids), p.stdout[-2000:]
    for model in ("loopy", "mcdm", "joyvasa"):
        assert f"tests/test_gpu.py::test_{model}_trains_and_samples_in_bf16_on_cuda" in ids
    assert "tests/test_gpu.py::test_metrics_on_cuda_match_cpu" in ids


def test_gpu_tests_without_a_cuda_device_stop_with_a_message():
    p = _pytest("-q", "-m", "gpu", "tests/test_gpu.py", CUDA_VISIBLE_DEVICES="")
    assert p.returncode == 4, p.stdout[-2000:] + p.stderr[-2000:]      # pytest's usage error, not "skipped"
    assert "finds no CUDA device" in p.stderr and "-m 'not gpu'" in p.stderr
