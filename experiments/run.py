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
    python -m experiments.run ablation=tsm_stride resume=auto  # continue the killed run of that command
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from experiments.variants import Variant, expand

# Lightning, MLflow and the models are imported where they are used: `--cfg job`, `--help` and a refused
# config answer in seconds instead of after half a minute of imports (issue 19, item 7; experiments.bench
# part `startup` measures it)
if TYPE_CHECKING:
    from core.tracking import Tracker
    from experiments.resume import RunState

log = logging.getLogger("experiments.run")

def stages_of(cfg: DictConfig) -> list[dict]:
    stages = cfg.model.get("stages") or [{"name": "main", "max_steps": cfg.trainer.get("max_steps", 100)}]
    return [dict(s) for s in OmegaConf.to_container(stages, resolve=True)]


def is_global_zero() -> bool:
    """Whether this process is global rank 0 under torchrun, SLURM or Lightning's DDP launcher (or alone).
    The other ranks train and sample their share of the test items; tracking, run state, scoring and
    reports belong to rank 0."""
    for key in ("RANK", "SLURM_PROCID"):
        if os.environ.get(key):
            return int(os.environ[key]) == 0
    return int(os.environ.get("NODE_RANK", 0)) == 0 and int(os.environ.get("LOCAL_RANK", 0)) == 0


def make_trainer(cfg: DictConfig, max_steps: int, logger=None, callbacks=(), root_dir: Path | None = None):
    kwargs = {"default_root_dir": str(root_dir)} if root_dir is not None else {}
    return hydra.utils.instantiate(cfg.trainer, max_steps=int(max_steps), logger=logger or False,
                                   callbacks=list(callbacks), **kwargs)


def user_callbacks(cfg: DictConfig) -> list:
    """Lightning callbacks from the ``callbacks`` config (name -> ``_target_`` node), added to every
    training stage, e.g. ``+callbacks.lr._target_=lightning.pytorch.callbacks.LearningRateMonitor``."""
    nodes = cfg.get("callbacks") or {}
    return [hydra.utils.instantiate(node) for node in nodes.values() if node is not None]


def _stage_logger(tracker: Tracker, run_id: str, prefix: str, experiment_name: str):
    """Lightning's MLflow logger on the variant's run, minus its ``finalize``: that would mark the run
    FINISHED after each stage's ``fit``, before sampling and evaluation, and a table built meanwhile
    would take a half-done variant for a finished one. The runner sets the status itself."""
    from lightning.pytorch.loggers import MLFlowLogger

    class RunOwnedMLFlowLogger(MLFlowLogger):
        def finalize(self, status: str = "success") -> None:
            pass

    return RunOwnedMLFlowLogger(tracking_uri=tracker.uri, run_id=run_id, prefix=prefix, experiment_name=experiment_name)


def _single_process(cfg: DictConfig) -> bool:
    """True for a one-process run (shared stages are trained under a file lock, which DDP ranks that
    must train in step cannot wait on)."""
    devices = cfg.trainer.get("devices", 1)
    n = (devices if isinstance(devices, int) else 2) * int(cfg.trainer.get("num_nodes", 1) or 1)
    return n == 1 and int(os.environ.get("WORLD_SIZE", "1")) == 1


@contextmanager
def stage_batch_size(datamodule, batch_size: int | None):
    """``model.stages[i].batch_size``: a stage's own batch size (per process), e.g. Loopy's image-level
    stage 1 on larger batches than its 33-image clips of stage 2 at CPU scale; the data's otherwise. The
    preflight (``experiments.validate.stage_problem``) has refused a size below 1 before any stage."""
    if batch_size is None or not hasattr(datamodule, "batch_size"):
        yield
        return
    before, datamodule.batch_size = datamodule.batch_size, int(batch_size)
    try:
        yield
    finally:
        datamodule.batch_size = before


@contextmanager
def stage_lr_schedule(module, stage: dict, index: int):
    """``model.stages[i].lr_schedule`` (a diffusers schedule name: constant, linear, cosine, ...; with an
    optional ``warmup_steps``): the stage's learning rate follows it over the stage's ``max_steps``;
    absent, the rate stays the model's constant ``optim.lr``."""
    name = stage.get("lr_schedule")
    if name is None:
        yield
        return
    from experiments.validate import lr_schedule_problem

    key = f"model.stages[{index}].lr_schedule"
    if problem := lr_schedule_problem(name):
        raise ValueError(f"{key}: {problem}")
    if not hasattr(module, "lr_schedule"):
        raise ValueError(f"{key}: {type(module).__name__} takes no learning-rate schedule (a PortraitModule "
                         f"does); remove the key")
    before, module.lr_schedule = module.lr_schedule, {
        "name": name, "warmup_steps": int(stage.get("warmup_steps", 0)), "num_training_steps": int(stage["max_steps"])}
    try:
        yield
    finally:
        module.lr_schedule = before


@contextmanager
def stage_loss_keys(module, stage: dict, index: int):
    """``model.stages[i].snr_gamma`` and ``lip_weight``: the stage's diffusion loss takes Min-SNR-gamma weights
    (``lightning_modules.sampling.diffusion_loss``) and a heavier mouth region
    (``lightning_modules.blocks.mouth_weights``); absent, the plain MSE of the papers. The preflight
    (``experiments.validate.stage_problem``) has refused values out of range."""
    from experiments.validate import LOSS_KEYS, loss_key_problem

    given = {k: float(stage[k]) for k in LOSS_KEYS if stage.get(k) is not None}
    for key in given:
        if problem := loss_key_problem(type(module), key):
            raise ValueError(f"model.stages[{index}].{key}: {problem}")
    before = {k: getattr(module, k) for k in given}
    for key, value in given.items():
        setattr(module, key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            setattr(module, key, value)


def train(variant: Variant, module, datamodule, tracker: Tracker | None, run_id: str | None, out_dir: Path) -> None:
    """Every stage in turn. A stage with an ``end.ckpt`` from an earlier call is skipped (its weights and
    random state loaded); one with a ``last.ckpt`` continues from it (see ``experiments/resume.py``).
    A stage the model config shares between variants (``model.shared_stages``) is trained once and
    loaded from ``experiments/stage_cache.py`` by every later variant or run with the same stage config.
    Each stage starts from a random state that depends only on the seed and the stage, so a stage
    draws the same noise whether the stages before it were trained or loaded."""
    import lightning.pytorch as pl
    import torch

    from core.train_once import get_or_build, read_meta
    from experiments import stage_cache
    from experiments.lab import cache_root
    from experiments.resume import restore_rng, stage_callbacks, stage_dir

    for index, stage in enumerate(stages_of(variant.cfg)):
        name = stage["name"]
        if hasattr(module, "set_stage"):
            module.set_stage(name)
        ckpt_dir = stage_dir(out_dir, name)
        if (ckpt_dir / "end.ckpt").exists():
            ckpt = torch.load(ckpt_dir / "end.ckpt", map_location="cpu", weights_only=True)
            module.load_state_dict(ckpt["state_dict"])
            restore_rng(ckpt["suite_rng_states"])
            log.info("variant %r: stage %s already done in %s; skipped", variant.label, name, ckpt_dir)
            continue
        pl.seed_everything(variant.seed * 1000 + index, workers=True, verbose=False)

        def fit(stage=stage, name=name, ckpt_dir=ckpt_dir, index=index):
            last = ckpt_dir / "last.ckpt"
            logger = None
            if tracker is not None and run_id is not None:
                logger = _stage_logger(tracker, run_id, name, variant.cfg.logger.experiment_name)
            callbacks = [*stage_callbacks(out_dir, name, variant.cfg.checkpoint.every_n_steps),
                         *user_callbacks(variant.cfg)]
            trainer = make_trainer(variant.cfg, stage["max_steps"], logger, callbacks, root_dir=out_dir)
            log.info("variant %r: stage %s, %d steps%s", variant.label, name, stage["max_steps"],
                     f", resuming from {last}" if last.exists() else "")
            with stage_batch_size(datamodule, stage.get("batch_size")), stage_lr_schedule(module, stage, index), \
                    stage_loss_keys(module, stage, index):
                trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if last.exists() else None)
            trainer.save_checkpoint(ckpt_dir / "end.ckpt")

        shared = stage_cache.entry_folder(cache_root(datamodule, variant.cfg), variant.cfg, index) \
            if variant.cfg.get("share_stages", True) and _single_process(variant.cfg) else None
        if shared is None:
            fit()
            continue
        if hasattr(datamodule, "prepare_data"):  # the data (e.g. SynthTalk, generated on first use) before its cache
            datamodule.prepare_data()
        trained_here = []

        def build(tmp, fit=fit, name=name, trained_here=trained_here, index=index):
            fit()
            trained_here.append(True)
            return {**stage_cache.save(module, tmp), "stage": name, "trained_by": variant.run_name, "run_id": run_id,
                    "signature": stage_cache.stage_signature(variant.cfg, index)}

        folder = get_or_build(shared, build, lambda f: (stage_cache.check(f), stage_cache.load(module, f)),
                              f"the shared {name} weights")
        if not trained_here:
            meta = read_meta(folder)
            log.info("variant %r: stage %s loaded from %s (trained by %r); same %s configuration", variant.label,
                     name, folder, meta.get("trained_by"), name)
            if tracker is not None and run_id is not None:
                tracker.client.set_tag(run_id, f"suite.{name}_from", f"{folder} (trained by {meta.get('trained_by')})")


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


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def save_weights(module, path: Path) -> Path:
    """The trained weights (what ``experiments.sample`` loads), written atomically."""
    import torch

    from core.atomic import atomic_path

    with atomic_path(path) as tmp:
        torch.save({"state_dict": module.state_dict()}, tmp)
    return path


def sample(variant: Variant, module, datamodule, out_dir: Path) -> tuple[Path, Path]:
    """Generate every test item into ``out_dir/pred``; link the ground truth into ``out_dir/gt``."""
    from experiments.prediction_writer import PredictionWriter

    writer = PredictionWriter(out_dir / "pred", out_dir / "gt")
    trainer = make_trainer(variant.cfg, 1, callbacks=[writer], root_dir=out_dir)
    limit = variant.cfg.eval.get("max_videos")
    if limit:
        trainer.limit_predict_batches = int(limit)
    trainer.predict(module, datamodule=datamodule, return_predictions=False)
    if not writer.written:
        raise RuntimeError(f"variant {variant.label!r}: the data module's predict_dataloader gave no test items")
    return writer.pred_dir, writer.gt_dir


def measure_speed(variant: Variant, module, datamodule, out_dir: Path) -> dict:
    """Loopy Tables 5-6 for one variant, as an evaluation summary whose 'backbone' is the machine."""
    from core.atomic import atomic_path
    from experiments.timing import machine, speed_row

    row = speed_row(variant.cfg, module.eval(), datamodule)
    n = int(variant.cfg.experiment.speed.num_items)
    summary = {k: {"mean": v, "n": n, "backbone": machine()} for k, v in row.items()}
    (out_dir / "eval").mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "eval" / "summary.json") as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=2))
    return summary


def _plain(node):
    """A config node as a plain dict, or None when empty."""
    if node is None:
        return None
    return (OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)) or None


def evaluate(cfg: DictConfig, seed: int, pred_dir: Path, gt_dir: Path, out_dir: Path):
    """Score the generated videos against their ground truth with the metrics of the experiment."""
    from metrics.evaluate import evaluate_folders, write_result

    e = cfg.eval
    result = evaluate_folders(pred_dir, gt_dir, metrics=list(cfg.experiment.metrics),
                              weights=_plain(e.get("weights")),
                              standin=bool(e.standin), n_boot=int(e.n_boot), seed=seed,
                              preset=str(e.get("preset") or ("tiny" if cfg.scale.name == "tiny" else "paper")),
                              options=_plain(e.get("options")), subsets=_plain(e.get("subsets")),
                              lab=None if e.get("lab") in (None, "auto") else str(e.lab))
    write_result(result, out_dir / "eval")
    return result


_logged_labs: set[tuple[str, str]] = set()


def log_evaluators(tracker: Tracker, run_id: str, lab: str | None) -> None:
    """Log the SynthTalk evaluators' measured skill (``skill.json``, flattened as ``evaluators/*`` metrics)
    and their config to ``run_id`` once per process, so the parent run says how far its metrics can see."""
    if not lab or lab == "auto" or (run_id, lab) in _logged_labs:
        return
    from mlflow.entities import Metric

    from metrics.synthtalk.skill import flatten

    folder = Path(lab)
    if (folder / "skill.json").is_file():
        skill = json.loads((folder / "skill.json").read_text())
        tracker.client.log_batch(run_id, metrics=[Metric(k, v, int(time.time() * 1000), 0)
                                                  for k, v in flatten(skill).items()])
    for name in ("skill.json", "config.json", "timings.json"):
        if (folder / name).is_file():
            tracker.log_artifact(run_id, folder / name, "evaluators")
    tracker.client.set_tag(run_id, "suite.evaluators", str(folder))
    _logged_labs.add((run_id, lab))


def run_controls(cfg: DictConfig, tracker: Tracker, parent_id: str, out_root: Path, state: RunState) -> None:
    """Score the control rows of ``eval.controls`` (``experiments/controls.py``) once per call: the ground
    truth, and the ground truth broken in one way each, as MLflow runs beside the variants."""
    from tqdm.auto import tqdm

    from core.tracking import DATA, EXPERIMENT, KIND, SCALE
    from experiments import controls
    from experiments.lab import prepare_variant

    names = controls.validate(cfg.eval.get("controls"))
    todo = [n for n in names if state.variant(f"control:{n}").get("status") != "finished"]
    if not todo:
        return
    cfg = cfg.copy()
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    cfg = prepare_variant(cfg, datamodule)
    datamodule.prepare_data()
    items = controls.test_set(datamodule, int(cfg.seed), todo)
    if cfg.eval.get("max_videos"):
        items = items[:int(cfg.eval.max_videos)]
    for name in [n for n in todo if not controls.available(n, items)]:
        log.info("control %r left out: %s has no generator to render it (SynthTalk only)", name,
                 cfg.data.get("name"))
        todo.remove(name)
    for name in tqdm(todo, desc=f"{cfg.experiment.name}: controls", unit="control", dynamic_ncols=True):
        label = controls.CONTROLS[name]
        tags = {KIND: "control", EXPERIMENT: cfg.experiment.name, "suite.system": label, "suite.control": name,
                SCALE: cfg.scale.name, DATA: cfg.data.get("name")}
        with tracker.run(f"{label} (control)", tags, parent_id) as run_id:
            folder = out_root / "controls" / name
            pred_dir, gt_dir = controls.write_control(name, items, folder)
            result = evaluate(cfg, int(cfg.seed), pred_dir, gt_dir, folder)
            tracker.log_summary(run_id, result.summary)
            for f in sorted((folder / "eval").glob("*")):
                tracker.log_artifact(run_id, f, "eval")
        state.update_variant(f"control:{name}", run_id=run_id, status="finished")


def data_key(cfg: DictConfig) -> str:
    """The resolved data config as text: variants with the same one share a data module."""
    return json.dumps(OmegaConf.to_container(cfg.data, resolve=True), sort_keys=True, default=str)


def run_variant(variant: Variant, tracker: Tracker | None, parent_id: str | None, out_root: Path,
                trained: dict[str, tuple[Path, str]] | None = None, state: RunState | None = None,
                datamodules: dict | None = None) -> dict:
    """Train, sample and evaluate one variant. ``trained`` maps a :func:`training_signature` to the
    checkpoint and run name of a variant of this invocation that already trained those weights.
    ``state`` (``experiments/resume.py``) skips a variant an earlier call finished and reopens the
    MLflow run of one it left unfinished (both through :class:`experiments.variant_run.VariantRun`).
    ``datamodules`` (:func:`preflight`'s, by :func:`data_key`) are the data sets already indexed, reused
    instead of indexed again."""
    from experiments.variant_run import VariantRun

    cfg = variant.cfg
    out_dir = out_root / _slug(variant.label) / f"seed{variant.seed}"
    run = VariantRun(variant.run_name, tracker, state, parent_id)
    if run.finished:
        log.info("variant %r: finished by an earlier call of this run; skipped", variant.run_name)
        if run.entry.get("checkpoint") and trained is not None and cfg.get("share_training", True):
            trained.setdefault(training_signature(cfg), (Path(run.entry["checkpoint"]), variant.run_name))
        summary = out_dir / "eval" / "summary.json"
        return json.loads(summary.read_text()) if summary.exists() else {}
    out_dir.mkdir(parents=True, exist_ok=True)
    from core.tracking import DATA, EXPERIMENT, KIND, OVERRIDES, PAPER_TABLE, SCALE, SEED, VARIANT

    tags = {KIND: "variant", EXPERIMENT: cfg.experiment.name, VARIANT: variant.label, SEED: variant.seed,
            PAPER_TABLE: cfg.experiment.get("paper_table"), SCALE: cfg.scale.name, DATA: cfg.data.get("name"),
            "suite.model": cfg.model.get("name"),
            OVERRIDES: json.dumps(variant.overrides, sort_keys=True, default=str)}
    with run.active(tags):
        return _variant_steps(variant, run, out_dir, trained, datamodules)


def _variant_steps(variant: Variant, run, out_dir: Path, trained: dict | None, datamodules: dict | None) -> dict:
    """The body of :func:`run_variant`, inside its (started) run: data, weights, samples, scores."""
    import lightning.pytorch as pl

    from experiments.lab import prepare_variant
    from lightning_modules.build import build_model

    cfg = variant.cfg
    datamodule = (datamodules or {}).get(data_key(cfg))
    if datamodule is None:
        datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    cfg = prepare_variant(cfg, datamodule)  # what is trained once (the data set's autoencoder), cached
    if is_global_zero():
        (out_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    run.log_config(cfg)
    pl.seed_everything(variant.seed, workers=True)
    module = build_model(cfg.model)
    if cfg.sample:
        datamodule.predict_dataloader()  # an empty test split fails now, not after the training
    if cfg.experiment.get("measure") == "speed":  # Loopy Tables 5-6: timings, not scores
        summary = measure_speed(variant, module, datamodule, out_dir)
        run.log_summary(summary)
        return summary
    if cfg.train:
        _weights(variant, module, datamodule, run, out_dir, trained)
    summary: dict = {}
    if cfg.sample:
        pred_dir, gt_dir = sample(variant, module, datamodule, out_dir)
        _barrier()  # under DDP every rank writes its share of the test items
        if cfg.logger.get("log_videos", True):
            run.log_artifacts(sorted(pred_dir.glob("*.mp4"))[:2], "samples")
        if is_global_zero():  # a few frames of every item, for the table's sample sheet
            from experiments.prediction_writer import save_frames

            frames = save_frames(pred_dir, gt_dir, out_dir / "frames.npz")
            if frames:
                run.log_artifacts([frames], "samples")
        if cfg.evaluate:
            summary = evaluate(cfg, variant.seed, pred_dir, gt_dir, out_dir).summary
            if run.tracker:
                log_evaluators(run.tracker, run.parent_id or run.run_id, cfg.eval.get("lab"))
            run.log_summary(summary)
            run.log_artifacts(sorted((out_dir / "eval").glob("*")), "eval")
    return summary


def _weights(variant: Variant, module, datamodule, run, out_dir: Path, trained: dict | None) -> None:
    """Train the variant, or load the weights of a variant of this call that differs from it only in
    ``model.inference_keys`` (``share_training``)."""
    cfg = variant.cfg
    sig = training_signature(cfg) if cfg.get("share_training", True) and trained is not None else None
    if sig is not None and sig in trained:
        ckpt, owner = trained[sig]
        log.info("variant %r: same training as %r (differs in model.inference_keys only); loading %s",
                 variant.run_name, owner, ckpt)
        load_weights(module, ckpt)
        if hasattr(module, "set_stage"):
            module.set_stage(stages_of(cfg)[-1]["name"])
        run.tag("suite.trained_by", owner)
    else:
        train(variant, module, datamodule, run.tracker, run.run_id, out_dir)
        ckpt = out_dir / "last.ckpt"
        if is_global_zero():
            save_weights(module, ckpt)
        _barrier()  # the other ranks may load these weights for a variant that shares them
        if sig is not None:
            trained[sig] = (ckpt, variant.run_name)
    run.checkpoint(ckpt)


def _slug(label: str) -> str:
    """A folder name for a variant label: 's = 1, r = 2' -> 's_1_r_2'."""
    import re

    return re.sub(r"[^A-Za-z0-9.-]+", "_", label).strip("_") or "variant"


def preflight(variants: list[Variant]) -> dict:
    """Before anything is created: every variant's ``data`` and ``model`` keys are parameters of their
    classes (``experiments/validate.py``), and a recorded data set's root exists and, when the call
    samples, gives a test split. Returns those data sets, indexed, by :func:`data_key`."""
    from experiments.validate import check_constructor_keys, check_run_config

    indexed: dict = {}
    seen: set[str] = set()
    for v in variants:  # the data first: it is the cheaper import and the likelier mistake
        check_constructor_keys(v.cfg, "data")
        key = data_key(v.cfg)
        if key in seen or not (v.cfg.get("train", True) or v.cfg.get("sample", True)):
            continue  # checked already, or this call reads no data
        seen.add(key)
        dm = hydra.utils.instantiate(v.cfg.data, _convert_="all")
        if hasattr(dm, "check_root"):  # a recorded data set (SynthTalk is generated on first use)
            dm.check_root()
            for split, used in (("train", v.cfg.get("train", True)), ("test", v.cfg.get("sample", True))):
                if used:  # an empty split is refused now, not after an MLflow run exists
                    dm.check_split(split)
            indexed[key] = dm
    for v in variants:
        check_run_config(v.cfg)
    return indexed


def run(cfg: DictConfig) -> dict[str, dict]:
    """Run every variant of ``cfg``; returns {run name: summary or {'error': text}}."""
    variants = expand(cfg)  # validates every override (key and type) before anything is trained
    datamodules = preflight(variants)

    from tqdm.auto import tqdm

    from core.tracking import DATA, EXPERIMENT, KIND, PAPER_TABLE, SCALE, Tracker
    from experiments.resume import open_run_state

    if not is_global_zero():
        return _follow(cfg, datamodules)
    tracker = Tracker(cfg.logger.tracking_uri, cfg.logger.experiment_name)
    out_root, state, resumed = open_run_state(cfg)
    if resumed:  # the variants write into the folder being resumed
        cfg, variants = _with_output_dir(cfg, out_root)
    results: dict[str, dict] = {}
    parent_tags = {KIND: "parent", EXPERIMENT: cfg.experiment.name, PAPER_TABLE: cfg.experiment.get("paper_table"),
                   SCALE: cfg.scale.name, DATA: cfg.data.get("name"), "suite.command": _command_line(),
                   **_source_commit()}
    t0 = time.time()
    trained: dict[str, tuple[Path, str]] = {}
    with tracker.run(f"{cfg.experiment.name} ({cfg.scale.name})", parent_tags,
                     run_id=state.data["parent_run_id"] if resumed else None) as parent_id:
        state.set(parent_run_id=parent_id)
        if not resumed:
            tracker.client.log_text(parent_id, OmegaConf.to_yaml(cfg, resolve=False), "config.yaml")
            tracker.log_params(parent_id, {"experiment.name": cfg.experiment.name, "scale.name": cfg.scale.name,
                                           "seeds": str(list(cfg.seeds) if cfg.get("seeds") else [cfg.seed]),
                                           "variants": str([v.label for v in variants])})
        bar = tqdm(variants, desc=f"{cfg.experiment.name}: variants", unit="variant", dynamic_ncols=True)
        for variant in bar:
            bar.set_postfix_str(variant.run_name)
            try:
                results[variant.run_name] = run_variant(variant, tracker, parent_id, out_root, trained, state,
                                                        datamodules)
            except Exception as e:  # one broken variant must not take the others down
                log.error("variant %r failed: %s", variant.run_name, e, exc_info=True)
                results[variant.run_name] = {"error": f"{type(e).__name__}: {e}"}
                if cfg.fail_fast:
                    raise
            finally:
                compare = tracker.link_children(parent_id, f"{cfg.experiment.name} ({cfg.scale.name})")
        if cfg.sample and cfg.evaluate and cfg.eval.get("controls") and cfg.experiment.get("measure") != "speed":
            try:
                run_controls(cfg, tracker, parent_id, out_root, state)
            except Exception as e:  # the variants' rows stand without their controls
                log.error("control rows failed: %s", e)
                results["controls"] = {"error": f"{type(e).__name__}: {e}"}
                if cfg.fail_fast:
                    raise
        compare = tracker.link_children(parent_id, f"{cfg.experiment.name} ({cfg.scale.name})")
        failed = sorted(k for k, v in results.items() if "error" in v)
        tracker.client.set_tag(parent_id, "suite.failed_variants", ", ".join(failed) or "none")
        state.set(finished=not failed)  # resume=auto retries the failed variants of an unfinished run
    log.info("%d variants in %.0f s (%d failed); outputs in %s", len(variants), time.time() - t0, len(failed), out_root)
    from core.tracking import ui_url

    served = tracker.uri.startswith(("http://", "https://"))
    serve = "" if served else f"`mlflow ui --backend-store-uri {tracker.uri}`, "
    log.info("MLflow: compare the variants side by side: %sthen open %s", serve, ui_url(tracker.uri, compare))
    if cfg.build_reports:
        from hydra.utils import instantiate

        build_reports = instantiate(cfg.reports_builder)  # reports.build.build_reports by default
        written = build_reports(tracker.uri, cfg.logger.experiment_name, cfg.paths.reports_dir,
                                experiments=[cfg.experiment.name])
        for p in written:
            log.info("report: %s", p)
            if p.name.startswith(f"{cfg.experiment.name}.") and p.suffix in (".png", ".tex", ".md", ".csv"):
                tracker.log_artifact(parent_id, p, "report")  # the table and its sample sheet, in MLflow too
    return results


def _with_output_dir(cfg: DictConfig, out_root: Path) -> tuple[DictConfig, list[Variant]]:
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.paths.output_dir = str(out_root)
    return cfg, expand(cfg)


def _follow(cfg: DictConfig, datamodules: dict | None = None) -> dict[str, dict]:
    """A DDP rank other than 0: train and sample every variant in step with rank 0 (same folder, same
    skips), without tracking, scoring or reports. Lightning's launcher hands its child processes
    rank 0's Hydra run folder; under torchrun or SLURM give every node the same ``paths.output_dir``."""
    from hydra.core.hydra_config import HydraConfig

    from experiments.resume import open_run_state

    if HydraConfig.initialized() and not cfg.get("resume"):
        cfg, _ = _with_output_dir(cfg, Path(HydraConfig.get().run.dir))
    out_root, state, _ = open_run_state(cfg, writable=False)
    cfg, variants = _with_output_dir(cfg, out_root)
    trained: dict[str, tuple[Path, str]] = {}
    for variant in variants:
        variant.cfg.evaluate = False
        try:
            run_variant(variant, None, None, out_root, trained, state, datamodules)
        except Exception as e:  # rank 0 meets the same error and records it; stay in step for the next variant
            log.error("variant %r failed on this rank: %s", variant.run_name, e)
            if cfg.fail_fast:
                raise
    return {}


def _source_commit() -> dict[str, str]:
    """MLflow's ``mlflow.source.git.commit`` tag (shown in its UI): the code a run ran, with "+dirty" when
    tracked files differed from that commit; nothing outside a git checkout. A preset changed later does
    not silently relabel an old run's numbers."""
    import subprocess

    from core.tracking import COMMIT

    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {}
    if head.returncode != 0:
        return {}
    return {COMMIT: head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")}


def _command_line() -> str:
    return " ".join(shlex.quote(a) for a in [Path(sys.executable).name, "-m", "experiments.run", *sys.argv[1:]])


@hydra.main(version_base="1.3", config_path="configs", config_name="run")
def main(cfg: DictConfig) -> None:
    from core.cli import user_errors
    from experiments.validate import check_command_line

    # Lightning has its own console handler; without this every line of it prints twice under Hydra
    logging.getLogger("lightning.pytorch").propagate = False
    logging.getLogger("lightning.fabric").propagate = False
    with user_errors("experiments.run", log):
        check_command_line(cfg)
        results = run(cfg)
    if results and all("error" in v for v in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    from core.cli import run_hydra

    run_hydra(main)
