"""resume=auto: a run killed with SIGKILL mid-epoch continues to the same weights and the same MLflow runs.

The model is JoyVASA at scale=tiny (two stages, diffusion noise, shuffled clips with random crops),
so the test needs everything a bit-exact resume needs: the stage structure, Lightning's checkpoint,
the data loader's position inside the epoch and the global random state.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from mlflow.tracking import MlflowClient

from experiments.resume import ResumeError, RunState, open_run_state
from tests.conftest import REPO

# 3 identities x 1 clip x 8 samples = 24 clips per epoch, batch 4: 6 steps. The motion stage runs 7,
# is checkpointed every 2 and killed at step 5, mid-epoch, before step 5's checkpoint exists. Its learning
# rate decays on a cosine (model.stages[1].lr_schedule), so the resumed run must also continue the schedule.
STEPS = {"render": 4, "motion": 7}
KILL = ["+callbacks.kill._target_=tests.kill.KillAtStep", "+callbacks.kill.step=5", "+callbacks.kill.stage=motion"]


def _overrides(root, data_dir):
    return ["model=joyvasa", "sample=false", "evaluate=false", "build_reports=false", f"paths.root_dir={root}",
            f"paths.data_dir={data_dir}", f"logger.tracking_uri=sqlite:///{root}/mlruns.db",
            "data.num_identities=3", "data.clips_per_identity=1", "data.seconds_per_clip=2.0",
            "data.test_identities=[face02]", "data.test_seconds=1.6", "data.progress=false",
            f"model.stages.0.max_steps={STEPS['render']}", f"model.stages.1.max_steps={STEPS['motion']}",
            "+model.stages.1.lr_schedule=cosine",
            "checkpoint.every_n_steps=2", "+trainer.enable_progress_bar=false",
            "share_stages=false"]  # both runs share the data folder: each must train its own render stage


def _run(overrides, check=True):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-m", "experiments.run", *overrides], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"experiments.run {overrides} exited {p.returncode}:\n{p.stderr[-3000:]}")
    return p


def _weights(root):
    (ckpt,) = root.glob("runs/single/*/default/seed0/last.ckpt")
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("resume")
    data = base / "data"
    straight = _run(_overrides(base / "straight", data))
    killed = _run(_overrides(base / "killed", data) + KILL, check=False)
    (out,) = (base / "killed" / "runs" / "single").glob("*/run_state.json")
    after_kill = {"state": json.loads(out.read_text()), "ckpts": sorted(
        str(p.relative_to(out.parent)) for p in out.parent.rglob("*.ckpt"))}
    resumed = _run(_overrides(base / "killed", data) + ["resume=auto"])
    return base, straight, killed, after_kill, resumed


def test_kill_leaves_a_checkpoint_mid_stage(runs):
    _, _, killed, after_kill, _ = runs
    assert killed.returncode == -signal.SIGKILL
    assert after_kill["ckpts"] == ["default/seed0/checkpoints/motion/last.ckpt",
                                   "default/seed0/checkpoints/render/end.ckpt",
                                   "default/seed0/checkpoints/render/last.ckpt"]
    assert after_kill["state"]["variants"]["default [seed 0]"]["status"] == "running"
    assert after_kill["state"]["finished"] is False


def test_resume_skips_the_finished_stage_and_continues_the_other(runs):
    *_, resumed = runs
    out = resumed.stdout + resumed.stderr  # Hydra logs to stdout, Lightning warns on stderr
    assert "stage render already done" in out
    assert "stage motion, 7 steps, resuming from" in out
    assert "dataloader is not resumable" not in out


def test_resumed_weights_equal_an_uninterrupted_run(runs):
    base, *_ = runs
    a, b = _weights(base / "straight"), _weights(base / "killed")
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def test_a_stage_lr_schedule_decays_the_rate_and_the_others_keep_theirs(runs, compose):
    """model.stages[1].lr_schedule=cosine: the motion stage ends at rate 0 (cosine over its 7 steps, in the
    resumed run too); the render stage, without a schedule, ends at the model's constant render_lr."""
    base, *_ = runs
    render_lr = compose(["model=joyvasa"], with_test_configs=False).model.optim.render_lr
    for run in ("straight", "killed"):
        (seed,) = (base / run / "runs" / "single").glob("*/default/seed0")
        lr = {stage: torch.load(seed / "checkpoints" / stage / "end.ckpt", map_location="cpu", weights_only=False)
              ["optimizer_states"][0]["param_groups"][0]["lr"] for stage in STEPS}
        assert lr["motion"] == pytest.approx(0.0, abs=1e-12), run
        assert lr["render"] == pytest.approx(render_lr), run


def test_resume_continues_the_same_mlflow_runs(runs):
    base, _, _, after_kill, _ = runs
    c = MlflowClient(f"sqlite:///{base / 'killed'}/mlruns.db")
    exp = c.get_experiment_by_name("talking-portrait-suite")
    found = c.search_runs([exp.experiment_id])
    assert sorted((r.data.tags["suite.kind"], r.info.status) for r in found) == [("parent", "FINISHED"),
                                                                                 ("variant", "FINISHED")]
    variant = next(r for r in found if r.data.tags["suite.kind"] == "variant")
    assert variant.info.run_id == after_kill["state"]["variants"]["default [seed 0]"]["run_id"]
    assert variant.data.tags["mlflow.parentRunId"] == after_kill["state"]["parent_run_id"]
    assert "motion-train/loss_motion" in variant.data.metrics
    states = list((base / "killed" / "runs" / "single").glob("*/run_state.json"))
    assert len(states) == 1 and json.loads(states[0].read_text())["finished"] is True


# ----------------------------------------------------------------- choosing what to resume
def _cfg(compose, tmp_path, *extra):
    return compose(["model=toy", "data=toy", f"paths.root_dir={tmp_path}", *extra])


def test_auto_starts_afresh_when_nothing_matches(compose, tmp_path):
    first = _cfg(compose, tmp_path, "paths.output_dir=" + str(tmp_path / "runs/single/a"))
    RunState.new(tmp_path / "runs/single/a", first).set(finished=True)  # a finished run is never resumed
    other = _cfg(compose, tmp_path, "paths.output_dir=" + str(tmp_path / "runs/single/b"), "model.lr=0.5")
    RunState.new(tmp_path / "runs/single/b", other)  # unfinished, but another config
    cfg = _cfg(compose, tmp_path, "resume=auto", "paths.output_dir=" + str(tmp_path / "runs/single/c"))
    out, state, resumed = open_run_state(cfg)
    assert (out.name, resumed) == ("c", False) and state.path.exists()


def test_auto_picks_the_unfinished_run_with_this_config(compose, tmp_path):
    RunState.new(tmp_path / "runs/single/a", _cfg(compose, tmp_path, f"paths.output_dir={tmp_path}/runs/single/a"))
    cfg = _cfg(compose, tmp_path, "resume=auto", f"paths.output_dir={tmp_path}/runs/single/new",
               "+callbacks.x._target_=lightning.pytorch.callbacks.LearningRateMonitor")  # callbacks may change
    out, _, resumed = open_run_state(cfg)
    assert (out.name, resumed) == ("a", True)


def test_resume_path_with_another_config_names_the_key(compose, tmp_path):
    RunState.new(tmp_path / "old", _cfg(compose, tmp_path, f"paths.output_dir={tmp_path}/old"))
    with pytest.raises(ResumeError, match=r"model\.lr: '0\.01' -> '0\.5'.*same overrides"):
        open_run_state(_cfg(compose, tmp_path, f"resume={tmp_path}/old", "model.lr=0.5"))


def test_resume_path_without_state_says_what_to_give(compose, tmp_path):
    with pytest.raises(ResumeError, match=r"no run_state\.json in that folder.*resume=auto"):
        open_run_state(_cfg(compose, tmp_path, f"resume={tmp_path}"))
