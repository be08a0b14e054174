"""reports.build on a tracking store with known runs: the table reads exactly what was logged."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from omegaconf import OmegaConf

from core.tracking import Tracker
from reports.build import build_reports
from reports.tables import PAPER_DIR


def _log(t: Tracker, experiment: str, rows: dict, seeds=(0,), fail=()):
    tags = {"suite.kind": "parent", "suite.experiment": experiment, "suite.paper_table": "loopy_table3_ablations",
            "suite.data": "synthtalk", "suite.scale": "tiny"}
    with t.run(experiment, tags) as pid:
        for label, per_seed in rows.items():
            for seed in seeds:
                cid = t.start(f"{label} [seed {seed}]", {"suite.kind": "variant", "suite.experiment": experiment,
                                                         "suite.variant": label, "suite.seed": seed}, pid)
                # the config goes through the same flattening as a real run's
                t.log_config(cid, OmegaConf.create({"experiment": {
                    "metrics": ["Sync-C", "Sync-D"], "description": "Known runs with s*r^k & 50% _x_.",
                    "report": {"columns": {"Sync-C": "hdtf_Sync-C", "Sync-D": "hdtf_Sync-D"},
                               "paper_rows": ["Loopy (Full)", "w/o TSM"], "paper_label": "HDTF, Table 3"}}}))
                summary = per_seed[seed] if isinstance(per_seed, dict) and seed in per_seed else per_seed
                t.log_summary(cid, summary)
                t.finish(cid, "FAILED" if label in fail else "FINISHED")


def _s(mean, half, backbone="syncnet_v2"):
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n": 10, "backbone": backbone}


def test_table_from_store_marks_best_and_formats_ci(tmp_path):
    uri = f"sqlite:///{tmp_path}/db.sqlite"
    t = Tracker(uri, "suite")
    _log(t, "tsm_stride", {
        "s = 1, r = 2": {"Sync-C": _s(5.0, 0.5), "Sync-D": _s(8.0, 0.25)},
        "Loopy (Full)": {"Sync-C": _s(6.0, 0.5), "Sync-D": _s(7.0, 0.25)},
        "s = 4, r = 1": {"Sync-C": _s(5.5, 0.5, "standin:syncnet-random:seed0"), "Sync-D": _s(7.5, 0.25)},
        "crashed": {"Sync-C": _s(99.0, 0.1), "Sync-D": _s(0.1, 0.1)},
    }, fail=("crashed",))
    written = build_reports(uri, "suite", tmp_path / "out")
    tex = (tmp_path / "out" / "tsm_stride.tex").read_text()
    row = {ln.split(" &")[0]: ln for ln in tex.splitlines() if " & " in ln}
    assert r"\textbf{6.000} {\scriptsize $\pm$ 0.500}" in row["Loopy (Full)"]
    assert r"\textbf{7.000} {\scriptsize $\pm$ 0.250}" in row["Loopy (Full)"]
    assert r"\underline{5.500} {\scriptsize $\pm$ 0.500}$^\dagger$" in row["s = 4, r = 1"]
    assert r"\underline{7.500}" in row["s = 4, r = 1"]
    assert "crashed" not in row and "Failed variants (see MLflow): crashed" in tex
    # paper block: only the rows the experiment names, values straight from the CSV
    paper = pd.read_csv(PAPER_DIR / "loopy_table3_ablations.csv")
    full = paper[paper.method == "Loopy (Full)"].iloc[0]
    paper_full_row = tex.splitlines()[[i for i, ln in enumerate(tex.splitlines()) if ln.startswith("Loopy (Full) &")][0]]
    assert f"{full['hdtf_Sync-C']:.3f}" in paper_full_row and f"{full['hdtf_Sync-D']:.3f}" in paper_full_row
    assert "SadTalker" not in tex and r"\emph{Paper (HDTF, Table 3)}" in tex
    assert r"s*r\^{}k \& 50\% \_x\_." in tex  # the caption is escaped, so the table compiles
    import shutil
    import subprocess

    r = subprocess.run([shutil.which("pdflatex") or "pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                        "tsm_stride.tex"], cwd=tmp_path / "out", capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-1500:]
    assert sorted(p.name for p in written) == sorted(
        ["tsm_stride.tex", "tsm_stride.md", "tsm_stride.csv", "tsm_stride.png", "tsm_stride.delta.md", "index.md",
         "report.tex", "report.pdf"])
    assert r"\input{tsm_stride.tex}" in (tmp_path / "out" / "report.tex").read_text()
    assert (tmp_path / "out" / "report.pdf").read_bytes()[:5] == b"%PDF-"
    # paper vs ours: only "Loopy (Full)" is both a row of ours and a kept paper row, so no pair to order
    delta = (tmp_path / "out" / "tsm_stride.delta.md").read_text()
    assert "| Loopy (Full) | Sync-C   | 6.000  | 8.576   |" in delta and "Orderings reproduced" not in delta
    assert "[paper vs ours](tsm_stride.delta.md)" in (tmp_path / "out" / "index.md").read_text()


def test_seeds_pool_to_mean_and_t_interval(tmp_path):
    uri = f"sqlite:///{tmp_path}/db.sqlite"
    t = Tracker(uri, "suite")
    per_seed = {0: {"Sync-C": _s(4.0, 1.0), "Sync-D": _s(8.0, 1.0)},
                1: {"Sync-C": _s(5.0, 1.0), "Sync-D": _s(8.0, 1.0)},
                2: {"Sync-C": _s(6.0, 1.0), "Sync-D": _s(8.0, 1.0)}}
    _log(t, "seeded", {"Loopy (Full)": per_seed}, seeds=(0, 1, 2))
    build_reports(uri, "suite", tmp_path / "out")
    df = pd.read_csv(tmp_path / "out" / "seeded.csv")
    ours = df[df.block == "Ours"].iloc[0]
    # mean 5, sd 1 over 3 seeds: half-width t(0.975, 2) * 1 / sqrt(3) = 4.302653 / 1.732051 = 2.484138
    assert ours["Sync-C"] == 5.0
    assert abs((ours["Sync-C.ci_high"] - ours["Sync-C.ci_low"]) / 2 - 2.484138) < 1e-5


def test_only_the_newest_invocation_is_tabulated(tmp_path):
    uri = f"sqlite:///{tmp_path}/db.sqlite"
    t = Tracker(uri, "suite")
    _log(t, "again", {"Loopy (Full)": {"Sync-C": _s(1.0, 0.1), "Sync-D": _s(9.0, 0.1)}})
    _log(t, "again", {"Loopy (Full)": {"Sync-C": _s(2.0, 0.1), "Sync-D": _s(8.0, 0.1)}})
    build_reports(uri, "suite", tmp_path / "out")
    df = pd.read_csv(tmp_path / "out" / "again.csv")
    assert df[df.block == "Ours"]["Sync-C"].tolist() == [2.0]


def _log_figure(t: Tracker, experiment: str, metrics: list, plot: dict, rows: dict[str, tuple[dict, dict]]):
    """rows: label -> (variant overrides as nested config, summary)."""
    with t.run(experiment, {"suite.kind": "parent", "suite.experiment": experiment}) as pid:
        for label, (overrides, summary) in rows.items():
            cid = t.start(label, {"suite.kind": "variant", "suite.experiment": experiment,
                                  "suite.variant": label, "suite.seed": 0}, pid)
            t.log_config(cid, OmegaConf.merge(OmegaConf.create(
                {"experiment": {"metrics": metrics, "description": experiment, "plot": plot}}), overrides))
            t.log_summary(cid, summary)
            t.finish(cid)


def test_ssim_at_frame_columns_and_line_plot(tmp_path):
    """MCDM Figure 5(b): SSIM@k metrics survive MLflow's name rules and plot on a frame axis."""
    from reports.plots import plot_table
    from reports.tracked import table_for

    uri = f"sqlite:///{tmp_path}/db.sqlite"
    t = Tracker(uri, "suite")
    metrics = ["SSIM@30", "SSIM@300", "SSIM@7200"]
    _log_figure(t, "long_term", metrics, {"kind": "line", "x": "frame", "title": "Fig 5b"}, {
        "w/o F_a": ({}, {m: _s(v, 0.01, "none (closed form)") for m, v in zip(metrics, (0.8, 0.6, 0.3))}),
        "w/ F_a": ({}, {m: _s(v, 0.01, "none (closed form)") for m, v in zip(metrics, (0.8, 0.75, 0.7))}),
    })
    exp_id = t.client.get_experiment_by_name("suite").experiment_id
    table = table_for(t.client, exp_id, "long_term")
    assert table.metrics == metrics and table.plot == {"kind": "line", "x": "frame", "title": "Fig 5b"}
    assert table.ours["w/ F_a"]["SSIM@7200"].mean == 0.7 and table.ours["w/o F_a"]["SSIM@300"].ci_low == 0.59
    build_reports(uri, "suite", tmp_path / "out")
    tex = (tmp_path / "out" / "long_term.tex").read_text()
    row = {ln.split(" &")[0]: ln for ln in tex.splitlines() if " & " in ln}
    assert r"SSIM@7200 $\uparrow$" in tex and r"\textbf{0.700}" in row[r"w/ F\_a"]
    ax_lines = _plot_lines_of(table, tmp_path / "fig.png", plot_table)
    assert sorted(ax_lines) == ["w/ F_a", "w/o F_a"]
    assert ax_lines["w/ F_a"] == ([30, 300, 7200], [0.8, 0.75, 0.7])


def test_line_plot_against_a_config_key(tmp_path):
    """MCDM Figure 7: SSIM against model.mta.alpha, read from each variant's logged config."""
    from reports.plots import plot_table
    from reports.tracked import table_for

    uri = f"sqlite:///{tmp_path}/db.sqlite"
    t = Tracker(uri, "suite")
    rows = {f"alpha = {a}": ({"model": {"mta": {"alpha": a}}}, {"SSIM": _s(0.5 + a / 10, 0.01, "none")})
            for a in (0.5, 0.1, 0.9)}
    _log_figure(t, "alpha", ["SSIM"], {"kind": "line", "x": "model.mta.alpha", "y": "SSIM"}, rows)
    table = table_for(t.client, t.client.get_experiment_by_name("suite").experiment_id, "alpha")
    assert table.x_values == {"alpha = 0.5": 0.5, "alpha = 0.1": 0.1, "alpha = 0.9": 0.9}
    lines = _plot_lines_of(table, tmp_path / "fig.png", plot_table)
    xs, ys = lines["ours"]
    assert xs == [0.1, 0.5, 0.9] and ys == pytest.approx([0.51, 0.55, 0.59])


def _plot_lines_of(table, path, plot_table) -> dict:
    """Draw through plot_table and read back the data of each line (label -> (xs, ys))."""
    import matplotlib.pyplot as plt

    captured = {}
    real_close = plt.close

    def grab(fig=None):
        for ax in (fig.axes if fig is not None else []):
            for c in ax.containers:  # one ErrorbarContainer per plotted series; lines[0] is its data line
                ln = c.lines[0]
                captured[c.get_label()] = ([float(v) for v in ln.get_xdata()], [float(v) for v in ln.get_ydata()])
        real_close(fig)

    plt.close = grab
    try:
        assert plot_table(table, path) == path and path.stat().st_size > 0
    finally:
        plt.close = real_close
    return captured


def test_baseline_system_scored_by_the_cli_joins_the_table(tmp_path):
    """`metrics.evaluate --system Hallo --experiment tsm_stride` logs a baseline run; the table shows it
    among our rows (same metric code, same test videos), newest run per system, named in the caption."""
    import numpy as np

    from core.video_io import write_video
    from metrics.evaluate import main as evaluate_main

    uri = f"sqlite:///{tmp_path}/db.sqlite"
    t = Tracker(uri, "suite")
    _log_figure(t, "tsm_stride", ["SSIM"], {}, {"Loopy (Full)": ({}, {"SSIM": _s(0.5, 0.1, "none")})})
    rng = np.random.default_rng(0)
    for d in ("gt", "hallo", "old"):
        (tmp_path / d).mkdir()
    gt = np.repeat(np.repeat(rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8), 4, axis=1), 4, axis=2)
    write_video(tmp_path / "gt" / "clip0.mp4", gt, fps=25)
    write_video(tmp_path / "hallo" / "clip0.mp4", gt, fps=25)
    common = ["--gt", str(tmp_path / "gt"), "--metrics", "SSIM", "--n-boot", "20", "--tracking-uri", uri,
              "--mlflow-experiment", "suite", "--experiment", "tsm_stride"]
    # an older run of the same system is superseded by the newer one
    write_video(tmp_path / "old" / "clip0.mp4", 255 - gt, fps=25)
    evaluate_main(["--pred", str(tmp_path / "old"), "--system", "Hallo", *common])
    evaluate_main(["--pred", str(tmp_path / "hallo"), "--system", "Hallo", *common])
    with pytest.raises(SystemExit):
        evaluate_main(["--pred", str(tmp_path / "hallo"), "--system", "Hallo"])  # no --experiment
    from reports.tracked import table_for

    table = table_for(t.client, t.client.get_experiment_by_name("suite").experiment_id, "tsm_stride")
    assert list(table.ours) == ["Loopy (Full)", "Hallo"]
    assert table.ours["Hallo"]["SSIM"].mean > 0.9  # the newer run (identical videos), not the inverted one
    assert "Baselines scored with the same metric code on their own videos: Hallo." in table.caption


def test_significance_marks_rows_that_differ_from_the_full_model(tmp_path):
    """Paired bootstrap over the videos both rows scored: a clear drop is marked, a zero-mean wobble is not."""
    import numpy as np

    from reports.build import build_reports
    from reports.tracked import table_for

    uri = f"sqlite:///{tmp_path}/db.sqlite"
    t = Tracker(uri, "suite")
    videos = [f"v{i}" for i in range(10)]
    base = np.linspace(0.6, 0.9, 10)
    wobble = np.array([0.02, -0.02] * 5)  # paired differences of mean exactly 0
    rows = {"w/o X": ({"model.x": False}, base - 0.3), "w/o Y": ({"model.y": False}, base + wobble), "Full": ({}, base)}
    with t.run("sig", {"suite.kind": "parent", "suite.experiment": "sig"}) as pid:
        for label, (overrides, ssim) in rows.items():
            cid = t.start(label, {"suite.kind": "variant", "suite.experiment": "sig", "suite.variant": label,
                                  "suite.seed": 0, "suite.overrides": json.dumps(overrides, sort_keys=True)}, pid)
            t.log_config(cid, OmegaConf.create({"experiment": {"metrics": ["SSIM"], "description": "sig"}}))
            t.log_summary(cid, {"SSIM": _s(float(ssim.mean()), 0.05, "none")})
            csv = tmp_path / label.replace("/", "_") / "per_video.csv"
            csv.parent.mkdir()
            pd.DataFrame({"video": videos, "SSIM": ssim, "status": "ok"}).to_csv(csv, index=False)
            t.log_artifact(cid, csv, "eval")
            t.finish(cid)
    table = table_for(t.client, t.client.get_experiment_by_name("suite").experiment_id, "sig")
    assert table.reference_row == "Full"
    assert table.ours["w/o X"]["SSIM"].significant and not table.ours["w/o Y"]["SSIM"].significant
    assert not table.ours["Full"]["SSIM"].significant
    build_reports(uri, "suite", tmp_path / "out")
    tex = (tmp_path / "out" / "sig.tex").read_text()
    row = {ln.split(" &")[0]: ln for ln in tex.splitlines() if " & " in ln}
    assert "$^{*}$" in row["w/o X"] and "$^{*}$" not in row["w/o Y"]
    assert r"Differs from Full at the 95\% level (paired bootstrap" in tex


def test_speed_table_names_the_machine_and_ranks_lower_first(tmp_path):
    """Loopy Table 6 (experiment.measure: speed): seconds and RTF rank lower-is-better, and the caption says
    where the timings come from (the cells' backbone is the machine)."""
    from reports.tracked import table_for

    t = Tracker(f"sqlite:///{tmp_path}/m.db", "suite")
    machine = "NVIDIA H100 80GB HBM3 (CUDA 12.8)"
    row = {"w.o.TSM": 18.0, "Full Model": 19.0}
    _log_figure(t, "loopy_tsm_cost", ["Cost/clip", "RTF"], {}, {
        label: (OmegaConf.create({"experiment": {"measure": "speed"}}),
                {"Cost/clip": {"mean": v, "n": 2, "backbone": machine},
                 "RTF": {"mean": v / 0.48, "n": 2, "backbone": machine}}) for label, v in row.items()})
    table = table_for(t.client, t.experiment_id, "loopy_tsm_cost")
    assert f"Timed, untrained, on {machine}." in table.caption
    md = build_reports(t.uri, "suite", tmp_path / "out", experiments=["loopy_tsm_cost"])
    text = next(p for p in md if p.suffix == ".md" and p.stem == "loopy_tsm_cost").read_text()
    assert "Cost/clip ↓" in text and "| w.o.TSM    | **18.000**" in text


def test_index_lists_tables_of_earlier_calls_with_their_ordering_counts(tmp_path):
    """experiments.run rebuilds only its own table; the index still lists every table in the folder."""
    t = Tracker(f"sqlite:///{tmp_path}/m.db", "suite")
    # paper: Loopy (Full) above w/o TSM on Sync-C (higher better) and below on Sync-D (lower better)
    _log(t, "first", {"Loopy (Full)": {"Sync-C": _s(8.0, 0.1), "Sync-D": _s(6.0, 0.1)},
                      "w/o TSM": {"Sync-C": _s(7.0, 0.1), "Sync-D": _s(5.0, 0.1)}})
    build_reports(t.uri, "suite", tmp_path / "out", experiments=["first"])
    _log(t, "second", {"Loopy (Full)": {"Sync-C": _s(8.0, 0.1), "Sync-D": _s(6.0, 0.1)},
                       "w/o TSM": {"Sync-C": _s(9.0, 0.1), "Sync-D": _s(7.0, 0.1)}})
    build_reports(t.uri, "suite", tmp_path / "out", experiments=["second"])
    index = (tmp_path / "out" / "index.md").read_text()
    first = next(line for line in index.splitlines() if line.startswith("- **first**"))
    second = next(line for line in index.splitlines() if line.startswith("- **second**"))
    paper = pd.read_csv(PAPER_DIR / "loopy_table3_ablations.csv").set_index("method")
    c_better = paper.loc["Loopy (Full)", "hdtf_Sync-C"] > paper.loc["w/o TSM", "hdtf_Sync-C"]
    d_better = paper.loc["Loopy (Full)", "hdtf_Sync-D"] < paper.loc["w/o TSM", "hdtf_Sync-D"]
    # "first": full model higher Sync-C, higher Sync-D; "second": lower Sync-C, lower Sync-D
    assert f"orderings reproduced: {int(c_better) + int(not d_better)}/2" in first
    assert f"orderings reproduced: {int(not c_better) + int(d_better)}/2" in second
    assert "[first.tex](first.tex)" in first and "[second.delta.md]" not in first


def test_a_single_test_video_prints_n1_not_a_zero_interval(tmp_path):
    """An open-set subset of one video: bootstrap_ci gives no interval, and every table file says n=1."""
    from metrics.bootstrap import bootstrap_ci

    def one(value):
        return {**bootstrap_ci([value]), "backbone": "syncnet_v2"}

    uri = f"sqlite:///{tmp_path}/db.sqlite"
    _log(Tracker(uri, "suite"), "tsm_stride", {"Loopy (Full)": {"Sync-C": one(6.0), "Sync-D": _s(7.0, 0.25)},
                                               "w/o TSM": {"Sync-C": one(5.0), "Sync-D": _s(8.0, 0.25)}})
    build_reports(uri, "suite", tmp_path / "out")
    out = tmp_path / "out"
    tex, md, delta = ((out / f"tsm_stride{ext}").read_text() for ext in (".tex", ".md", ".delta.md"))
    ours = [ln for ln in tex.splitlines() if ln.startswith("Loopy (Full) &")][-1]
    assert r"6.000} {\scriptsize n=1}" in ours and r"{\scriptsize $\pm$ 0.250}" in ours
    assert r"$\pm$ 0.000" not in tex and "± 0.000" not in md and "**6.000** (n=1)" in md
    assert "| 6.000 (n=1)" in delta and "n=1, no interval" in delta
    assert pd.read_csv(out / "tsm_stride.csv").dropna(subset=["Sync-C.n"])["Sync-C.n"].tolist() == [1, 1]


def test_deviations_and_synthtalk_backbones_are_daggered_with_a_caption(tmp_path):
    # issue 17 item 6: a run with official weights but a protocol deviation (MediaPipe boxes for Sync), and a
    # network the suite trained itself (synthtalk:), are both not comparable; an official, faithful one is
    uri = f"sqlite:///{tmp_path}/db.sqlite"
    t = Tracker(uri, "suite")
    faithful = {**_s(6.0, 0.5), "deviations": [], "comparable_to_paper": True}
    mediapipe = {**_s(5.0, 0.5), "deviations": ["face boxes from mediapipe over the whole clip"],
                 "comparable_to_paper": False}
    trained = {**_s(7.5, 0.25, "synthtalk:syncnet-w0.25"), "deviations": [], "comparable_to_paper": False}
    _log(t, "tsm_stride", {"Loopy (Full)": {"Sync-C": faithful, "Sync-D": trained},
                           "s = 1, r = 2": {"Sync-C": mediapipe, "Sync-D": trained}})
    run = t.client.search_runs([t.experiment_id], "tags.`suite.variant` = 's = 1, r = 2'")[0]
    assert run.data.tags["deviations.Sync-C"] == "face boxes from mediapipe over the whole clip"
    assert run.data.tags["comparable.Sync-C"] == "false" and run.data.tags["comparable.Sync-D"] == "false"
    build_reports(uri, "suite", tmp_path / "out")
    tex = (tmp_path / "out" / "tsm_stride.tex").read_text()
    row = {ln.split(" &")[0]: ln for ln in tex.splitlines() if " & " in ln}
    ours_full = [ln for ln in tex.splitlines() if ln.startswith("Loopy (Full) &")][-1]  # ours come after the paper's
    sync_c, sync_d = ours_full.split("&")[1:3]
    assert r"$^\dagger$" not in sync_c and r"$^\dagger$" in sync_d
    assert r"$^\dagger$" in row["s = 1, r = 2"].split("&")[1]
    assert ("Not the paper's protocol, so not comparable with its numbers: Sync-C: face boxes from mediapipe over "
            "the whole clip.") in tex
    md = (tmp_path / "out" / "tsm_stride.md").read_text()
    assert "† Not the paper's protocol" in md
    csv = pd.read_csv(tmp_path / "out" / "tsm_stride.csv")
    ours = csv[csv.block == "Ours"].set_index("method")
    assert not ours.loc["s = 1, r = 2", "Sync-C.comparable"] and ours.loc["Loopy (Full)", "Sync-C.comparable"]


def test_an_empty_column_says_why_in_the_caption_and_the_figure(tmp_path):
    """Issue 19, item 11: Sync without a face left a column of dashes and no panel, without a word."""
    uri = f"sqlite:///{tmp_path}/db.sqlite"
    t = Tracker(uri, "suite")
    why = "(no face in the video; the video must show one visible face)"
    statuses = [f"skipped: Sync: face found in 0/{n} frames {why}" for n in (50, 75)]
    with t.run("empty", {"suite.kind": "parent", "suite.experiment": "empty", "suite.scale": "tiny"}) as pid:
        for label, ssim in (("a", 0.5), ("b", 0.6)):
            tags = {"suite.kind": "variant", "suite.experiment": "empty", "suite.variant": label,
                    "suite.seed": 0}
            cid = t.start(label, tags, pid)
            experiment = {"metrics": ["SSIM", "Sync-C"], "description": "d"}
            t.log_config(cid, OmegaConf.create({"experiment": experiment}))
            t.log_summary(cid, {"SSIM": _s(ssim, 0.1), "Sync-C": {"mean": float("nan"), "n": 0}})
            csv = tmp_path / label / "per_video.csv"
            csv.parent.mkdir()
            per_video = pd.DataFrame({"video": ["v1", "v2"], "SSIM": [ssim, ssim], "status": statuses})
            per_video.to_csv(csv, index=False)
            t.log_artifact(cid, csv, "eval")
            t.finish(cid)
    build_reports(uri, "suite", tmp_path / "out", experiments=["empty"])
    tex = (tmp_path / "out" / "empty.tex").read_text()
    said = ("Empty columns of ours: Sync-C: every test video was skipped, 4 of 4 for: "
            "Sync: face found in 0/50 frames")
    assert said in tex.replace("\n", " ")
    assert (tmp_path / "out" / "empty.png").exists()
