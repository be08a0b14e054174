"""The headline job of the README ("Two commands", 1): ``python -m experiments.run ablation=tsm_stride``
with the real ``LoopyModule`` (not the toy model of tests/toy.py), shrunk only in its training steps,
its sampling steps and the length of the test items. Marked slow (minutes on 2 CPU cores):
``pytest -m slow``.

Nothing here restates the preset: the variants, paper rows and metrics are read from the composed
config, so the test follows the tiny preset and the SynthTalk split as they are tuned."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from tests.conftest import REPO

pytestmark = pytest.mark.slow

SHRINK = ["model.stages.0.max_steps=2", "model.stages.1.max_steps=2", "model.sampling.num_steps=2",
          "data.test_seconds=1.0", "eval.n_boot=50", "data.progress=false",
          "+trainer.enable_progress_bar=false",
          "eval.evaluators={face: {steps: 5, width: 8}, sync: {steps: 5, batch: 4}, skill: false}"]


def _block(lines: list[str], head: str, end: str | tuple[str, ...]) -> list[str]:
    """Row labels between a block's labelled rule and the next rule."""
    start = next(i for i, ln in enumerate(lines) if ln.startswith(r"\multicolumn") and head in ln) + 1
    stop = next(i for i in range(start, len(lines)) if lines[i].startswith(end))
    return [ln.split(" &")[0] for ln in lines[start:stop]]


def test_tsm_stride_ablation_with_the_real_loopy_model(tmp_path, compose):
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    overrides = ["ablation=tsm_stride", f"paths.root_dir={tmp_path}", f"logger.tracking_uri={uri}", *SHRINK]
    cfg = compose(overrides, with_test_configs=False)
    variants = list(cfg.experiment.variants)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-m", "experiments.run", *overrides], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=3000)
    assert p.returncode == 0, p.stderr[-4000:]

    # one MLflow parent, one finished child per variant with test metrics
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(cfg.logger.experiment_name)
    runs = client.search_runs([exp.experiment_id], max_results=100)
    kids = {r.data.tags["suite.variant"]: r for r in runs if r.data.tags.get("suite.kind") == "variant"}
    assert sorted(kids) == sorted(variants)
    assert all(r.info.status == "FINISHED" for r in kids.values())
    assert all(any(k.startswith("test/") for k in r.data.metrics) for r in kids.values())
    # SynthTalk's own evaluators scored the run (eval.lab=auto), and the parent names them
    parent = next(r for r in runs if r.data.tags.get("suite.kind") == "parent")
    assert "/evaluators/" in parent.data.tags["suite.evaluators"]
    assert all(r.data.tags["backbone.FID"].startswith("synthtalk:") for r in kids.values())

    # every variant trained the real Loopy model, with its own TSM overrides
    for label, run in kids.items():
        ckpt = Path(run.data.tags["suite.checkpoint"])
        run_cfg = OmegaConf.load(ckpt.parent / "config.yaml")
        assert run_cfg.model._target_ == "lightning_modules.loopy.LoopyModule"
        for key, value in cfg.experiment.variants[label].items():
            assert OmegaConf.select(run_cfg, key) == value, (label, key)
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
        assert any(k.startswith("dual_unet.denoising_unet.") for k in state)
        assert any(k.startswith("dual_unet.temporal.") for k in state)

    # the table: the paper's rows in the paper block, ours (same names) in ours
    lines = (tmp_path / "reports" / "out" / "tsm_stride.tex").read_text().splitlines()
    paper_rows = list(cfg.experiment.report.paper_rows)
    assert sorted(_block(lines, r"\emph{Paper", r"\midrule")) == sorted(paper_rows)
    assert _block(lines, r"\emph{Ours}", (r"\midrule", r"\bottomrule")) == variants
    # the control rows (eval.controls) in a block of their own, after ours
    from experiments.controls import CONTROLS

    controls = [CONTROLS[n] for n in cfg.eval.controls]
    assert _block(lines, r"\emph{Controls", r"\bottomrule") == controls

