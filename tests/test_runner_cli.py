"""`python -m experiments.run` from the shell: config printing and clear errors for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEARCH = f"hydra.searchpath=[file://{Path(__file__).resolve().parent / 'configs'}]"


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "experiments.run", SEARCH, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
                                                       "HOME": str(cwd)})


def test_cfg_job_prints_resolved_variants_without_running(tmp_path):
    r = _run("ablation=toy_sweep", "--cfg", "job", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "name: toy_sweep" in r.stdout and "w/o TSM:" in r.stdout and "model.lr: 0.1" in r.stdout
    assert not (tmp_path / "mlruns.db").exists()


def test_unknown_ablation_lists_the_available_ones(tmp_path):
    r = _run("ablation=no_such_ablation", cwd=tmp_path)
    assert r.returncode != 0
    assert "no_such_ablation" in r.stderr and "Available options" in r.stderr and "toy_sweep" in r.stderr
    assert "Traceback" not in r.stderr


def test_misspelled_key_is_hydras_error_not_a_suite_traceback(tmp_path):
    r = _run("ablation=toy_sweep", "trainer.max_stepz=3", cwd=tmp_path)
    assert r.returncode != 0
    assert "max_stepz" in r.stderr and "Traceback" not in r.stderr


def test_unreachable_tracking_server_stops_before_training(tmp_path):
    r = _run("ablation=toy_sweep", "logger.tracking_uri=http://127.0.0.1:9", cwd=tmp_path)
    assert r.returncode == 2
    assert "http://127.0.0.1:9" in r.stderr + r.stdout and "Nothing was trained" in r.stderr + r.stdout
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.mp4"))


def _one_line_error(r, *needles):
    """A user error: exit 2, one line on stderr naming what is wrong, no traceback."""
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_wrong_type_on_the_command_line_is_refused_before_any_run(tmp_path):
    """Issue 19, item 4: `model.tsm.stride=abc` used to create an MLflow parent and a FAILED child first."""
    r = _run("ablation=toy_sweep", "model.width=abc", cwd=tmp_path)
    _one_line_error(r, "model.width=abc", "expected an integer")
    assert not (tmp_path / "mlruns.db").exists() and not list(tmp_path.rglob("*.ckpt"))


def test_missing_data_root_is_one_line_before_any_run(tmp_path):
    """Issue 19, items 1 and 6: the README's real-data command with a wrong folder."""
    r = _run("data=folder", f"data.root={tmp_path / 'no_videos_here'}", cwd=tmp_path)
    _one_line_error(r, "data.root=", "no_videos_here", "is not a folder", "Expected layout")
    assert not (tmp_path / "mlruns.db").exists()


def test_debug_and_hydra_full_error_show_the_traceback(tmp_path):
    r = _run("ablation=toy_sweep", "model.width=abc", "--debug", cwd=tmp_path)
    assert r.returncode != 0 and "Traceback" in r.stderr and "ConfigError" in r.stderr
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HYDRA_FULL_ERROR": "1"}
    args = [sys.executable, "-m", "experiments.run", SEARCH, "ablation=toy_sweep", "model.width=abc"]
    r = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode != 0 and "Traceback" in r.stderr and "ConfigError" in r.stderr


def test_unknown_ablation_exits_2(tmp_path):
    r = _run("ablation=tsm_strid", cwd=tmp_path)
    assert r.returncode == 2 and "tsm_stride" in r.stderr and "Traceback" not in r.stderr


def test_empty_test_split_is_refused_before_any_run_with_advice_that_works(tmp_path):
    """Issue 19, item 2: a folder whose seeded split leaves no test video (0.1 x 1 rounds to 0)."""
    import numpy as np

    from core.video_io import write_video

    root = tmp_path / "videos"
    tone = (0.3 * np.sin(np.arange(3200) / 7)).astype(np.float32)
    write_video(root / "spk0" / "clip.mp4", np.zeros((5, 16, 16, 3), np.uint8), 25.0, tone)
    r = _run("data=folder", f"data.root={root}", "model=toy", cwd=tmp_path)
    _one_line_error(r, "test split is empty", "set data.test_count=1")
    assert not (tmp_path / "mlruns.db").exists()  # (following the advice: tests/test_data_split_cache.py)
