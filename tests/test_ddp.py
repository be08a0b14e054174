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


def test_runner_under_ddp_tracks_once_and_samples_on_every_rank(tmp_path):
    """`experiments.run trainer=ddp`: Lightning's launcher re-runs the command as rank 1; only rank 0 may
    create MLflow runs, write the run state and score, while both ranks train and sample their share."""
    from mlflow.tracking import MlflowClient

    repo = SCRIPT.parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo)}
    r = subprocess.run([sys.executable, "-m", "experiments.run", "ablation=toy_sweep", "trainer=ddp",
                        "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true",
                        f"paths.root_dir={tmp_path}", f"logger.tracking_uri=sqlite:///{tmp_path}/mlruns.db",
                        "eval.n_boot=100", "build_reports=false", "+trainer.enable_progress_bar=false",
                        f"hydra.searchpath=[file://{repo / 'tests' / 'configs'}]"],
                       capture_output=True, text=True, timeout=300, env=env, cwd=repo)
    assert r.returncode == 0, r.stderr[-3000:]
    c = MlflowClient(f"sqlite:///{tmp_path}/mlruns.db")
    runs = c.search_runs([c.get_experiment_by_name("talking-portrait-suite").experiment_id])
    got = sorted((x.data.tags["suite.kind"], x.data.tags.get("suite.variant", x.data.tags.get("suite.control", "")),
                  x.info.status) for x in runs)
    controls = [("control", c, "FINISHED") for c in sorted(("ground_truth", "audio_shuffled", "reference_swapped",
                                                             "reference_still"))]
    assert got == [*controls, ("parent", "", "FINISHED"), ("variant", "Loopy (Full)", "FINISHED"),
                   ("variant", "broken", "FAILED"), ("variant", "w/o TSM", "FINISHED")]  # each run once
    full = next(x for x in runs if x.data.tags.get("suite.variant") == "Loopy (Full)")
    assert full.data.metrics["test/SSIM.n"] == 3  # all three test items, two ranks writing
    (out,) = (tmp_path / "runs" / "toy_sweep").iterdir()
    rank1 = (out / "train_ddp_process_1.log").read_text()
    assert "variant 'w/o TSM': stage stage2" in rank1 and len(list(out.glob("*/seed0/pred/*.mp4"))) == 6
