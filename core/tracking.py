"""MLflow tracking: one parent run per `experiments.run` call, one child run per variant.

The layout the reports rely on (``reports/build.py`` reads it back):

- tags ``suite.kind`` = ``parent`` | ``variant`` | ``baseline``; ``suite.experiment`` (ablation or
  table name), ``suite.variant`` (the paper's row label), ``suite.seed``, ``suite.paper_table``,
  ``suite.scale``, ``suite.data``, ``backbone.<metric>`` (which network produced the number),
  ``deviations.<metric>`` (where the run departs from the paper's protocol, "; "-joined, empty for none)
  and ``comparable.<metric>`` (``true`` only with official weights and no deviation);
- metrics ``test/<name>`` (mean over test videos) with ``test/<name>.ci_low``, ``.ci_high`` and
  ``.n``; training losses as Lightning logs them, prefixed by the stage name;
- params: the resolved config flattened to dotted keys (``model.tsm.stride``), so the MLflow
  compare view lines variants up by what differs.

The MLflow 3 UI opens an experiment in its GenAI view (traces) unless told otherwise. Two things tell
it (read from the UI bundle of MLflow 3.17, ``mlflow/server/js``): the experiment tag
``mlflow.experimentKind = custom_model_development`` ("Machine learning", what the UI's own type
selector writes), and the query ``workflowType=machine_learning`` of a UI address, which the sidebar's
workflow switch reads first. The suite sets the tag on its experiment and puts the query in every
address it writes: the parent run's description (``mlflow.note.content``) and tag ``suite.compare_url``
point to the compare view of its children (``#/compare-runs?runs=[...]&experiments=[...]``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

KIND, EXPERIMENT, VARIANT, SEED = "suite.kind", "suite.experiment", "suite.variant", "suite.seed"
PAPER_TABLE, SCALE, DATA, STATUS_MSG = "suite.paper_table", "suite.scale", "suite.data", "suite.error"
COMMIT = "mlflow.source.git.commit"  # the parent run's code (experiments.run._source_commit)
OVERRIDES = "suite.overrides"  # a variant's overrides as JSON; "{}" marks the full model
COMPARE_URL = "suite.compare_url"  # the parent run's link to the compare view of its children
METRIC_PREFIX = "test/"
EXPERIMENT_KIND_TAG, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"
RUN_NOTE = "mlflow.note.content"  # the description shown on a run's page (markdown)
UI_WORKFLOW = "workflowType=machine_learning"
DEFAULT_UI = "http://127.0.0.1:5000"  # `mlflow ui` / `mlflow server` without --port


def _mlflow_name(metric: str) -> str:
    return metric.replace("@", "_at_")  # MLflow metric and tag names refuse "@" (SSIM@30)


def metric_key(name: str, suffix: str = "") -> str:
    """MLflow key of a suite metric: ``SSIM@30`` -> ``test/SSIM_at_30``."""
    return f"{METRIC_PREFIX}{_mlflow_name(name)}{suffix}"


def backbone_tag(name: str) -> str:
    return f"backbone.{_mlflow_name(name)}"


def deviations_tag(name: str) -> str:
    return f"deviations.{_mlflow_name(name)}"


def comparable_tag(name: str) -> str:
    return f"comparable.{_mlflow_name(name)}"


def runs_path(experiment_id: str) -> str:
    """UI address (below the server's root) of an experiment's runs list, in the model-training view."""
    return f"#/experiments/{experiment_id}/runs?{UI_WORKFLOW}"


def compare_path(experiment_id: str, run_ids: list[str]) -> str:
    """UI address (below the server's root) of the compare view of ``run_ids``: the UI's route
    ``/compare-runs`` with the runs and experiments as JSON lists, as its own links write them."""
    from urllib.parse import quote

    runs = quote(json.dumps(list(run_ids), separators=(",", ":")), safe="")
    exps = quote(json.dumps([str(experiment_id)], separators=(",", ":")), safe="")
    return f"#/compare-runs?runs={runs}&experiments={exps}&{UI_WORKFLOW}"


def ui_url(uri: str, path: str) -> str:
    """Full address of a UI ``path`` for the tracking ``uri``: the server itself, or where `mlflow ui`
    serves an embedded store by default."""
    base = uri if uri.startswith(("http://", "https://")) else DEFAULT_UI
    return f"{base.rstrip('/')}/{path}"


class TrackingUnavailable(RuntimeError):
    """The tracking store cannot be reached; raised before any training starts."""


def resolve_uri(uri: str | None) -> str:
    """The configured URI, else ``MLFLOW_TRACKING_URI``, else the embedded SQLite store."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlruns.db"


def check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """Fail fast with one clear message when a tracking server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s) as r:
            if r.status != 200:
                raise OSError(f"HTTP {r.status}")
    except (OSError, urllib.error.URLError) as e:
        raise TrackingUnavailable(
            f"MLflow tracking server {uri} is unreachable ({e}). Start it "
            f"(`mlflow server --host 127.0.0.1 --port 5000`), fix MLFLOW_TRACKING_URI / logger.tracking_uri, "
            f"or unset it to use the embedded store sqlite:///mlruns.db. Nothing was trained."
        ) from e


def flatten(cfg: Mapping | DictConfig, prefix: str = "") -> dict[str, str]:
    """Dotted keys -> string values (lists kept whole, as MLflow params are strings)."""
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    out: dict[str, str] = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = json.dumps(v) if isinstance(v, (list, tuple, dict)) else str(v)
    return out


class Tracker:
    """Thin layer over :class:`MlflowClient` that knows the suite's run layout."""

    def __init__(self, tracking_uri: str | None, experiment_name: str):
        self.uri = resolve_uri(tracking_uri)
        check_reachable(self.uri)
        mlflow.set_tracking_uri(self.uri)
        self.client = MlflowClient(self.uri)
        exp = self.client.get_experiment_by_name(experiment_name)
        if exp is None:
            self.experiment_id = self.client.create_experiment(experiment_name,
                                                               tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING})
        else:
            self.experiment_id = exp.experiment_id
            # an earlier version's experiment gets the tag; a kind the user chose stays
            if EXPERIMENT_KIND_TAG not in exp.tags:
                self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)

    # ---------------------------------------------------------------- runs
    def start(self, name: str, tags: Mapping[str, Any], parent_id: str | None = None) -> str:
        tags = {k: str(v) for k, v in tags.items() if v is not None}
        if parent_id:
            tags["mlflow.parentRunId"] = parent_id
        run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        return run.info.run_id

    def reopen(self, run_id: str) -> str:
        """Mark an earlier run RUNNING again (``resume=``): its metrics continue where they stopped."""
        self.client.update_run(run_id, status="RUNNING")
        if STATUS_MSG in self.client.get_run(run_id).data.tags:  # the error of the failed attempt
            self.client.delete_tag(run_id, STATUS_MSG)
        return run_id

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def fail(self, run_id: str, error: BaseException) -> None:
        """Mark a run FAILED, keeping the error text where the UI shows it."""
        text = "".join(traceback.format_exception_only(type(error), error)).strip()
        self.client.set_tag(run_id, STATUS_MSG, text[:5000])
        tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        self.client.log_text(run_id, tb, "error.txt")
        self.finish(run_id, "FAILED")

    @contextmanager
    def run(self, name: str, tags: Mapping[str, Any], parent_id: str | None = None,
            run_id: str | None = None) -> Iterator[str]:
        """A run that ends FINISHED, or FAILED on an exception; ``run_id`` reopens an earlier one."""
        run_id = self.reopen(run_id) if run_id else self.start(name, tags, parent_id)
        try:
            yield run_id
        except BaseException as e:
            self.fail(run_id, e)
            raise
        else:
            self.finish(run_id)

    def link_children(self, parent_id: str, title: str) -> str:
        """Point the parent run's page at the compare view of its child runs (tag ``suite.compare_url`` and
        the run's description); returns the UI address. Called after each variant, so a run stopped
        half way links the variants it has."""
        kids = self.client.search_runs([self.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'",
                                       order_by=["attributes.start_time ASC"], max_results=1000)
        path = compare_path(self.experiment_id, [k.info.run_id for k in kids])
        controls = sum(k.data.tags.get(KIND) == "control" for k in kids)
        runs = f"{len(kids) - controls} variant run(s)" + (f" and {controls} control run(s)" if controls else "")
        note = (f"**{title}**: {runs}. [Compare them side by side]({path}) (their "
                f"params and test metrics; tick *Show diff only* to see what each variant changes). "
                f"[All runs of the experiment]({runs_path(self.experiment_id)}).")
        self.client.set_tag(parent_id, COMPARE_URL, path)
        self.client.set_tag(parent_id, RUN_NOTE, note)
        return path

    # ------------------------------------------------------------- logging
    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        items = [Param(k[:250], str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow's batch limit
            self.client.log_batch(run_id, params=items[i:i + 100])

    def log_config(self, run_id: str, cfg: DictConfig) -> None:
        self.log_params(run_id, flatten(cfg))
        self.client.log_text(run_id, OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")

    def log_summary(self, run_id: str, summary: Mapping[str, Mapping[str, Any]]) -> None:
        """Eval summary {metric: {mean, ci_low, ci_high, n, backbone, deviations, comparable_to_paper}} ->
        metrics + backbone, deviations and comparable tags."""
        import time

        ts = int(time.time() * 1000)
        metrics, tags = [], []
        for name, s in summary.items():
            if not isinstance(s, Mapping) or "mean" not in s:
                continue
            for suffix, key in (("", "mean"), (".ci_low", "ci_low"), (".ci_high", "ci_high"), (".n", "n")):
                v = s.get(key)
                if v is not None and isinstance(v, (int, float)) and math.isfinite(float(v)):
                    metrics.append(Metric(metric_key(name, suffix), float(v), ts, 0))
            if s.get("backbone"):
                tags.append(RunTag(backbone_tag(name), str(s["backbone"])[:5000]))
            if "deviations" in s or "comparable_to_paper" in s:
                tags.append(RunTag(deviations_tag(name), "; ".join(map(str, s.get("deviations") or ()))[:5000]))
                tags.append(RunTag(comparable_tag(name), "true" if s.get("comparable_to_paper") else "false"))
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(run_id, metrics=metrics[i:i + 1000])
        if tags:
            self.client.log_batch(run_id, tags=tags)

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path)
