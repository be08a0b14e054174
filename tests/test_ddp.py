"""trainer=ddp on CPU: two gloo processes with half the batch each follow the same trajectory as one
process with the whole batch (issue: scale-out through Lightning strategies, not home-made code)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

SCRIPT = Path(__file__).with_name("ddp_equivalence.py")


def _train(mode: str, out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(SCRIPT.parents[1])}
    r = subprocess.run([sys.executable, str(SCRIPT), mode, str(out)], capture_output=True, text=True, timeout=300,
                       env=env, cwd=SCRIPT.parents[1])
    assert r.returncode == 0, r.stderr[-3000:]
    return torch.load(out, weights_only=False)


def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path):
    one = _train("single", tmp_path / "single.pt")
    ddp = _train("ddp", tmp_path / "ddp.pt")
    assert ddp["world_size"] == 2 and ddp["strategy"] == "DDPStrategy" and one["world_size"] == 1
    assert len(one["losses"]) == len(ddp["losses"]) == 4
    torch.testing.assert_close(torch.tensor(ddp["losses"]), torch.tensor(one["losses"]), rtol=1e-5, atol=1e-6)
    assert one["losses"][-1] < one["losses"][0]  # it did learn
    for k, v in one["weights"].items():
        torch.testing.assert_close(ddp["weights"][k], v, rtol=1e-5, atol=1e-6)
