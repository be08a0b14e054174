"""The runner end to end on the test-only toy model: MLflow layout, failures, reports."""

from __future__ import annotations

import json
import subprocess

import pytest
from mlflow.tracking import MlflowClient

from experiments.run import run
from tests.conftest import REPO


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """One toy ablation run shared by the tests of this module (it is the slow part)."""
    from hydra import compose, initialize_config_dir

    from tests.conftest import REPO, TEST_CONFIGS

    tmp_path = tmp_path_factory.mktemp("toy_run")
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    overrides = ["ablation=toy_sweep", "trainer=cpu", "trainer.log_every_n_steps=1", f"paths.root_dir={tmp_path}",
                 f"logger.tracking_uri={uri}", "eval.n_boot=200", f"hydra.searchpath=[file://{TEST_CONFIGS}]"]
    with initialize_config_dir(str(REPO / "experiments" / "configs"), version_base="1.3"):
        cfg = compose("run", overrides=overrides)
    results = run(cfg)
    return cfg, uri, results, tmp_path


def _runs(uri):
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name("talking-portrait-suite")
    return c, c.search_runs([exp.experiment_id], max_results=100)


def test_parent_and_one_child_per_variant(toy_run):
    cfg, uri, results, _ = toy_run
    c, runs = _runs(uri)
    parents = [r for r in runs if r.data.tags.get("suite.kind") == "parent"]
    kids = [r for r in runs if r.data.tags.get("suite.kind") == "variant"]
    assert len(parents) == 1
    assert sorted(k.data.tags["suite.variant"] for k in kids) == ["Loopy (Full)", "broken", "w/o TSM"]
    assert all(k.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for k in kids)
    assert parents[0].data.tags["suite.failed_variants"] == "broken [seed 0]"
    # the code the run ran (MLflow's own tag, shown in its UI and in docs/SYNTHTALK_RESULTS.md)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    assert parents[0].data.tags["mlflow.source.git.commit"].removesuffix("+dirty") == head


def test_failed_variant_is_marked_and_others_still_finish(toy_run):
    _, uri, results, _ = toy_run
    c, runs = _runs(uri)
    status = {r.data.tags.get("suite.variant"): r.info.status for r in runs if r.data.tags.get("suite.kind") == "variant"}
    assert status == {"Loopy (Full)": "FINISHED", "w/o TSM": "FINISHED", "broken": "FAILED"}
    broken = next(r for r in runs if r.data.tags.get("suite.variant") == "broken")
    assert "toy failure in stage stage2" in broken.data.tags["suite.error"]
    assert "error" in results["broken [seed 0]"]


def test_params_are_the_flattened_config_and_differ_by_variant(toy_run):
    _, uri, _, _ = toy_run
    c, runs = _runs(uri)
    by = {r.data.tags.get("suite.variant"): r for r in runs if r.data.tags.get("suite.kind") == "variant"}
    assert by["Loopy (Full)"].data.params["model.lr"] == "0.01"
    assert by["w/o TSM"].data.params["model.lr"] == "0.1"
    assert by["w/o TSM"].data.params["model.image_size"] == "32"
    assert json.loads(by["w/o TSM"].data.params["experiment.metrics"]) == ["SSIM"]


def test_losses_per_stage_and_eval_metrics_with_ci(toy_run):
    _, uri, _, _ = toy_run
    c, runs = _runs(uri)
    r = next(r for r in runs if r.data.tags.get("suite.variant") == "Loopy (Full)")
    hist = c.get_metric_history(r.info.run_id, "stage1-train/loss")
    assert len(hist) >= 1
    m = r.data.metrics
    assert m["test/SSIM.ci_low"] <= m["test/SSIM"] <= m["test/SSIM.ci_high"]
    assert m["test/SSIM.n"] == 3
    arts = {a.path for a in c.list_artifacts(r.info.run_id)}
    assert {"config.yaml", "samples", "eval"} <= arts


def test_reports_are_built_from_the_store(toy_run):
    cfg, uri, _, tmp = toy_run
    out = tmp / "reports" / "out"
    tex = (out / "toy_sweep.tex").read_text()
    # paper rows restricted to the ones the ablation names, and our two finished variants
    assert "Loopy (Full)" in tex and "w/o TSM" in tex and "SadTalker" not in tex
    assert "broken" in tex  # named in the caption as failed, never as a row with numbers
    csv = (out / "toy_sweep.csv").read_text()
    assert "SSIM.ci_low" in csv
    assert (out / "toy_sweep.png").stat().st_size > 1000
    assert "toy_sweep" in (out / "index.md").read_text()


def test_sample_from_the_runs_checkpoint_with_a_real_portrait(toy_run, tmp_path):
    import numpy as np
    import skimage.data
    from omegaconf import OmegaConf
    from PIL import Image

    from core.video_io import read_video, write_wav
    from experiments.sample import sample_video

    cfg, uri, _, tmp = toy_run
    ckpt = next(p for p in (tmp / "runs").rglob("last.ckpt") if "Loopy_Full" in str(p))
    run_cfg = OmegaConf.load(ckpt.parent / "config.yaml")
    Image.fromarray(skimage.data.astronaut()).convert("RGBA").save(tmp_path / "me.png")  # RGBA is converted
    write_wav(tmp_path / "speech.wav", 0.1 * np.sin(np.arange(16000 * 3) / 9.0), 16000)  # 3 s
    out = sample_video(run_cfg, ckpt, tmp_path / "me.png", tmp_path / "speech.wav", tmp_path / "out.mp4")
    v = read_video(out)
    assert v.frames.shape == (75, 32, 32, 3) and v.fps == 25.0
    assert v.audio is not None and abs(len(v.audio) / 16000 - 3.0) < 0.1
    # the toy model shows the (offset) portrait: the output must look like the astronaut, not noise
    ref = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((32, 32)), np.float32)
    assert np.corrcoef(ref.ravel(), v.frames[0].astype(np.float32).ravel())[0, 1] > 0.8


def test_sample_rejects_a_missing_portrait_naming_the_key(toy_run, tmp_path):
    from experiments.sample import load_portrait

    with pytest.raises(FileNotFoundError, match="reference=PATH"):
        load_portrait(tmp_path / "nope.png", 32)


def test_variants_differing_in_inference_keys_share_one_training(tmp_path):
    """Loopy Table 7's guidance grid trains once: variants that change only model.inference_keys reuse
    the first one's weights; a variant that changes training (lr) trains on its own."""
    from hydra import compose, initialize_config_dir

    from experiments.run import training_signature
    from experiments.variants import expand
    from tests.conftest import REPO, TEST_CONFIGS

    uri = f"sqlite:///{tmp_path}/mlruns.db"
    overrides = ["ablation=toy_guidance", "trainer=cpu", "trainer.log_every_n_steps=1", f"paths.root_dir={tmp_path}", f"logger.tracking_uri={uri}",
                 "eval.n_boot=50", "build_reports=false", f"hydra.searchpath=[file://{TEST_CONFIGS}]"]
    with initialize_config_dir(str(REPO / "experiments" / "configs"), version_base="1.3"):
        cfg = compose("run", overrides=overrides)
    sig = {v.label: training_signature(v.cfg) for v in expand(cfg)}
    assert sig["width 4"] == sig["width 8"] != sig["lr 0.1"]
    results = run(cfg)
    assert not any("error" in r for r in results.values()), results
    c, runs = _runs(uri)
    by = {r.data.tags["suite.variant"]: r for r in runs if r.data.tags.get("suite.kind") == "variant"}
    trained = {k: bool(c.get_metric_history(r.info.run_id, "stage1-train/loss")) for k, r in by.items()}
    assert trained == {"width 4": True, "width 8": False, "lr 0.1": True}
    assert by["width 8"].data.tags["suite.trained_by"] == "width 4 [seed 0]"
    assert "suite.trained_by" not in by["lr 0.1"].data.tags
    assert by["width 8"].data.tags["suite.checkpoint"] == by["width 4"].data.tags["suite.checkpoint"]
    # the same weights give the same samples, hence the same score
    assert by["width 8"].data.metrics["test/SSIM"] == by["width 4"].data.metrics["test/SSIM"]
    assert by["lr 0.1"].data.metrics["test/SSIM"] != by["width 4"].data.metrics["test/SSIM"]


def test_training_leaves_the_run_running_until_the_runner_finishes_it(tmp_path, compose):
    """Lightning's MLflow logger would mark the run FINISHED after fit, i.e. before sampling/evaluation."""
    import hydra

    from core.tracking import Tracker
    from experiments.run import train
    from experiments.variants import expand
    from lightning_modules.build import build_model

    cfg = compose(["ablation=toy_guidance", "trainer=cpu", "trainer.log_every_n_steps=1", f"paths.root_dir={tmp_path}",
                   f"logger.tracking_uri=sqlite:///{tmp_path}/db.sqlite"])
    variant = expand(cfg)[0]
    tracker = Tracker(cfg.logger.tracking_uri, cfg.logger.experiment_name)
    run_id = tracker.start("v", {"suite.kind": "variant"})
    train(variant, build_model(variant.cfg.model), hydra.utils.instantiate(variant.cfg.data), tracker, run_id,
          tmp_path / "out")
    run = tracker.client.get_run(run_id)
    assert run.info.status == "RUNNING" and "stage2-train/loss" in run.data.metrics


def test_experiment_opens_on_runs_and_parent_links_to_compare_view(toy_run):
    """Issue 19, item 10: MLflow 3 opened the experiment in its GenAI view; the parent run said nothing."""
    from urllib.parse import parse_qs, urlsplit

    _, uri, _, _ = toy_run
    c, runs = _runs(uri)
    exp = c.get_experiment_by_name("talking-portrait-suite")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    parent = next(r for r in runs if r.data.tags.get("suite.kind") == "parent")
    kids = {r.info.run_id for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    path = parent.data.tags["suite.compare_url"]
    route = urlsplit(path.removeprefix("#"))
    assert path.startswith("#/") and route.path == "/compare-runs"
    query = parse_qs(route.query)
    assert set(json.loads(query["runs"][0])) == kids and len(kids) == 3 + 4  # the variants and the control rows
    assert json.loads(query["experiments"][0]) == [exp.experiment_id]
    assert query["workflowType"] == ["machine_learning"]
    note = parent.data.tags["mlflow.note.content"]
    assert f"]({path})" in note and "3 variant run(s) and 4 control run(s)" in note
    assert f"#/experiments/{exp.experiment_id}/runs?workflowType=machine_learning" in note
