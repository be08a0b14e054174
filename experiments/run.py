"""The experiment runner: ``python -m experiments.run ablation=tsm_stride``.

For each variant of the chosen ablation or table (and each seed) it trains the model
stage by stage, samples the held-out test items, scores them with the metrics package
and logs everything to MLflow (one parent run per call, one child run per variant). A
failing variant is marked FAILED with its error and the others still run. At the end
the tables are rebuilt from the tracking store (``reports/build.py``).

Examples::

    python -m experiments.run ablation=tsm_stride
    python -m experiments.run ablation=tsm_stride scale=small trainer=gpu seeds=[0,1,2]
    python -m experiments.run table=loopy_cfg --cfg job      # print the resolved config
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from experiments.tracking import DATA, EXPERIMENT, KIND, OVERRIDES, PAPER_TABLE, SCALE, SEED, VARIANT, Tracker
from experiments.variants import Variant, expand

log = logging.getLogger("experiments.run")

# Keys of a model config that belong to the runner, not to the module's constructor.
RUNNER_MODEL_KEYS = ("name", "stages", "inference_keys")


def build_model(model_cfg: DictConfig):
    """Instantiate the LightningModule, leaving out runner-owned keys it does not accept."""
    target = hydra.utils.get_class(model_cfg._target_)
    params = inspect.signature(target.__init__).parameters
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    # resolve against the whole config first: interpolations like ${scale.image_size} point outside model
    cfg = OmegaConf.to_container(model_cfg, resolve=True) if OmegaConf.is_config(model_cfg) else dict(model_cfg)
    for k in RUNNER_MODEL_KEYS:
        if k in cfg and not (k in params or takes_kwargs):
            del cfg[k]
    return hydra.utils.instantiate(cfg, _convert_="all")


def stages_of(cfg: DictConfig) -> list[dict]:
    stages = cfg.model.get("stages") or [{"name": "main", "max_steps": cfg.trainer.get("max_steps", 100)}]
    return [dict(s) for s in OmegaConf.to_container(stages, resolve=True)]


def make_trainer(cfg: DictConfig, max_steps: int, logger=None, callbacks=()):
    return hydra.utils.instantiate(cfg.trainer, max_steps=int(max_steps), logger=logger or False,
                                   callbacks=list(callbacks))


def _stage_logger(tracker: Tracker, run_id: str, prefix: str, experiment_name: str):
    """Lightning's MLflow logger on the variant's run, minus its ``finalize``: that would mark the run
    FINISHED after each stage's ``fit``, before sampling and evaluation, and a table built meanwhile
    would take a half-done variant for a finished one. The runner sets the status itself."""
    from lightning.pytorch.loggers import MLFlowLogger

    class RunOwnedMLFlowLogger(MLFlowLogger):
        def finalize(self, status: str = "success") -> None:
            pass

    return RunOwnedMLFlowLogger(tracking_uri=tracker.uri, run_id=run_id, prefix=prefix, experiment_name=experiment_name)


def train(variant: Variant, module, datamodule, tracker: Tracker | None, run_id: str | None) -> None:
    for stage in stages_of(variant.cfg):
        if hasattr(module, "set_stage"):
            module.set_stage(stage["name"])
        logger = None
        if tracker is not None and run_id is not None:
            logger = _stage_logger(tracker, run_id, stage["name"], variant.cfg.logger.experiment_name)
        trainer = make_trainer(variant.cfg, stage["max_steps"], logger)
        log.info("variant %r: stage %s, %d steps", variant.label, stage["name"], stage["max_steps"])
        trainer.fit(module, datamodule=datamodule)


def training_signature(cfg: DictConfig) -> str:
    """Everything that shapes the trained weights: model (less its ``inference_keys``), data, trainer,
    scale, seed. Variants with the same signature differ only at sampling time (Loopy Table 7's
    guidance grid, JoyVASA's lambda_c sweep) and share one training."""
    model = OmegaConf.to_container(cfg.model, resolve=True)
    for key in model.pop("inference_keys", None) or []:
        *parents, leaf = str(key).split(".")
        node = model
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    parts = {"seed": int(cfg.seed), "model": model,
             **{k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("data", "trainer", "scale") if k in cfg}}
    return json.dumps(parts, sort_keys=True, default=str)


def load_weights(module, path: Path) -> None:
    import torch

    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["state_dict"])


def save_weights(module, path: Path) -> Path:
    """The trained weights (what ``experiments.sample`` loads), written atomically."""
    import torch

    from datamodules.video_io import atomic_path

    with atomic_path(path) as tmp:
        torch.save({"state_dict": module.state_dict()}, tmp)
    return path


def sample(variant: Variant, module, datamodule, out_dir: Path) -> tuple[Path, Path]:
    """Generate every test item into ``out_dir/pred``; link the ground truth into ``out_dir/gt``."""
    from experiments.prediction_writer import PredictionWriter

    writer = PredictionWriter(out_dir / "pred", out_dir / "gt")
    trainer = make_trainer(variant.cfg, 1, callbacks=[writer])
    limit = variant.cfg.eval.get("max_videos")
    if limit:
        trainer.limit_predict_batches = int(limit)
    trainer.predict(module, datamodule=datamodule, return_predictions=False)
    if not writer.written:
        raise RuntimeError(f"variant {variant.label!r}: the data module's predict_dataloader gave no test items")
    return writer.pred_dir, writer.gt_dir


def _plain(node):
    """A config node as a plain dict, or None when empty."""
    if node is None:
        return None
    return (OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)) or None


def evaluate(variant: Variant, pred_dir: Path, gt_dir: Path, out_dir: Path):
    """Score the generated videos against their ground truth with the metrics of the experiment."""
    from metrics.evaluate import evaluate_folders, write_result

    e = variant.cfg.eval
    result = evaluate_folders(pred_dir, gt_dir, metrics=list(variant.cfg.experiment.metrics),
                              weights=_plain(e.get("weights")),
                              standin=bool(e.standin), n_boot=int(e.n_boot), seed=variant.seed,
                              preset=str(e.get("preset") or ("tiny" if variant.cfg.scale.name == "tiny" else "paper")),
                              options=_plain(e.get("options")))
    write_result(result, out_dir / "eval")
    return result


def run_variant(variant: Variant, tracker: Tracker | None, parent_id: str | None, out_root: Path,
                trained: dict[str, tuple[Path, str]] | None = None) -> dict:
    """Train, sample and evaluate one variant. ``trained`` maps a :func:`training_signature` to the
    checkpoint and run name of a variant of this invocation that already trained those weights."""
    import lightning.pytorch as pl

    cfg = variant.cfg
    out_dir = out_root / _slug(variant.label) / f"seed{variant.seed}"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    tags = {KIND: "variant", EXPERIMENT: cfg.experiment.name, VARIANT: variant.label, SEED: variant.seed,
            PAPER_TABLE: cfg.experiment.get("paper_table"), SCALE: cfg.scale.name, DATA: cfg.data.get("name"),
            "suite.model": cfg.model.get("name"), OVERRIDES: json.dumps(variant.overrides, sort_keys=True, default=str)}
    run_id = tracker.start(variant.run_name, tags, parent_id) if tracker else None
    try:
        if tracker:
            tracker.log_config(run_id, cfg)
        pl.seed_everything(variant.seed, workers=True)
        datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
        module = build_model(cfg.model)
        summary: dict = {}
        if cfg.train:
            sig = training_signature(cfg) if cfg.get("share_training", True) and trained is not None else None
            if sig is not None and sig in trained:
                ckpt, owner = trained[sig]
                log.info("variant %r: same training as %r (differs in model.inference_keys only); loading %s",
                         variant.run_name, owner, ckpt)
                load_weights(module, ckpt)
                if hasattr(module, "set_stage"):
                    module.set_stage(stages_of(cfg)[-1]["name"])
                if tracker:
                    tracker.client.set_tag(run_id, "suite.trained_by", owner)
            else:
                train(variant, module, datamodule, tracker, run_id)
                ckpt = save_weights(module, out_dir / "last.ckpt")
                if sig is not None:
                    trained[sig] = (ckpt, variant.run_name)
            if tracker:
                tracker.client.set_tag(run_id, "suite.checkpoint", str(ckpt.resolve()))
        if cfg.sample:
            pred_dir, gt_dir = sample(variant, module, datamodule, out_dir)
            if tracker and cfg.logger.get("log_videos", True):
                for p in sorted(pred_dir.glob("*.mp4"))[:2]:
                    tracker.log_artifact(run_id, p, "samples")
            if cfg.evaluate:
                result = evaluate(variant, pred_dir, gt_dir, out_dir)
                summary = result.summary
                if tracker:
                    tracker.log_summary(run_id, summary)
                    for f in sorted((out_dir / "eval").glob("*")):
                        tracker.log_artifact(run_id, f, "eval")
        if tracker:
            tracker.finish(run_id)
        return summary
    except BaseException as e:
        if tracker:
            tracker.fail(run_id, e)
        raise


def _slug(label: str) -> str:
    """A folder name for a variant label: 's = 1, r = 2' -> 's_1_r_2'."""
    import re

    return re.sub(r"[^A-Za-z0-9.-]+", "_", label).strip("_") or "variant"


def run(cfg: DictConfig) -> dict[str, dict]:
    """Run every variant of ``cfg``; returns {run name: summary or {'error': text}}."""
    variants = expand(cfg)  # validates every override before anything is trained
    tracker = Tracker(cfg.logger.tracking_uri, cfg.logger.experiment_name)
    out_root = Path(cfg.paths.output_dir)
    out_root.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    parent_tags = {KIND: "parent", EXPERIMENT: cfg.experiment.name, PAPER_TABLE: cfg.experiment.get("paper_table"),
                   SCALE: cfg.scale.name, DATA: cfg.data.get("name"), "suite.command": _command_line()}
    t0 = time.time()
    trained: dict[str, tuple[Path, str]] = {}
    with tracker.run(f"{cfg.experiment.name} ({cfg.scale.name})", parent_tags) as parent_id:
        tracker.client.log_text(parent_id, OmegaConf.to_yaml(cfg, resolve=False), "config.yaml")
        tracker.log_params(parent_id, {"experiment.name": cfg.experiment.name, "scale.name": cfg.scale.name,
                                       "seeds": str(list(cfg.seeds) if cfg.get("seeds") else [cfg.seed]),
                                       "variants": str([v.label for v in variants])})
        bar = tqdm(variants, desc=f"{cfg.experiment.name}: variants", unit="variant", dynamic_ncols=True)
        for variant in bar:
            bar.set_postfix_str(variant.run_name)
            try:
                results[variant.run_name] = run_variant(variant, tracker, parent_id, out_root, trained)
            except Exception as e:  # one broken variant must not take the others down
                log.error("variant %r failed: %s", variant.run_name, e)
                results[variant.run_name] = {"error": f"{type(e).__name__}: {e}"}
                if cfg.fail_fast:
                    raise
        failed = sorted(k for k, v in results.items() if "error" in v)
        tracker.client.set_tag(parent_id, "suite.failed_variants", ", ".join(failed) or "none")
    log.info("%d variants in %.0f s (%d failed); outputs in %s", len(variants), time.time() - t0, len(failed), out_root)
    if cfg.build_reports:
        from reports.build import build_reports

        written = build_reports(tracker.uri, cfg.logger.experiment_name, cfg.paths.reports_dir,
                                experiments=[cfg.experiment.name])
        for p in written:
            log.info("report: %s", p)
    return results


def _command_line() -> str:
    return " ".join(shlex.quote(a) for a in [Path(sys.executable).name, "-m", "experiments.run", *sys.argv[1:]])


@hydra.main(version_base="1.3", config_path="configs", config_name="run")
def main(cfg: DictConfig) -> None:
    from experiments.tracking import TrackingUnavailable
    from experiments.variants import VariantError

    # Lightning has its own console handler; without this every line of it prints twice under Hydra
    logging.getLogger("lightning.pytorch").propagate = False
    logging.getLogger("lightning.fabric").propagate = False
    try:
        results = run(cfg)
    except (TrackingUnavailable, VariantError) as e:
        log.error("%s", e)
        sys.exit(2)
    if results and all("error" in v for v in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    os.environ.setdefault("HYDRA_FULL_ERROR", "0")
    main()
