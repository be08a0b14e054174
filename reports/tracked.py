"""Tables from the tracking store: the runs of an experiment's newest parent, pooled per variant.

:func:`table_for` is what ``reports.build`` writes as LaTeX/CSV/Markdown and what ``reports.results``
checks the papers' claims against: the child runs of the newest parent run of an experiment, grouped
by variant, seeds pooled. Across seeds a cell is the mean of the per-seed means; with one seed its
interval is the bootstrap CI over test videos, with several it is the 95% t-interval of the seed means.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections import defaultdict

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from scipy import stats

from core.tracking import (
    EXPERIMENT,
    KIND,
    OVERRIDES,
    SEED,
    VARIANT,
    backbone_tag,
    comparable_tag,
    deviations_tag,
    metric_key,
)
from metrics.base import is_official
from metrics.bootstrap import paired_bootstrap
from reports.tables import (
    Cell,
    Table,
    paper_decimals,
    paper_rows,
)

log = logging.getLogger("reports.tracked")


def latest_children(client: MlflowClient, exp_id: str, name: str):
    parents = client.search_runs([exp_id], f"tags.`{KIND}` = 'parent' and tags.`{EXPERIMENT}` = '{name}'",
                                 order_by=["attributes.start_time DESC"], max_results=50)
    for parent in parents:  # newest parent with at least one finished variant
        kids = client.search_runs([exp_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
                                  max_results=5000)
        if any(k.info.status == "FINISHED" for k in kids):
            return parent, kids
    return None, []


def _json_param(params: dict, key: str):
    """A list/dict param as logged by core.tracking.flatten (JSON), or None."""
    v = params.get(key)
    if v in (None, "None", "null", ""):
        return None
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def _prefixed(params: dict, prefix: str) -> dict:
    """A mapping that flatten() spread over dotted keys, gathered back."""
    return {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}


def _cells(runs, metrics) -> dict[str, Cell]:
    out = {}
    for m in metrics:
        key = metric_key(m)
        per_seed = [r for r in runs if key in r.data.metrics]
        if not per_seed:
            continue
        means = np.array([r.data.metrics[key] for r in per_seed])
        # not comparable with the paper: a non-official backbone (stand-in, synthtalk-trained, custom) ...
        standin = any(r.data.tags.get(backbone_tag(m)) and not is_official(r.data.tags[backbone_tag(m)])
                      for r in per_seed)
        # ... or a departure from the paper's protocol (runs logged before these tags carry none)
        deviations = tuple(dict.fromkeys(d for r in per_seed for d in
                                         r.data.tags.get(deviations_tag(m), "").split("; ") if d))
        if not deviations and any(r.data.tags.get(comparable_tag(m)) == "false" for r in per_seed) and not standin:
            deviations = ("not the paper's protocol",)
        if len(per_seed) == 1:
            d = per_seed[0].data.metrics
            lo, hi = d.get(metric_key(m, ".ci_low")), d.get(metric_key(m, ".ci_high"))
            n = d.get(metric_key(m, ".n"))  # 1: one test video, no interval (metrics/bootstrap.py)
            n = None if n is None else int(n)
        else:
            half = stats.t.ppf(0.975, len(means) - 1) * means.std(ddof=1) / math.sqrt(len(means))
            lo, hi, n = means.mean() - half, means.mean() + half, len(means)
        out[m] = Cell(float(means.mean()), lo, hi, standin, n=n, deviations=deviations)
    return out


def _baselines(client: MlflowClient, exp_id: str, name: str) -> dict:
    """Newest finished baseline run per system for experiment ``name`` (``metrics.evaluate --system``)."""
    runs = client.search_runs([exp_id], f"tags.`{KIND}` = 'baseline' and tags.`{EXPERIMENT}` = '{name}' "
                               "and attributes.status = 'FINISHED'", order_by=["attributes.start_time DESC"],
                               max_results=1000)
    out: dict = {}
    for r in runs:
        out.setdefault(r.data.tags.get("suite.system", r.info.run_name), r)
    return dict(sorted(out.items()))


def per_video_scores(client: MlflowClient, runs) -> pd.DataFrame:
    """The per-video scores of ``runs`` (their ``eval/per_video.csv`` artifacts), keyed by video and seed."""
    frames = []
    for r in runs:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = client.download_artifacts(r.info.run_id, "eval/per_video.csv", tmp)
            except Exception:  # a run without the artifact (older runs, failed evaluation) adds nothing
                continue
            df = pd.read_csv(path)
        df["seed"] = r.data.tags.get(SEED, "0")
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["video", "seed"])


def empty_columns(client: MlflowClient, t: Table, runs) -> dict[str, str]:
    """Why each metric of ``t`` without a value of ours is empty, from the per-video statuses of ``runs``
    (``eval/per_video.csv``): e.g. ``"4 of 4 test videos skipped (Sync: face found in 0/50 frames ...)"``."""
    from metrics.evaluate import skip_reasons, split_subset
    from metrics.registry import group_of

    empty = [m for m in t.metrics if not any(m in row for row in t.ours.values())]
    if not empty:
        return {}
    videos = per_video_scores(client, runs)
    out = {}
    for m in empty:
        try:
            scorer = group_of(split_subset(m)[1])
        except ValueError:
            scorer = None
        reasons = skip_reasons(videos, top=1, scorer=scorer) if scorer and len(videos) else []
        if reasons:
            n, example = reasons[0]
            example = example if len(example) <= 90 else example[:87] + "..."
            out[m] = f"every test video was skipped, {n} of {len(videos)} for: {example}"
        else:
            out[m] = "no run logged a value (see the runs' eval/summary.json)"
    return out


def mark_significant(client: MlflowClient, t: Table, by_variant: dict, n_boot: int = 2000) -> None:
    """Flag each cell whose per-video scores differ from the reference row's (paired bootstrap over the
    test videos x seeds both rows scored, 95%). Set metrics (FID, FVD, E-FID) have no per-video score."""
    if t.reference_row not in by_variant:
        return
    ref = per_video_scores(client, by_variant[t.reference_row])
    for label, runs in by_variant.items():
        if label == t.reference_row:
            continue
        other = per_video_scores(client, runs)
        both = ref.merge(other, on=["video", "seed"], suffixes=("_ref", "_row"))
        for m in t.metrics:
            if f"{m}_ref" not in both.columns or f"{m}_row" not in both.columns or m not in t.ours[label]:
                continue
            a = pd.to_numeric(both[f"{m}_ref"], errors="coerce").to_numpy()
            b = pd.to_numeric(both[f"{m}_row"], errors="coerce").to_numpy()
            if int((np.isfinite(a) & np.isfinite(b)).sum()) < 2:
                continue
            r = paired_bootstrap(a, b, n_boot=n_boot, seed=0)
            t.ours[label][m].significant = r["ci_low"] > 0 or r["ci_high"] < 0


def runs_by_variant(finished) -> dict[str, list]:
    """Finished variant runs grouped by row label (one run per seed), rows in the order they started."""
    by_variant: dict[str, list] = defaultdict(list)
    for k in sorted(finished, key=lambda r: r.info.start_time):
        by_variant[k.data.tags.get(VARIANT, k.info.run_name)].append(k)
    return dict(by_variant)


def finished_variants(kids) -> list:
    """The variant runs (not controls, not baselines) among ``kids`` that finished."""
    return [k for k in kids if k.data.tags.get(KIND, "variant") == "variant" and k.info.status == "FINISHED"]


def table_for(client: MlflowClient, exp_id: str, name: str) -> Table | None:
    parent, kids = latest_children(client, exp_id, name)
    if parent is None:
        return None
    variants = [k for k in kids if k.data.tags.get(KIND, "variant") == "variant"]
    finished = finished_variants(kids)
    params = finished[0].data.params
    metrics = _json_param(params, "experiment.metrics") or []
    columns = _prefixed(params, "experiment.report.columns.") or _json_param(params, "experiment.report.columns") or {}
    keep_rows = _json_param(params, "experiment.report.paper_rows")
    by_variant = runs_by_variant(finished)
    order = list(by_variant)
    ours = {label: _cells(by_variant[label], metrics) for label in order}
    baselines = _baselines(client, exp_id, name)
    for system, run in baselines.items():
        # other systems' videos scored by the same metric code: ranked with our variants
        ours[system if system not in ours else f"{system} (baseline)"] = _cells([run], metrics)
    table_csv = parent.data.tags.get("suite.paper_table") or None
    paper_scale = {k: float(v) for k, v in _prefixed(params, "experiment.report.paper_scale.").items()}
    paper = paper_rows(table_csv, columns, metrics, paper_scale) if table_csv else {}
    if keep_rows:
        paper = {k: v for k, v in paper.items() if k in keep_rows}
    seeds = sorted({k.data.tags.get(SEED) for k in finished})
    data, scale = parent.data.tags.get("suite.data", "?"), parent.data.tags.get("suite.scale", "?")
    caption = params.get("experiment.description") or name
    caption = f"{caption.rstrip('. ')}. Ours: data {data}, scale {scale}, seeds {', '.join(seeds)}."
    label = params.get("experiment.report.paper_label")
    paper_label = f"Paper ({label if label not in (None, 'None', 'null', '') else table_csv})" if paper else "Paper"
    if params.get("experiment.measure") == "speed":  # Loopy Tables 5-6: the cells' source is the machine
        machines = sorted({k.data.tags[backbone_tag(m)] for k in finished for m in metrics
                           if backbone_tag(m) in k.data.tags})
        caption += f" Timed, untrained, on {'; '.join(machines) or 'an unrecorded machine'}."
    if baselines:
        caption += f" Baselines scored with the same metric code on their own videos: {', '.join(baselines)}."
    failed = [k.data.tags.get(VARIANT, k.info.run_name) for k in variants if k.info.status == "FAILED"]
    if failed:
        caption += f" Failed variants (see MLflow): {', '.join(sorted(set(failed)))}."
    plot = {k: _json_param({k: v}, k) for k, v in _prefixed(params, "experiment.plot.").items()}
    x_values = {}
    if plot.get("x") not in (None, "frame"):
        for lb in order:
            v = by_variant[lb][0].data.params.get(str(plot["x"]))
            try:
                x_values[lb] = float(v)
            except (TypeError, ValueError):
                continue  # a variant without a numeric value of the key is left off the plot
    ref = params.get("experiment.report.reference_row")  # a label: kept as text, never parsed as JSON
    if ref in (None, "None", "null", ""):  # the full model: the variant that overrides nothing
        ref = next((lb for lb in order if by_variant[lb][0].data.tags.get(OVERRIDES) == "{}"), None)
    controls = {k.data.tags.get("suite.system", k.info.run_name): _cells([k], metrics)
                for k in sorted(kids, key=lambda r: r.info.start_time)
                if k.data.tags.get(KIND) == "control" and k.info.status == "FINISHED"}
    if controls:
        caption += (" Controls: the test set's own ground truth, scored by the same code, intact and broken one way "
                    "each (experiments/controls.py).")
    table = Table(name=name, caption=caption, metrics=metrics, ours=ours, paper=paper, paper_label=paper_label,
                  ours_label="Ours", plot=plot, x_values=x_values, reference_row=ref, controls=controls,
                  metric_decimals=paper_decimals(table_csv, columns, metrics, paper_scale))
    table.empty = empty_columns(client, table, finished)
    if table.empty:  # a column of dashes says why (e.g. Sync-C when no face was found)
        why = "; ".join(f"{m}: {reason}" for m, reason in table.empty.items())
        table.caption += f" Empty columns of ours: {why}."
    mark_significant(client, table, {lb: by_variant[lb] for lb in order})
    return table
