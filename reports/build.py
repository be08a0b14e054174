"""Rebuild every table and plot from the tracking store: ``python -m reports.build``.

For each experiment name (ablation or table) it takes the child runs of the newest parent
run, groups them by variant, pools seeds, and writes ``<out>/<experiment>.{tex,csv,md,png}``
plus ``<out>/index.md``. Nothing here holds a number: every cell is read from MLflow,
every paper value from ``reports/paper/*.csv``. With ``--results`` (by default when every experiment is
built) it also checks the papers' claims of ``reports/claims.yaml`` against the same runs and writes
``docs/SYNTHTALK_RESULTS.md`` (``reports/results.py``).

Across seeds a cell is the mean of the per-seed means; with one seed its interval is the
bootstrap CI over test videos, with several it is the 95% t-interval of the seed means.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from scipy import stats

from datamodules.video_io import atomic_path
from experiments.tracking import (
    EXPERIMENT,
    KIND,
    OVERRIDES,
    SEED,
    VARIANT,
    backbone_tag,
    comparable_tag,
    deviations_tag,
    metric_key,
    resolve_uri,
)
from metrics.base import is_official
from metrics.bootstrap import paired_bootstrap
from reports.tables import (
    Cell,
    Table,
    ordering_count,
    paper_decimals,
    paper_rows,
    to_delta_markdown,
    to_frame,
    to_latex,
    to_markdown,
)

log = logging.getLogger("reports.build")

#: where `python -m reports.build` writes the papers' claims checked against the runs (reports/results.py)
DEFAULT_RESULTS = Path("docs") / "SYNTHTALK_RESULTS.md"


def _write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def _latest_children(client: MlflowClient, exp_id: str, name: str):
    parents = client.search_runs([exp_id], f"tags.`{KIND}` = 'parent' and tags.`{EXPERIMENT}` = '{name}'",
                                 order_by=["attributes.start_time DESC"], max_results=50)
    for parent in parents:  # newest parent with at least one finished variant
        kids = client.search_runs([exp_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
                                  max_results=5000)
        if any(k.info.status == "FINISHED" for k in kids):
            return parent, kids
    return None, []


def _json_param(params: dict, key: str):
    """A list/dict param as logged by experiments.tracking.flatten (JSON), or None."""
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


def _per_video(client: MlflowClient, runs) -> pd.DataFrame:
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
    videos = _per_video(client, runs)
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
    ref = _per_video(client, by_variant[t.reference_row])
    for label, runs in by_variant.items():
        if label == t.reference_row:
            continue
        other = _per_video(client, runs)
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
    parent, kids = _latest_children(client, exp_id, name)
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


def sample_sheet_for(client: MlflowClient, exp_id: str, name: str, out: Path) -> Path | None:
    """``<out>/<name>.samples.png`` from the ``samples/frames.npz`` of the newest run of each variant (its
    first seed), in the table's row order (``reports/sample_sheet.py``); None when no run kept frames."""
    from experiments.prediction_writer import load_frames
    from reports.sample_sheet import compose

    _, kids = _latest_children(client, exp_id, name)
    rows: dict[str, dict] = {}
    for k in sorted((k for k in kids if k.info.status == "FINISHED" and k.data.tags.get(KIND, "variant") == "variant"),
                    key=lambda r: r.info.start_time):
        label = k.data.tags.get(VARIANT, k.info.run_name)
        if label in rows:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            try:
                rows[label] = load_frames(Path(client.download_artifacts(k.info.run_id, "samples/frames.npz", tmp)))
            except Exception:  # a run without kept frames (older runs, speed tables) has no row
                continue
    return compose(rows, name, out / f"{name}.samples.png") if rows else None


def build_reports(tracking_uri: str | None = None, mlflow_experiment: str = "talking-portrait-suite",
                  out_dir: str | os.PathLike = "reports/out", experiments: list[str] | None = None,
                  results: str | os.PathLike | None = None,
                  claims: str | os.PathLike | None = None) -> list[Path]:
    """Write .tex/.csv/.md/.png for each experiment (all of them by default); returns the paths.

    ``results``: also check the paper claims (``claims``, default ``reports/claims.yaml``) against the
    tracked runs and write them there (``reports/results.py``), unless no claim's experiment has a run."""
    from reports.plots import plot_table

    uri = resolve_uri(tracking_uri)
    db = uri.removeprefix("sqlite:///")
    if uri.startswith("sqlite:///") and not Path(db).exists():  # MlflowClient would create an empty store
        raise FileNotFoundError(f"no tracking store {db} (from {uri}); run `python -m experiments.run ...` "
                                f"in this folder first, or give --tracking-uri / set MLFLOW_TRACKING_URI")
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(mlflow_experiment)
    if exp is None:
        raise ValueError(f"no MLflow experiment {mlflow_experiment!r} at {resolve_uri(tracking_uri)}; "
                         f"run `python -m experiments.run ...` first, or give --tracking-uri / "
                         f"--mlflow-experiment")
    if experiments is None:
        parents = client.search_runs([exp.experiment_id], f"tags.`{KIND}` = 'parent'", max_results=5000)
        experiments = sorted({p.data.tags.get(EXPERIMENT) for p in parents if p.data.tags.get(EXPERIMENT)})
    out = Path(out_dir)
    written: list[Path] = []
    index = ["# Tables\n", "Generated by `python -m reports.build` from the MLflow store "
             f"`{resolve_uri(tracking_uri)}`.\n"]
    built: dict[str, Table] = {}
    for name in experiments:
        t = table_for(client, exp.experiment_id, name)
        if t is None or not t.ours:
            continue
        built[name] = t
        written.append(_write_text(out / f"{name}.tex", to_latex(t)))
        written.append(_write_text(out / f"{name}.md", to_markdown(t)))
        with atomic_path(out / f"{name}.csv") as tmp:
            to_frame(t).to_csv(tmp, index=False)
        written.append(out / f"{name}.csv")
        png = plot_table(t, out / f"{name}.png")
        if png:
            written.append(png)
        sheet = sample_sheet_for(client, exp.experiment_id, name, out)
        if sheet:
            written.append(sheet)
        if t.paper:
            written.append(_write_text(out / f"{name}.delta.md", to_delta_markdown(t)))
    if written:
        # every table in the folder, also those an earlier call wrote (run.py rebuilds only its own)
        tables = sorted(p.stem for p in out.glob("*.tex") if p.stem != "report")
        index += [_index_line(out, name) for name in tables]
        report = write_report(out, tables)
        index.append("\nAll tables, one page each: [report.tex](report.tex)"
                     + (", [report.pdf](report.pdf)" if report.with_suffix(".pdf").exists() else ""))
        written.append(report)
        if report.with_suffix(".pdf").exists():
            written.append(report.with_suffix(".pdf"))
        written.append(_write_text(out / "index.md", "\n".join(index) + "\n"))
    if results is not None:
        from reports.results import write_results

        path = write_results(client, exp.experiment_id, results, out, claims, built,
                             resolve_uri(tracking_uri))
        if path is not None:
            written.append(path)
    return written


def _index_line(out: Path, name: str) -> str:
    """The index entry of table ``name`` from the files in ``out``; the ordering count is the one its
    ``.delta.md`` states."""
    links = [f"[{name}{ext}]({name}{ext})" for ext in (".tex", ".csv", ".md", ".png", ".samples.png")
             if (out / f"{name}{ext}").exists()]
    delta = out / f"{name}.delta.md"
    if delta.exists():
        links.append(f"[paper vs ours]({name}.delta.md)")
        count = ordering_count(delta.read_text())
        if count:
            links[-1] += f" (orderings reproduced: {count})"
    return f"- **{name}**: " + ", ".join(links)


def write_report(out: Path, names: list[str]) -> Path:
    """``report.tex``: one page per table (the table, then its figure), compiled to ``report.pdf`` with
    pdflatex when it is installed. A failed compile keeps the .tex and says where the log is."""
    import shutil
    import subprocess

    pages = []
    for n in names:
        page = f"\\clearpage\n\\input{{{n}.tex}}\n"
        if (out / f"{n}.png").exists():
            page += f"\\begin{{center}}\\includegraphics[width=0.75\\linewidth]{{{n}.png}}\\end{{center}}\n"
        if (out / f"{n}.samples.png").exists():  # the frames the numbers describe, on a page of their own
            page += (f"\\clearpage\n\\begin{{center}}\\includegraphics[width=\\linewidth,height=0.9\\textheight,"
                     f"keepaspectratio]{{{n}.samples.png}}\\end{{center}}\n")
        pages.append(page)
    tex = ("% generated by `python -m reports.build`; do not edit\n"
           "\\documentclass{article}\\usepackage{booktabs}\\usepackage{graphicx}\n"
           "\\usepackage[margin=1.5cm,landscape]{geometry}\n\\begin{document}\n"
           + "".join(pages) + "\\end{document}\n")
    path = _write_text(out / "report.tex", tex)
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        log.warning("pdflatex not found: wrote %s; compile it with `pdflatex report.tex` (texlive)", path)
        return path
    r = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "report.tex"], cwd=out,
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        log.warning("pdflatex failed on %s (see %s); the .tex tables are unaffected", path, out / "report.log")
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m reports.build", description=__doc__.splitlines()[0],
                                 epilog="A bad argument prints one line and exits 2 "
                                        "(--debug: the traceback).")
    ap.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or sqlite:///mlruns.db")
    ap.add_argument("--mlflow-experiment", default="talking-portrait-suite")
    ap.add_argument("--out", default="reports/out")
    ap.add_argument("--experiments", nargs="*", default=None, help="ablation/table names (default: all)")
    ap.add_argument("--results", default=None, metavar="PATH",
                    help="also check the papers' claims (reports/claims.yaml) against the tracked runs and "
                         f"write them to PATH; default: {DEFAULT_RESULTS} when every experiment is built "
                         "(no --experiments), no file with --experiments unless --results is given. The file "
                         "is not written, and an existing one kept, when no claim's experiment has a tracked "
                         "run")
    ap.add_argument("--no-results", action="store_true", help="do not write the claims file at all")
    ap.add_argument("--debug", action="store_true", help="show the traceback of an error")
    a = ap.parse_args(argv)
    results = None if a.no_results else a.results or (DEFAULT_RESULTS if a.experiments is None else None)
    for p in build_reports(a.tracking_uri, a.mlflow_experiment, a.out, a.experiments, results=results):
        print(p)


if __name__ == "__main__":
    from experiments.cli import run_cli

    run_cli(main, "reports.build")
