"""The papers' claims (reports/claims.yaml) against tracked runs: docs/SYNTHTALK_RESULTS.md (issue 21).

Runs are fake: written with core.tracking.Tracker into a temporary SQLite store, with cells and
per-video scores chosen by hand so that each verdict is known in advance."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from core.tracking import Tracker
from reports.build import build_reports, main
from reports.claims import ClaimsFileError, load_claims
from tests.conftest import REPO


@pytest.fixture(scope="module")
def _empty_store(tmp_path_factory) -> Path:
    """An initialised, empty MLflow SQLite store (creating one costs seconds of schema migrations)."""
    path = tmp_path_factory.mktemp("store") / "db.sqlite"
    Tracker(f"sqlite:///{path}", "suite")
    return path


@pytest.fixture
def store(tmp_path, _empty_store, monkeypatch) -> str:
    """A fresh copy of the empty store for one test; report.pdf is not compiled (tests/test_reports_build.py
    covers pdflatex)."""
    import shutil

    shutil.copy(_empty_store, tmp_path / "db.sqlite")
    which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "pdflatex"
                        else which(name, *a, **k))
    return f"sqlite:///{tmp_path}/db.sqlite"


def _cells(cells: dict) -> dict:
    """{metric: (mean, half width)} -> an evaluation summary with that 95% interval."""
    return {m: {"mean": mu, "ci_low": mu - h, "ci_high": mu + h, "n": 10, "backbone": "test"}
            for m, (mu, h) in cells.items()}


def _log_experiment(t: Tracker, tmp: Path, name: str, metrics: list, rows: dict, seeds=(0,), controls=None,
                    paper_table=None, report=None):
    """One parent run of ``name`` with a finished child per row and seed.

    rows: label -> {"cells": {metric: (mean, half)} or {seed: {...}}, "videos": {seed: {metric: values}},
    "config": nested dict merged into the logged config}; controls: label -> {metric: (mean, half)}."""
    with t.run(name, {"suite.kind": "parent", "suite.experiment": name, "suite.data": "synthtalk",
                      "suite.scale": "tiny", "suite.paper_table": paper_table,
                      "mlflow.source.git.commit": "0960748c0ffee0000000000000000000000000ab"}) as pid:
        for label, row in rows.items():
            for seed in seeds:
                cid = t.start(f"{label} [seed {seed}]", {"suite.kind": "variant", "suite.experiment": name,
                                                         "suite.variant": label, "suite.seed": seed}, pid)
                experiment = {"metrics": metrics, "description": name, "report": report or {}}
                cfg = OmegaConf.merge(OmegaConf.create({"experiment": experiment}), row.get("config", {}))
                t.log_config(cid, cfg)
                cells = row["cells"][seed] if seed in row["cells"] else row["cells"]  # per seed, or the same
                t.log_summary(cid, _cells(cells))
                videos = row.get("videos", {}).get(seed)
                if videos is not None:
                    n = len(next(iter(videos.values())))
                    csv = tmp / f"{name}-{label}-{seed}".replace("/", "_").replace(" ", "_") / "per_video.csv"
                    csv.parent.mkdir(parents=True)
                    frame = pd.DataFrame({"video": [f"v{i}" for i in range(n)], **videos, "status": "ok"})
                    frame.to_csv(csv, index=False)
                    t.log_artifact(cid, csv, "eval")
                t.finish(cid)
        for label, cells in (controls or {}).items():
            tags = {"suite.kind": "control", "suite.experiment": name, "suite.system": label}
            cid = t.start(label, tags, pid)
            t.log_summary(cid, _cells(cells))
            t.finish(cid)


def _claims_file(tmp: Path, claims: list[dict]) -> Path:
    path = tmp / "claims.yaml"
    path.write_text(json.dumps({"claims": claims}))  # JSON is YAML
    return path


def _pair(cid, experiment, better, worse, metric, direction="higher"):
    return {"id": cid, "paper": "Paper", "source": "§1, Table 1", "experiment": experiment, "kind": "pair",
            "better": better, "worse": worse, "metric": metric, "direction": direction,
            "statement": f"{cid}."}


def _verdicts(text: str) -> dict[str, str]:
    """claim id -> verdict, from the summary table of the results file."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"\| \[([\w-]+)\]\(#[\w-]+\) .*\| ([a-z ]+?)\s*\|$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _section(text: str, cid: str) -> str:
    return text.split(f"### {cid}\n", 1)[1].split("\n### ", 1)[0]


def test_pair_verdicts_from_intervals(tmp_path, store):
    """Hand-built cells, one seed, no per-video scores: the intervals alone decide."""
    uri = store
    t = Tracker(uri, "suite")
    _log_experiment(t, tmp_path, "exp_a", ["Sync-C", "FVD-R"], {
        "Full": {"cells": {"Sync-C": (8.0, 0.2), "FVD-R": (10.0, 1.0)}},
        "w/o X": {"cells": {"Sync-C": (7.0, 0.2), "FVD-R": (12.5, 1.0)}},   # [6.8, 7.2] below [7.8, 8.2]
        "w/o Y": {"cells": {"Sync-C": (9.0, 0.2), "FVD-R": (8.0, 0.5)}},    # [8.8, 9.2] above
        "w/o Z": {"cells": {"Sync-C": (7.9, 0.2), "FVD-R": (10.5, 1.0)}},   # [7.7, 8.1] overlaps
    }, controls={"Ground truth": {"Sync-C": (9.5, 0.1)},
                 "Ground truth, audio shuffled": {"Sync-C": (1.5, 0.1)}})
    claims = _claims_file(tmp_path, [
        _pair("c-yes", "exp_a", "Full", "w/o X", "Sync-C"),
        _pair("c-no", "exp_a", "Full", "w/o Y", "Sync-C"),
        _pair("c-tie", "exp_a", "Full", "w/o Z", "Sync-C"),
        _pair("c-fvd", "exp_a", "Full", "w/o X", "FVD-R", "lower"),        # [9, 11] below [11.5, 13.5]
        _pair("c-unscored", "exp_a", "Full", "w/o X", "DGlo", "lower"),
        _pair("c-norow", "exp_a", "Full", "w/o Q", "Sync-C"),
        _pair("c-never", "never_ran", "Full", "w/o X", "Sync-C"),
    ])
    results = tmp_path / "docs" / "RESULTS.md"
    written = build_reports(uri, "suite", tmp_path / "out", results=results, claims=claims)
    assert results in written
    text = results.read_text()
    assert _verdicts(text) == {"c-yes": "reproduced", "c-no": "not reproduced", "c-tie": "not separable",
                               "c-fvd": "reproduced", "c-unscored": "not run", "c-norow": "not run",
                               "c-never": "not run"}
    assert ("**Summary: of 7 claims, 2 reproduced (2 with our 95% intervals apart, 0 by the paired bootstrap "
            "alone), 1 not reproduced, 1 not separable, 3 not run.**") in text
    yes = _section(text, "c-yes")
    assert re.search(r"\| Full +\| 8 \[7\.8, 8\.2\] \(n=10\)", yes)
    assert re.search(r"\| w/o X +\| 7 \[6\.8, 7\.2\] \(n=10\)", yes)
    assert "Paper's ordering: Full > w/o X." in yes and "apart by intervals" in yes
    # the control rows of the metric give its scale: ground truth intact and broken
    assert "| *Ground truth* (control)" in yes and "9.5 [9.4, 9.6]" in yes
    assert "| *Ground truth, audio shuffled* (control)" in yes and "1.5 [1.4, 1.6]" in yes
    assert "no per-video scores" in yes  # no eval/per_video.csv: no paired bootstrap
    assert "did not score DGlo" in _section(text, "c-unscored")
    assert "no value of Sync-C for w/o Q" in _section(text, "c-norow")
    assert "no finished tracked run of `never_ran`" in _section(text, "c-never")
    assert re.search(r"Run: data synthtalk, scale tiny, seeds 0; parent run `\w{8}`; code `0960748`", yes)
    # the table's own files, linked relative to the results file
    links = re.findall(r"\[table\]\(([^)]+)\)", yes)
    assert links == ["../out/exp_a.md"]
    assert (results.parent / links[0]).resolve() == (tmp_path / "out" / "exp_a.md")


def test_paired_bootstrap_separates_what_the_intervals_cannot(tmp_path, store):
    """Overlapping cell intervals, but every (video, seed) pair differs the same way: apart by the paired
    bootstrap. Two seeds pool into 2 x 10 pairs. A paired interval on the other side of 0 than our means'
    order (cells and per-video scores that disagree) separates nothing."""
    uri = store
    t = Tracker(uri, "suite")
    base = np.linspace(0.3, 0.9, 10)
    wobble = np.array([0.06, -0.05] * 5)  # mean +0.005, half the pairs each way: the CI straddles 0
    videos = {"Full": base + 0.05, "w/o up": base, "w/o down": base + 0.1, "w/o wobble": base + 0.05 - wobble,
              "w/o conflict": base}
    means = {label: float(v.mean()) for label, v in videos.items()}
    means["w/o conflict"] = means["Full"] + 0.05  # cells: Full below; pairs: Full 0.05 above
    # seed means 0.1 apart: the t-interval over 2 seeds is +-12.7 * 0.1 / 2 = +-0.64, every pair overlaps
    rows = {label: {"cells": {s: {"SSIM": (means[label] + d, 0.01)} for s, d in ((0, -0.05), (1, 0.05))},
                    "videos": {s: {"SSIM": v} for s in (0, 1)}} for label, v in videos.items()}
    _log_experiment(t, tmp_path, "exp_p", ["SSIM"], rows, seeds=(0, 1))
    claims = _claims_file(tmp_path, [_pair(f"p-{k}", "exp_p", "Full", f"w/o {k}", "SSIM")
                                     for k in ("up", "down", "wobble", "conflict")])
    results = tmp_path / "R.md"
    build_reports(uri, "suite", tmp_path / "out", results=results, claims=claims)
    text = results.read_text()
    assert _verdicts(text) == {"p-up": "reproduced", "p-down": "not reproduced", "p-wobble": "not separable",
                               "p-conflict": "not separable"}
    assert "1 by the paired bootstrap alone" in text
    up = _section(text, "p-up")
    # a - b = +0.05 on every pair: the bootstrap interval is the point 0.05, and no resample reaches 0
    assert "0.05 [0.05, 0.05], p < 0.001, 20 pairs" in up and "| paired bootstrap |" in up
    assert "apart by paired bootstrap" in up
    # two seeds pooled: the cell is the mean of the seed means with its t-interval over 2 seeds
    assert "(n=2)" in up


def test_a_subset_metric_pairs_only_the_videos_of_its_subset(tmp_path, store):
    """``open:SSIM`` (Loopy Table 3's open-set columns): the paired bootstrap reads the videos that the run's
    ``eval.subsets.open`` regex selects. Here the subset's 5 videos x 2 seeds all favour Full by 0.05,
    while the other 5 videos favour the ablation by as much."""
    t = Tracker(store, "suite")
    base = np.linspace(0.3, 0.9, 10)
    swing = np.array([0.05] * 5 + [-0.05] * 5)
    rows = {"Full": base + swing, "w/o X": base}
    config = {"eval": {"subsets": {"open": "^v[0-4]$"}}}
    _log_experiment(t, tmp_path, "exp_s", ["open:SSIM"], {
        label: {"cells": {s: {"open:SSIM": (0.6 + d, 0.01)} for s, d in ((0, -0.05), (1, 0.06))},
                "videos": {s: {"SSIM": v} for s in (0, 1)}, "config": config} for label, v in rows.items()},
        seeds=(0, 1))
    claims = _claims_file(tmp_path, [_pair("s", "exp_s", "Full", "w/o X", "open:SSIM")])
    results = tmp_path / "R.md"
    build_reports(store, "suite", tmp_path / "out", results=results, claims=claims)
    text = results.read_text()
    assert _verdicts(text) == {"s": "not separable"}  # equal cells (t-interval over 2 seeds: wide)
    assert "0.05 [0.05, 0.05], p < 0.001, 10 pairs" in _section(text, "s")


def test_monotone_claims(tmp_path, store):
    """Rows in the order of a swept key: ends apart in the paper's direction with no adjacent pair against
    it (reproduced), ends not apart (not separable), an adjacent pair apart against it (not reproduced),
    and the same rows claimed to fall (not reproduced)."""
    uri = store
    t = Tracker(uri, "suite")
    labels = [f"k = {k}" for k in (1, 2, 3, 4)]
    series = {"mono_up": [5.0, 5.5, 6.0, 6.5], "mono_flat": [5.0, 5.1, 5.05, 5.15],
              "mono_kink": [5.0, 7.0, 6.0, 8.0]}
    for name, means in series.items():
        half = 0.3 if name == "mono_flat" else 0.1
        _log_experiment(t, tmp_path, name, ["Sync-C"], {
            label: {"cells": {"Sync-C": (mu, half)}, "config": {"model": {"k": k}}}
            for k, (label, mu) in enumerate(zip(labels, means), start=1)})

    def mono(cid, experiment, direction="rises"):
        return {"id": cid, "paper": "Paper", "source": "Table 7", "experiment": experiment,
                "kind": "monotone", "key": "model.k", "rows": labels, "metric": "Sync-C",
                "direction": direction, "statement": "s"}

    claims = _claims_file(tmp_path, [mono("m-up", "mono_up"), mono("m-flat", "mono_flat"),
                                     mono("m-kink", "mono_kink"), mono("m-falls", "mono_up", "falls")])
    results = tmp_path / "R.md"
    build_reports(uri, "suite", tmp_path / "out", results=results, claims=claims)
    text = results.read_text()
    assert _verdicts(text) == {"m-up": "reproduced", "m-flat": "not separable", "m-kink": "not reproduced",
                               "m-falls": "not reproduced"}
    up = _section(text, "m-up")
    assert re.search(r"\| 5 → 5\.5 → 6 → 6\.5 +\|", text) and "Sync-C rises with model.k (4 rows)" in text
    assert re.search(r"\| k = 3 +\| 3 +\| 6 \[5\.9, 6\.1\]", up)  # the key's value beside each row
    assert "Spearman's rank correlation of our means with the order of model.k: 1.00" in up
    assert "apart against the paper's direction: `k = 2` → `k = 3`" in _section(text, "m-kink")


def test_results_file_is_left_alone_without_runs_of_any_claim(tmp_path, store):
    """Building reports from a store without any claim's experiment keeps an existing results file."""
    uri = store
    t = Tracker(uri, "suite")
    _log_experiment(t, tmp_path, "unrelated", ["Sync-C"], {"Full": {"cells": {"Sync-C": (8.0, 0.2)}}})
    results = tmp_path / "RESULTS.md"
    results.write_text("real results\n")
    claims = _claims_file(tmp_path, [_pair("c", "exp_a", "Full", "w/o X", "Sync-C")])
    written = build_reports(uri, "suite", tmp_path / "out", results=results, claims=claims)
    assert results not in written and results.read_text() == "real results\n"
    assert (tmp_path / "out" / "unrelated.md").exists()


def test_a_claim_without_a_run_in_this_store_keeps_its_section_from_the_earlier_build(tmp_path, store,
                                                                                     _empty_store):
    """Tables run in different stores (machines, sessions) accumulate in one results file: a claim whose
    experiment has no run in this build's store keeps its earlier section, marked as kept and counted in the
    summary; an edited claim and --fresh-results check afresh. (No tables are built: ``experiments=[]``.)"""
    import shutil

    claims = [_pair("c-a", "exp_a", "Full", "w/o X", "Sync-C"), _pair("c-b", "exp_b", "Full", "w/o X", "Sync-C")]
    path = _claims_file(tmp_path, claims)
    results = tmp_path / "RESULTS.md"
    _log_experiment(Tracker(store, "suite"), tmp_path / "a", "exp_a", ["Sync-C"], {
        "Full": {"cells": {"Sync-C": (8.0, 0.2)}}, "w/o X": {"cells": {"Sync-C": (7.0, 0.2)}}})
    build_reports(store, "suite", tmp_path / "out", [], results=results, claims=path)
    first = results.read_text()
    assert _verdicts(first) == {"c-a": "reproduced", "c-b": "not run"}
    run_a = re.search(r"Run: .*parent run `(\w{8})`", _section(first, "c-a")).group(1)

    other = tmp_path / "other.sqlite"  # a second store that has only exp_b
    shutil.copy(_empty_store, other)
    uri_b = f"sqlite:///{other}"
    _log_experiment(Tracker(uri_b, "suite"), tmp_path / "b", "exp_b", ["Sync-C"], {
        "Full": {"cells": {"Sync-C": (8.0, 0.2)}}, "w/o X": {"cells": {"Sync-C": (7.9, 0.2)}}})
    for _ in range(2):  # keeping a kept section again marks it once
        build_reports(uri_b, "suite", tmp_path / "out", [], results=results, claims=path)
        text = results.read_text()
        assert _verdicts(text) == {"c-a": "reproduced", "c-b": "not separable"}
        assert ("**Summary: of 2 claims, 1 reproduced (1 with our 95% intervals apart, 0 by the paired bootstrap "
                "alone), 0 not reproduced, 1 not separable, 0 not run.** 1 of the 2 are kept") in text
        kept = _section(text, "c-a")
        assert kept.count("*Kept from an earlier build") == 1 and f"(`{uri_b}`) has no run of `exp_a`" in kept
        assert f"parent run `{run_a}`" in kept and "| Full " in kept and "8 [7.8, 8.2]" in kept
        assert re.search(r"\| \[c-a\]\(#c-a\) .*\| 8 > 7 +\| reproduced", text)
        assert f"store `{uri_b}`" in _section(text, "c-b") and "Kept" not in _section(text, "c-b")

    # an edited claim (the other direction) is not the claim that was checked: not kept
    (tmp_path / "edited").mkdir()
    edited = _claims_file(tmp_path / "edited", [_pair("c-a", "exp_a", "Full", "w/o X", "Sync-C", "lower"),
                                                claims[1]])
    build_reports(uri_b, "suite", tmp_path / "out", [], results=results, claims=edited)
    assert _verdicts(results.read_text())["c-a"] == "not run"
    build_reports(store, "suite", tmp_path / "out", [], results=results, claims=path)  # c-a afresh, c-b kept
    assert _verdicts(results.read_text()) == {"c-a": "reproduced", "c-b": "not separable"}
    build_reports(uri_b, "suite", tmp_path / "out", [], results=results, claims=path,
                  keep_results=False)
    assert _verdicts(results.read_text()) == {"c-a": "not run", "c-b": "not separable"}


def test_cli_writes_the_default_results_file_only_when_building_everything(tmp_path, store, monkeypatch):
    """`python -m reports.build` with the suite's own claims file: docs/SYNTHTALK_RESULTS.md (relative to
    the working folder) when all experiments are built, or where --results says; not with --experiments
    alone, nor with --no-results."""
    uri = store
    t = Tracker(uri, "suite")
    _log_experiment(t, tmp_path, "loopy_simple_baseline", ["Sync-C"], {
        "Simple Baseline": {"cells": {"Sync-C": (5.0, 0.2)}},
        "Full Model": {"cells": {"Sync-C": (6.0, 0.2)}}},
        paper_table="loopy_table8_simple_baseline", report={"columns": {"Sync-C": "hdtf_Sync-C"}})
    monkeypatch.chdir(tmp_path)
    common = ["--tracking-uri", uri, "--mlflow-experiment", "suite", "--out", "reports/out"]
    main([*common, "--experiments", "loopy_simple_baseline"])
    main([*common, "--no-results"])
    default = tmp_path / "docs" / "SYNTHTALK_RESULTS.md"
    assert not default.exists()
    main([*common, "--experiments", "loopy_simple_baseline", "--results", "elsewhere/R.md"])
    assert (tmp_path / "elsewhere" / "R.md").exists()
    main(common)
    text = default.read_text()
    verdicts = _verdicts(text)
    assert set(verdicts) == {c.id for c in load_claims()} and "the claims in `reports/claims.yaml`" in text
    assert verdicts["loopy-simple-baseline-sync-c"] == "reproduced"  # 6.0 [5.8, 6.2] above 5.0 [4.8, 5.2]
    assert verdicts["loopy-simple-baseline-fvd"] == "not run"       # the run did not score FVD-R
    assert sum(v == "not run" for v in verdicts.values()) == len(verdicts) - 1
    section = _section(text, "loopy-simple-baseline-sync-c")
    # the paper's own numbers, read from reports/paper/loopy_table8_simple_baseline.csv via the run's config
    paper = pd.read_csv(REPO / "reports" / "paper" / "loopy_table8_simple_baseline.csv").set_index("method")
    for row in ("Full Model", "Simple Baseline"):
        assert re.search(rf"\| {row} +\| [^|]+\| {paper.loc[row, 'hdtf_Sync-C']:g} +\|", section), row
    assert "[table](../reports/out/loopy_simple_baseline.md)" in section


@pytest.mark.parametrize("entry, message", [
    ({"direction": "up"}, "direction must be higher or lower for a pair claim, got 'up'"),
    ({"worse": "Full"}, "a pair claim needs two different rows"),
    ({"statement": ""}, "missing statement"),
    ({"kind": "monotone", "direction": "rises", "rows": ["a", "b"], "key": "model.k"},
     "at least 3 different"),
    ({"kind": "monotone", "direction": "rises", "rows": ["a", "b", "c"]}, "needs `key:`"),
    ({"kind": "ranking"}, "kind must be pair or monotone, got 'ranking'"),
])
def test_a_malformed_claim_is_named_with_its_file_and_key(tmp_path, entry, message):
    path = _claims_file(tmp_path, [_pair("ok", "e", "Full", "w/o X", "Sync-C"),
                                   {**_pair("bad", "e", "Full", "w/o X", "Sync-C"), **entry}])
    with pytest.raises(ClaimsFileError) as e:
        load_claims(path)
    assert str(e.value).startswith(f"{path}: claims[1] ('bad'): ") and message in str(e.value)


def test_duplicate_claim_ids_are_refused(tmp_path):
    path = _claims_file(tmp_path, [_pair("same", "e", "Full", "w/o X", "Sync-C")] * 2)
    with pytest.raises(ClaimsFileError, match="id 'same' is used twice"):
        load_claims(path)


# ---------------------------------------------------------------------------- the suite's claims file
def _experiment_config(compose, name: str):
    configs = REPO / "experiments" / "configs"
    group = next(g for g in ("ablation", "table") if (configs / g / f"{name}.yaml").exists())
    return compose([f"{group}={name}"], with_test_configs=False)


def test_the_claims_name_existing_experiments_rows_and_metrics_and_agree_with_the_paper(compose):
    """Every claim of reports/claims.yaml refers to a config's own row labels and metrics; a pair claim's
    direction is the metric's arrow where it has one; a monotone claim's rows follow its key upwards; and
    wherever the paper's CSV has both rows, the paper's own numbers order them as the claim says."""
    from reports.tables import PAPER_DIR, direction, paper_rows

    claims = load_claims()
    assert {c.experiment for c in claims} >= {  # every finding issue 21 lists has at least one claim
        "loopy_components", "tsm_stride", "loopy_simple_baseline", "loopy_cfg", "mcdm_components",
        "mcdm_long_term", "joyvasa_losses", "joyvasa_cfg"}
    checked_against_paper = []
    configs = {}
    for c in claims:
        if c.experiment not in configs:
            configs[c.experiment] = _experiment_config(compose, c.experiment)
        cfg = configs[c.experiment].experiment
        assert cfg.name == c.experiment
        assert set(c.labels) <= set(cfg.variants), (c.id, c.labels, list(cfg.variants))
        assert c.metric in cfg.metrics, (c.id, c.metric, list(cfg.metrics))
        if c.kind == "pair" and direction(c.metric) != 0:
            assert c.sign == direction(c.metric), f"{c.id}: {c.direction_word} contradicts {c.metric}'s arrow"
        if c.kind == "monotone":
            values = [cfg.variants[r][c.key] for r in c.rows]
            assert all(x < y for x, y in zip(values, values[1:])), (c.id, values)
        if cfg.paper_table:
            columns = dict(cfg.report.get("columns") or {})
            assert (PAPER_DIR / f"{cfg.paper_table}.csv").exists()
            paper = paper_rows(cfg.paper_table, columns, [c.metric])
            values = [paper.get(r, {}).get(c.metric) for r in c.labels]
            if None not in values:
                steps = list(zip(values, values[1:]))  # pair: (better, worse); monotone: along the key
                expect = c.sign if c.kind == "pair" else -c.sign  # monotone pairs run earlier -> later
                assert all(expect * (x - y) > 0 for x, y in steps), (c.id, values)
                checked_against_paper.append(c.id)
    # Loopy Tables 3, 7, 8 and MCDM Table 4 print the numbers of these claims: none is left unchecked
    assert {"loopy-1temp-20mf-smo", "loopy-simple-baseline-sync-c", "loopy-simple-baseline-fvd",
            "loopy-audio-cfg-sync-c", "mcdm-fa-ssim", "mcdm-mta-ssim", "mcdm-mta-fvd"} \
        <= set(checked_against_paper)
