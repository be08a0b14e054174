"""``docs/SYNTHTALK_RESULTS.md``: every claim of ``reports/claims.yaml`` checked against the tracked runs.

Written by ``python -m reports.build`` (:func:`reports.build.build_reports` with ``results=PATH``) from
the same tables as every ``.md``/``.tex``: the newest parent run of each claim's experiment, its
finished variant runs, seeds pooled (:func:`reports.tracked.table_for`). For each claim it gives the
paper's ordering (and the paper's numbers where its table has them), ours with 95% intervals and n,
the paired bootstrap of the per-video scores where both rows have them (``eval/per_video.csv``), the
control rows of the same metric, the verdict (:mod:`reports.claims`) and links to the experiment's
table and sample sheet. Nothing is written when no claim's experiment has a tracked run, so building
reports from an unrelated store never replaces a file of real results with "not run" everywhere.

Results accumulate across stores: tables are run on different machines and sessions, each with its own
MLflow store. A claim whose experiment has no run in this build's store keeps its section from the file
being replaced (:func:`earlier_sections`), marked as kept, with the run it came from named in it; its
verdict counts in the summary. ``keep=False`` (``--fresh-results``) builds from this store alone.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient
from scipy import stats

from core.atomic import write_text
from core.tracking import COMMIT, DATA, SCALE, SEED
from metrics.bootstrap import paired_bootstrap
from metrics.evaluate import split_subset
from reports.claims import (
    CLAIMS_FILE,
    NOT_REPRODUCED,
    NOT_RUN,
    NOT_SEPARABLE,
    REPRODUCED,
    RULES,
    VERDICTS,
    Claim,
    Comparison,
    claim_verdict,
    load_claims,
    planned_comparisons,
)
from reports.tables import Cell, Table
from reports.tracked import (
    finished_variants,
    latest_children,
    per_video_scores,
    runs_by_variant,
    table_for,
)

log = logging.getLogger("reports.results")

#: resamples of the paired bootstrap (as the tables' significance markers, reports/build.py)
N_BOOT = 2000


@dataclass
class ExperimentRuns:
    """The newest tracked run of one experiment: its table, its finished variant runs per row label and
    its parent run (None when the experiment never ran)."""

    name: str
    table: Table | None = None
    by_variant: dict[str, list] = field(default_factory=dict)
    parent: object | None = None

    @property
    def ran(self) -> bool:
        return self.table is not None and bool(self.by_variant)

    def describe(self, store: str = "") -> str:
        """``data synthtalk, scale tiny, seeds 0, 1, 2; parent run 1a2b3c4d; code 0960748; store ...`` (the
        commit the run's code was at, when it was tagged; the store, so that a kept section names it)."""
        if self.parent is None:
            return "no tracked run"
        tags = self.parent.data.tags
        seeds = sorted({r.data.tags.get(SEED, "?") for runs in self.by_variant.values() for r in runs})
        code = f"; code `{tags[COMMIT][:7]}{'+dirty' if tags[COMMIT].endswith('+dirty') else ''}`" \
            if tags.get(COMMIT) else ""
        where = f"; store `{store}`" if store else ""
        return (f"data {tags.get(DATA, '?')}, scale {tags.get(SCALE, '?')}, seeds "
                f"{', '.join(seeds) or '?'}; parent run `{self.parent.info.run_id[:8]}`{code}{where}")


def experiment_runs(client: MlflowClient, exp_id: str, name: str,
                    table: Table | None = None) -> ExperimentRuns:
    """What :func:`reports.tracked.table_for` tabulates for ``name``, with the runs behind each row."""
    parent, kids = latest_children(client, exp_id, name)
    if parent is None:
        return ExperimentRuns(name)
    table = table if table is not None else table_for(client, exp_id, name)
    return ExperimentRuns(name, table, runs_by_variant(finished_variants(kids)), parent)


@dataclass
class Kept:
    """A claim's section of the results file a build replaces, as that build wrote it."""

    verdict: str
    ours: str
    intervals_apart: bool
    section: str


@dataclass
class Outcome:
    """A claim's verdict and everything the results file shows about it (``kept``: its section comes from
    the earlier build of the file, this store having no run of its experiment)."""

    claim: Claim
    verdict: str
    why: str
    runs: ExperimentRuns
    cells: dict[str, Cell] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    kept: Kept | None = None

    @property
    def intervals_apart(self) -> bool:
        """The deciding comparison (pair: the one; monotone: first vs last row) is apart by intervals."""
        if self.kept is not None:
            return self.kept.intervals_apart
        return bool(self.comparisons) and self.comparisons[0].by_intervals


class _PerVideo:
    """Per-video scores of each row of one experiment, downloaded once (``eval/per_video.csv``)."""

    def __init__(self, client: MlflowClient):
        self.client, self.cache = client, {}

    def scores(self, runs: ExperimentRuns, label: str) -> pd.DataFrame:
        key = (runs.name, label)
        if key not in self.cache:
            self.cache[key] = per_video_scores(self.client, runs.by_variant.get(label, []))
        return self.cache[key]

    def paired(self, runs: ExperimentRuns, metric: str, a: str, b: str) -> dict | None:
        """Paired bootstrap of ``a - b`` over the (video, seed) pairs both rows scored, or None. A subset
        metric (``open:Smo``) pairs the videos its run's ``eval.subsets.<name>`` regex selects."""
        subset, base = split_subset(metric)
        da, db = self.scores(runs, a), self.scores(runs, b)
        if base not in da.columns or base not in db.columns:
            return None  # a set metric (FID, FVD, E-FID), or runs without per-video scores
        if subset:
            runs_a = runs.by_variant.get(a, [])
            pattern = runs_a[0].data.params.get(f"eval.subsets.{subset}") if runs_a else None
            if not pattern:
                return None
            da, db = (d[d["video"].astype(str).str.contains(pattern, regex=True)] for d in (da, db))
        both = da[["video", "seed", base]].merge(db[["video", "seed", base]], on=["video", "seed"],
                                                 suffixes=("_a", "_b"))
        x = pd.to_numeric(both[f"{base}_a"], errors="coerce").to_numpy()
        y = pd.to_numeric(both[f"{base}_b"], errors="coerce").to_numpy()
        ok = pd.notna(x) & pd.notna(y)
        if int(ok.sum()) < 2:
            return None
        return paired_bootstrap(x[ok], y[ok], n_boot=N_BOOT, seed=0)


def evaluate_claim(claim: Claim, runs: ExperimentRuns, per_video: _PerVideo) -> Outcome:
    """Verdict of one claim on the newest tracked run of its experiment (:mod:`reports.claims`)."""
    if not runs.ran:
        return Outcome(claim, NOT_RUN, f"no finished tracked run of `{claim.experiment}`", runs)
    t = runs.table
    if claim.metric not in t.metrics:
        return Outcome(claim, NOT_RUN, f"the newest run of `{claim.experiment}` did not score {claim.metric} "
                                       "(it is not in that run's experiment.metrics)", runs)
    cells = {label: t.ours[label][claim.metric] for label in claim.labels
             if claim.metric in t.ours.get(label, {})}
    missing = [label for label in claim.labels if label not in cells]
    if missing:
        return Outcome(claim, NOT_RUN, f"no value of {claim.metric} for {', '.join(missing)} in the newest "
                                       f"run of `{claim.experiment}`", runs, cells)
    comparisons = []
    for a, b in planned_comparisons(claim):
        paired = per_video.paired(runs, claim.metric, a, b)
        comparisons.append(Comparison(a, b, cells[a], cells[b], claim.sign, paired))
    verdict = claim_verdict(claim, comparisons)
    return Outcome(claim, verdict, _why(claim, verdict, comparisons), runs, cells, comparisons)


def _why(claim: Claim, verdict: str, comparisons: list[Comparison]) -> str:
    first = comparisons[0]
    pair = f"`{first.a}` vs `{first.b}`"
    if claim.kind == "monotone":
        if verdict == NOT_REPRODUCED:
            against = [f"`{c.b}` → `{c.a}`" for c in comparisons if c.verdict == NOT_REPRODUCED]
            return f"apart against the paper's direction: {'; '.join(against)}"
        pair = f"first row `{first.b}` vs last row `{first.a}`"
    if verdict == REPRODUCED:
        return f"{pair}: in the paper's order, apart by {first.apart_by}"
    if verdict == NOT_REPRODUCED:
        return f"{pair}: apart by {first.apart_by} in the opposite order"
    agree = "in the paper's order" if first.order == first.sign else "in the opposite order" if first.order \
        else "equal"
    return f"{pair}: our means are {agree}, but the rows are not apart"


# -------------------------------------------------------------------------------------------- rendering
def _num(x) -> str:
    return "—" if x is None or not pd.notna(x) else f"{x:.4g}"


def _cell(c: Cell | None) -> str:
    if c is None:
        return "—"
    if c.half_width is None:
        return f"{_num(c.mean)} (" + (f"n={c.n}, " if c.n is not None else "") + "no interval)"
    n = f" (n={c.n})" if c.n is not None else ""
    return f"{_num(c.mean)} [{_num(c.ci_low)}, {_num(c.ci_high)}]{n}"


def _ours_short(o: Outcome) -> str:
    if o.kept is not None:
        return o.kept.ours
    if not o.comparisons:
        return "—"
    if o.claim.kind == "pair":
        c = o.comparisons[0]
        op = ">" if c.order > 0 else "<" if c.order < 0 else "="
        return f"{_num(c.cell_a.mean)} {op} {_num(c.cell_b.mean)}"
    return " → ".join(_num(o.cells[r].mean) for r in o.claim.rows)


def _md_table(rows: list[dict]) -> str:
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)


def _rel(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target, start)).as_posix()


def _links(name: str, reports_dir: Path, results_dir: Path) -> str:
    links = [f"[{label}]({_rel(reports_dir / f'{name}{ext}', results_dir)})"
             for label, ext in (("table", ".md"), ("sample sheet", ".samples.png"),
                                ("paper vs ours", ".delta.md"))
             if (reports_dir / f"{name}{ext}").exists()]
    return " · ".join(links) if links else f"no table files of `{name}` in `{reports_dir}` yet"


def _claim_head(c: Claim) -> str:
    return f"**{c.paper}, {c.source}** · experiment `{c.experiment}` · metric {c.metric}"


def _claim_section(o: Outcome, reports_dir: Path, results_dir: Path, store: str = "") -> str:
    c, t = o.claim, o.runs.table
    if o.kept is not None:
        return o.kept.section
    lines = [f"### {c.id}", "", _claim_head(c), "",
             f"> {c.statement}", "", f"Paper's ordering: {c.paper_ordering()}."]
    if not o.runs.ran:  # nothing of ours to show
        lines += ["", f"**Verdict: {o.verdict}** ({o.why}).", ""]
        return "\n".join(lines)
    paper = {r: t.paper[r][c.metric] for r in c.labels if c.metric in t.paper.get(r, {})}
    if not paper:
        lines[-1] += (f" The paper prints no {c.metric} for these rows; the ordering is its text's "
                      f"({c.source}).")
    lines += ["", f"Run: {o.runs.describe(store)}.", ""]
    rows = []
    for label in c.labels:
        row = {"row": label}
        if c.kind == "monotone":
            runs = o.runs.by_variant.get(label, [])
            row[c.key] = runs[0].data.params.get(c.key, "—") if runs else "—"
        rows.append({**row, "ours: mean [95% interval] (n)": _cell(o.cells.get(label)),
                     "paper": _num(paper.get(label))})
    for label, cells in t.controls.items():
        if c.metric in cells:
            rows.append({"row": f"*{label}* (control)", **({c.key: ""} if c.kind == "monotone" else {}),
                         "ours: mean [95% interval] (n)": _cell(cells[c.metric]), "paper": ""})
    lines += [_md_table(rows), ""]
    if o.comparisons:
        lines += [_md_table([_comparison_row(k) for k in o.comparisons]), ""]
    if o.comparisons and c.kind == "monotone":
        rho = spearman([o.cells[r].mean for r in c.rows])
        rho = "undefined (equal means)" if rho is None else f"{rho:.2f}"
        lines += [f"Spearman's rank correlation of our means with the order of {c.key}: {rho} "
                  "(shown, not part of the verdict).", ""]
    lines += [f"**Verdict: {o.verdict}** ({o.why}).", "", _links(c.experiment, reports_dir, results_dir), ""]
    return "\n".join(lines)


#: column names the results file writes and :func:`earlier_sections` reads back
COL_CLAIM, COL_OURS, COL_COMPARISON, COL_APART_BY = "claim", "ours", "comparison (a − b)", "apart by"


def _comparison_row(k: Comparison) -> dict:
    p = k.paired or {}
    # p = 0: no resample reached 0, so p is below the resolution of N_BOOT resamples (two-sided)
    pv = f"p < {2 / N_BOOT:g}" if p.get("p_value") == 0 else f"p = {_num(p.get('p_value'))}"
    paired = (f"{_num(p.get('mean_diff'))} [{_num(p.get('ci_low'))}, {_num(p.get('ci_high'))}], "
              f"{pv}, {p.get('n')} pairs") if p else "— (no per-video scores)"
    return {COL_COMPARISON: f"{k.a} − {k.b}", "ours: a − b": _num(k.cell_a.mean - k.cell_b.mean),
            "paired bootstrap: mean [95% CI], p, pairs": paired, COL_APART_BY: k.apart_by, "verdict": k.verdict}


def _claims_label(path: Path) -> str:
    """The suite's own claims file as the repository names it; another file as given."""
    return "reports/claims.yaml" if path.resolve() == CLAIMS_FILE else str(path)


def render(outcomes: list[Outcome], reports_dir: Path, results_path: Path, store: str,
           claims_path: Path) -> str:
    """The Markdown of the results file."""
    counts = {v: sum(o.verdict == v for o in outcomes) for v in VERDICTS}
    apart = sum(o.verdict == REPRODUCED and o.intervals_apart for o in outcomes)
    kept = sum(o.kept is not None for o in outcomes)
    summary = (f"**Summary: of {len(outcomes)} claims, {counts[REPRODUCED]} reproduced ({apart} with our 95% "
               f"intervals apart, {counts[REPRODUCED] - apart} by the paired bootstrap alone), "
               f"{counts[NOT_REPRODUCED]} not reproduced, {counts[NOT_SEPARABLE]} not separable, "
               f"{counts[NOT_RUN]} not run.**" + (f" {kept} of the {len(outcomes)} are kept from an earlier "
                                                  "build (their sections name their runs)." if kept else ""))
    results_dir = results_path.parent
    table = _md_table([{COL_CLAIM: f"[{o.claim.id}](#{o.claim.id})",
                        "paper": f"{o.claim.paper}, {o.claim.source}",
                        "experiment": f"`{o.claim.experiment}`", "metric": o.claim.metric,
                        "paper's ordering": o.claim.paper_ordering(), COL_OURS: _ours_short(o),
                        "verdict": o.verdict} for o in outcomes])
    head = [
        "# Reproducing the papers' findings on SynthTalk", "",
        "<!-- generated by `python -m reports.build`; do not edit: rerun it -->", "",
        f"Generated by `python -m reports.build` from the MLflow store `{store}` and the claims in "
        f"`{_claims_label(claims_path)}`. Ours: the newest tracked run of each claim's experiment, seeds "
        "pooled; the paper's numbers: `reports/paper/*.csv`. A claim whose experiment has no run in that "
        "store keeps its section from the earlier build of this file, marked as kept; its `Run:` line names "
        "the run (parent run id, code commit) it was built from.", "",
        summary, "", table, "",
        "## How to read it", "",
        RULES, "",
        "Ours is `mean [95% interval] (n)`, as in the tables: with several seeds the mean of the seed means "
        "and the 95% t-interval over seeds (n = seeds), with one seed the mean over test videos and its "
        "bootstrap interval (n = test videos). Control rows are the test set's own ground truth scored by "
        "the same code, "
        "intact and broken one way each (`experiments/controls.py`): they show the scale of each metric, "
        "between a perfect and a broken model.", "",
        "## The claims", "", "",
    ]
    return "\n".join(head) + "\n".join(_claim_section(o, reports_dir, results_dir, store) for o in outcomes)


def write_results(client: MlflowClient, exp_id: str, path: str | os.PathLike, reports_dir: str | os.PathLike,
                  claims_path: str | os.PathLike | None = None, tables: dict[str, Table] | None = None,
                  store: str = "", keep: bool = True) -> Path | None:
    """Check every claim against the tracked runs and write the results file (atomically) to ``path``;
    None, and nothing written, when no claim's experiment has a finished tracked run. ``tables``: the
    tables this build already made, by experiment name (not rebuilt). ``keep``: a claim whose experiment
    has no run in this store keeps its section of the file at ``path`` (:func:`earlier_sections`)."""
    claims_path = Path(claims_path or CLAIMS_FILE)
    claims = load_claims(claims_path)
    runs = {name: experiment_runs(client, exp_id, name, (tables or {}).get(name))
            for name in dict.fromkeys(c.experiment for c in claims)}
    if not any(r.ran for r in runs.values()):
        log.warning("no claim of %s has a tracked run in %s: %s not written", claims_path,
                    store or "the store", path)
        return None
    path = Path(path)
    earlier = earlier_sections(path, claims, store) if keep else {}
    per_video = _PerVideo(client)
    outcomes = []
    for c in claims:
        o = evaluate_claim(c, runs[c.experiment], per_video)
        if not runs[c.experiment].ran and c.id in earlier:
            k = earlier[c.id]
            o = Outcome(c, k.verdict, "kept from an earlier build", runs[c.experiment], kept=k)
        outcomes.append(o)
    if earlier:
        log.info("%s: %d claim(s) kept from the earlier build (no run of their experiment in %s)", path,
                 sum(o.kept is not None for o in outcomes), store or "the store")
    return write_text(path, render(outcomes, Path(reports_dir), path, store, claims_path))


_KEPT_NOTE = "*Kept from an earlier build of this file"


def _md_rows(lines: list[str], i: int) -> list[dict[str, str]]:
    """The rows of the Markdown table whose header is ``lines[i]`` (as :func:`_md_table` writes them)."""
    def cells(line):
        return [x.strip() for x in line.strip().strip("|").split("|")]
    cols, rows = cells(lines[i]), []
    for line in lines[i + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(cols, cells(line))))
    return rows


def earlier_sections(path: Path, claims: list[Claim], store: str = "") -> dict[str, Kept]:
    """The sections of the results file at ``path`` that the claims can keep, by claim id: those with a
    verdict other than not run whose head (paper, source, experiment, metric, paper's ordering) is the
    claim's as it stands now, so that an edited claim is checked afresh. Each kept section is marked as
    such, naming this build's store."""
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    if "\n## The claims\n" not in text:
        return {}
    head, body = text.split("\n## The claims\n", 1)
    lines = head.splitlines()
    ours = {}
    for i, line in enumerate(lines):
        if line.startswith(f"| {COL_CLAIM} "):
            for row in _md_rows(lines, i):
                m = re.match(r"\[([\w.-]+)\]", row.get(COL_CLAIM, ""))
                if m:
                    ours[m.group(1)] = row.get(COL_OURS, "—")
    by_id, out = {c.id: c for c in claims}, {}
    for chunk in re.split(r"^### ", body, flags=re.M)[1:]:
        cid, _, rest = chunk.partition("\n")
        c = by_id.get(cid.strip())
        verdict = re.search(r"^\*\*Verdict: ([a-z ]+)\*\*", rest, re.M)
        if c is None or verdict is None or verdict.group(1) not in VERDICTS or verdict.group(1) == NOT_RUN:
            continue
        if _claim_head(c) not in rest or f"Paper's ordering: {c.paper_ordering()}." not in rest:
            continue  # the claim changed since that build
        section = [line for line in f"### {chunk}".rstrip("\n").splitlines() if not line.startswith(_KEPT_NOTE)]
        apart = False
        for i, line in enumerate(section):
            if line.startswith(f"| {COL_COMPARISON}"):
                first = _md_rows(section, i)[:1]
                apart = bool(first) and "intervals" in first[0].get(COL_APART_BY, "")
                break
        where = f" (`{store}`)" if store else ""
        note = (f"{_KEPT_NOTE}: this build's store{where} has no run of `{c.experiment}`; the `Run:` line "
                "names the run the section was built from.*")
        section[3:3] = ["", note]
        out[c.id] = Kept(verdict.group(1), ours.get(c.id, "—"), apart, "\n".join(section) + "\n")
    return out


def spearman(values: list[float]) -> float | None:
    """Spearman's rank correlation of ``values`` with their position (the swept key's order); None when
    every value is the same (no ranking)."""
    if len(set(values)) < 2:
        return None
    return float(stats.spearmanr(range(len(values)), values).statistic)
