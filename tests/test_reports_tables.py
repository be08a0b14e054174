"""Table builder: best/second marks, CI formatting, paper rows, LaTeX that compiles both ways."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from reports.tables import Cell, Table, paper_decimals, paper_rows, to_frame, to_latex, to_markdown

GOLDEN = Path(__file__).parent / "golden" / "table.tex"
GOLDEN_SAME_LABELS = Path(__file__).parent / "golden" / "table_same_labels.tex"


def _table():
    ours = {
        "a": {"Sync-C": Cell(1.0, 0.8, 1.2), "Sync-D": Cell(9.0, 8.5, 9.5), "Glo": Cell(3.0, 2.0, 4.0)},
        "b": {"Sync-C": Cell(3.0, 2.5, 3.5), "Sync-D": Cell(7.0, 6.0, 8.0), "Glo": Cell(1.0, 0.5, 1.5)},
        "c": {"Sync-C": Cell(2.0, 1.0, 3.0, standin=True), "Sync-D": Cell(8.0, 7.0, 9.0), "Glo": Cell(2.0, 1.0, 3.0)},
    }
    paper = paper_rows("loopy_table3_ablations", {"Sync-C": "hdtf_Sync-C", "Sync-D": "hdtf_Sync-D"},
                       ["Sync-C", "Sync-D", "Glo"])
    paper = {k: v for k, v in paper.items() if k in ("Loopy (Full)", "w/o TSM", "s = 4, r = 1")}
    return Table("demo", "Demo & test_table.", ["Sync-C", "Sync-D", "Glo"], ours, paper, "Paper (HDTF)")


def _same_label_table():
    """Loopy Table 3 as the main job writes it: our rows carry the names of the paper's rows."""
    labels = ["s = 1, r = 2", "s = 4, r = 1", "Loopy (Full)"]
    paper = paper_rows("loopy_table3_ablations", {"Sync-C": "hdtf_Sync-C", "Sync-D": "hdtf_Sync-D"},
                       ["Sync-C", "Sync-D"])
    paper = {k: paper[k] for k in labels}
    ours = {"s = 1, r = 2": {"Sync-C": Cell(1.0, 0.8, 1.2), "Sync-D": Cell(9.0, 8.5, 9.5)},
            "s = 4, r = 1": {"Sync-C": Cell(2.0, 1.5, 2.5), "Sync-D": Cell(8.5, 8.0, 9.0)},
            "Loopy (Full)": {"Sync-C": Cell(3.0, 2.5, 3.5), "Sync-D": Cell(8.0, 7.0, 9.0)}}
    return Table("tsm_stride", "TSM stride.", ["Sync-C", "Sync-D"], ours, paper, "Paper (HDTF)")


def _row(tex: str, label: str) -> str:
    return next(ln for ln in tex.splitlines() if ln.startswith(label + " &"))


def test_best_bold_second_underlined_by_direction():
    tex = to_latex(_table())
    # Sync-C higher is better: b best, c second; Sync-D lower is better: b best, c second
    assert r"\textbf{3.000}" in _row(tex, "b") and r"\textbf{7.000}" in _row(tex, "b")
    assert r"\underline{2.000}" in _row(tex, "c") and r"\underline{8.000}" in _row(tex, "c")
    assert r"\textbf" not in _row(tex, "a") and r"\underline" not in _row(tex, "a")


def test_undirected_metric_is_not_ranked():
    # Glo is judged by closeness to ground truth (no arrow in the paper): nothing marked
    tex = to_latex(_table())
    for label in "abc":
        cells = _row(tex, label).split("&")
        assert r"\textbf" not in cells[3] and r"\underline" not in cells[3]


def test_ci_half_width_and_standin_dagger():
    tex = to_latex(_table())
    assert r"1.000 {\scriptsize $\pm$ 0.200}" in _row(tex, "a")
    assert r"$^\dagger$" in _row(tex, "c") and r"$^\dagger$" not in _row(tex, "a")
    assert "Stand-in metric backbone" in tex


def test_paper_rows_are_the_csv_values_and_ranked_in_their_own_block():
    t = _table()
    df = pd.read_csv(Path(__file__).resolve().parents[1] / "reports" / "paper" / "loopy_table3_ablations.csv")
    full = df[df.method == "Loopy (Full)"].iloc[0]
    assert t.paper["Loopy (Full)"]["Sync-C"] == pytest.approx(full["hdtf_Sync-C"])
    tex = to_latex(t)
    # 8.576 is the paper's best Sync-C among the three paper rows; ours do not compete with it
    assert r"\textbf{8.576}" in _row(tex, "Loopy (Full)")
    assert tex.index(r"\emph{Paper (HDTF)}") < tex.index("Loopy (Full) &") < tex.index(r"\emph{Ours}") < tex.index("a &")


def test_labels_are_escaped_and_header_arrows():
    tex = to_latex(_table())
    assert r"Demo \& test\_table." in tex
    header = next(ln for ln in tex.splitlines() if "Sync-C" in ln and ln.startswith(" &"))
    assert header.strip() == r"& Sync-C $\uparrow$ & Sync-D $\downarrow$ & Glo \\"


def test_csv_and_markdown_carry_the_same_numbers():
    t = _table()
    df = to_frame(t)
    row = df[(df.block == "Ours") & (df.method == "b")].iloc[0]
    assert row["Sync-C"] == 3.0 and row["Sync-C.ci_low"] == 2.5 and row["Sync-C.ci_high"] == 3.5
    md = to_markdown(t)
    assert "**3.000** ± 0.500" in md and "Sync-D ↓" in md


def test_latex_matches_golden_file():
    assert to_latex(_table()) == GOLDEN.read_text()


def test_paper_rows_stay_in_the_paper_block_when_our_rows_share_their_names():
    """The paper's numbers must never be typeset under "Ours" (issue 17, item 9)."""
    tex = to_latex(_same_label_table())
    assert tex == GOLDEN_SAME_LABELS.read_text()
    lines = tex.splitlines()
    paper_head, ours_head = lines.index(r"\multicolumn{3}{l}{\emph{Paper (HDTF)}} \\"), \
        lines.index(r"\multicolumn{3}{l}{\emph{Ours}} \\")
    paper_block = lines[paper_head + 1:ours_head - 1]
    ours_block = lines[ours_head + 1:lines.index(r"\bottomrule")]
    assert lines[ours_head - 1] == r"\midrule"
    assert [ln.split(" &")[0] for ln in paper_block] == ["s = 1, r = 2", "s = 4, r = 1", "Loopy (Full)"]
    assert [ln.split(" &")[0] for ln in ours_block] == ["s = 1, r = 2", "s = 4, r = 1", "Loopy (Full)"]
    assert "7.848" in paper_block[0] and "$\\pm$" not in "".join(paper_block)   # the paper's s = 1, r = 2
    assert all("$\\pm$" in ln for ln in ours_block)


def test_a_single_video_cell_says_n1_instead_of_a_zero_interval():
    t = _same_label_table()
    t.ours["s = 4, r = 1"]["Sync-D"] = Cell(8.5, float("nan"), float("nan"), n=1)  # one test video
    tex, md = to_latex(t), to_markdown(t)
    row = [ln for ln in tex.splitlines() if ln.startswith("s = 4, r = 1 &")][-1]     # ours, after the paper's
    assert row.endswith(r"\underline{8.500} {\scriptsize n=1} \\") and "n=1: a single test video" in tex
    assert "_8.500_ (n=1)" in md and "± 0.000" not in md and r"$\pm$ 0.000" not in tex
    assert to_frame(t).set_index("method").loc["s = 4, r = 1"].iloc[-1]["Sync-D.n"] == 1


def _pdflatex(tmp: Path, name: str) -> subprocess.CompletedProcess:
    exe = shutil.which("pdflatex")
    assert exe, "pdflatex is required (Debian: texlive-latex-base texlive-latex-recommended; .ci/run installs it)"
    return subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error", name], cwd=tmp,
                          capture_output=True, text=True, timeout=120)


def test_tex_compiles_standalone_and_as_input(tmp_path):
    (tmp_path / "demo.tex").write_text(to_latex(_table()))
    r = _pdflatex(tmp_path, "demo.tex")
    assert r.returncode == 0, r.stdout[-2000:]
    assert (tmp_path / "demo.pdf").stat().st_size > 1000
    (tmp_path / "paper.tex").write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\\usepackage{graphicx}\n\\begin{document}\n"
        "Before the table.\n\\input{demo.tex}\n\\message{AFTER-TABLE-REACHED}After the table.\n\\end{document}\n")
    r = _pdflatex(tmp_path, "paper.tex")
    assert r.returncode == 0, r.stdout[-2000:]
    # the input file must hand control back to the paper instead of ending the document
    assert "AFTER-TABLE-REACHED" in r.stdout


def test_paper_values_in_percent_are_scaled_into_our_units():
    """JoyVASA Table 1 prints IQA/VQA/Smooth in percent; paper_scale 0.01 puts them beside our fractions."""
    cols = {"IQA": "IQA_pct", "Smo": "Smooth_pct", "Sync-C": "Sync-C"}
    rows = paper_rows("joyvasa_table1_celebvhq", cols, ["IQA", "Smo", "Sync-C"], {"IQA": 0.01, "Smo": 0.01})
    assert rows["JoyVASA"] == pytest.approx({"IQA": 0.6897, "Smo": 0.996, "Sync-C": 4.85})
    t = Table("t", "c", ["Smo"], {"ours": {"Smo": Cell(0.9992)}},
              {"JoyVASA": {"Smo": rows["JoyVASA"]["Smo"]}},
              metric_decimals=paper_decimals("joyvasa_table1_celebvhq", cols, ["Smo"], {"Smo": 0.01}))
    md = to_markdown(t)
    assert "0.9960" in md and "0.9992" in md  # the paper's 99.60 % to four decimals, no re-parsing


def test_orderings_compare_each_pair_with_the_papers_direction():
    from reports.tables import orderings, to_delta_markdown

    paper = {"Full": {"Sync-C": 8.0, "FID": 30.0, "Glo": 1.0}, "w/o TSM": {"Sync-C": 7.0, "FID": 31.0, "Glo": 2.0},
             "w/o A2L": {"Sync-C": 7.5, "FID": 30.0}}
    ours = {"Full": {"Sync-C": Cell(0.5), "FID": Cell(2.0, 1.5, 2.5), "Glo": Cell(3.0)},
            "w/o TSM": {"Sync-C": Cell(0.7), "FID": Cell(3.0, 2.6, 3.4), "Glo": Cell(1.0)},
            "w/o A2L": {"Sync-C": Cell(0.4), "FID": Cell(9.0)},
            "extra": {"Sync-C": Cell(9.9)}}                     # no paper value: not compared
    t = Table("t", "c", ["Sync-C", "FID", "Glo"], ours, paper)
    got = {(o.metric, o.better, o.worse): o.agrees for o in orderings(t)}
    # Sync-C (higher better): paper Full > w/o A2L > w/o TSM; ours w/o TSM 0.7 > Full 0.5 > w/o A2L 0.4
    # FID (lower better): paper Full < w/o TSM, Full = w/o A2L (tie: skipped), w/o A2L < w/o TSM
    # Glo has no direction: never ranked
    assert got == {("Sync-C", "Full", "w/o TSM"): False, ("Sync-C", "Full", "w/o A2L"): True,
                   ("Sync-C", "w/o A2L", "w/o TSM"): False,
                   ("FID", "Full", "w/o TSM"): True, ("FID", "w/o A2L", "w/o TSM"): False}
    sep = {(o.metric, o.better, o.worse) for o in orderings(t) if o.separated}
    assert sep == {("FID", "Full", "w/o TSM")}  # the only pair with both intervals, and they do not overlap
    md = to_delta_markdown(t)
    assert "Orderings reproduced: **2/5** pairs of rows, 1 of them with our 95% intervals apart" in md
    assert "| Full > w/o TSM" in md


def test_a_subset_metric_ranks_as_its_metric():
    from reports.tables import direction

    assert [direction(m) for m in ("open:Sync-C", "open:Sync-D", "open:SSIM@30", "open:Smo")] == [1, -1, 1, 0]


def test_decimals_are_the_papers_own():
    """Issue 19, item 12: Smo was printed to 3 decimals while Loopy Table 3 prints 0.9932 vs 0.9947."""
    cols = {"Sync-C": "hdtf_Sync-C", "open:Smo": "open_Smo", "FID": "hdtf_FID"}
    # read off reports/paper/loopy_table3_ablations.csv: 8.576, 0.9932, 18.021
    assert paper_decimals("loopy_table3_ablations", cols, ["Sync-C", "open:Smo", "FID"]) == {
        "Sync-C": 3, "open:Smo": 4, "FID": 3}
    # mcdm_table4_ablations.csv: 46.25, 0.749
    assert paper_decimals("mcdm_table4_ablations", {}, ["FID", "SSIM"]) == {"FID": 2, "SSIM": 3}
    # JoyVASA prints Smooth in percent with 2 decimals (99.44): 4 decimals as a fraction
    assert paper_decimals("joyvasa_table1_celebvhq", {"Smo": "Smooth_pct"}, ["Smo"], {"Smo": 0.01}) == {
        "Smo": 4}
    # a table without the metric borrows it from the papers' tables that print it (open_Smo: 4)
    assert paper_decimals(None, {}, ["Smo"]) == {"Smo": 4}
    paper = paper_rows("loopy_table3_ablations", cols, ["open:Smo"])
    t = Table("t", "c", ["open:Smo"], {"ours": {"open:Smo": Cell(0.99321, 0.99301, 0.99341)}},
              {k: paper[k] for k in ("Loopy (Full)", "SadTalker")},
              metric_decimals=paper_decimals("loopy_table3_ablations", cols, ["open:Smo"]))
    tex = to_latex(t)
    assert "0.9932" in _row(tex, "Loopy (Full)") and "0.9947" in _row(tex, "SadTalker")
    assert r"0.9932 {\scriptsize $\pm$ 0.0002}" in _row(tex, "ours")


def test_caption_math_stays_math_and_the_rest_is_escaped(tmp_path):
    """Issue 19, item 12: `s*r^k` printed as `s*rˆk`; a caption's $...$ is math now."""
    t = _table()
    t.caption = r"TSM stride $s$ ($s \cdot r^k$ frames in segment $k$) & 50% of x_y"
    tex = to_latex(t)
    assert r"TSM stride $s$ ($s \cdot r^k$ frames in segment $k$) \& 50\% of x\_y" in tex
    (tmp_path / "math.tex").write_text(tex)
    r = _pdflatex(tmp_path, "math.tex")
    assert r.returncode == 0, r.stdout[-2000:]


def test_figure_has_a_legend_and_says_why_a_panel_is_empty():
    """Issue 19, item 11: no legend; a metric without a value (Sync without a face) vanished silently."""
    from reports.plots import bar_figure

    t = _table()
    legend = [tx.get_text() for lg in bar_figure(t).legends for tx in lg.get_texts()]
    assert legend == ["ours: mean, whiskers = 95% CI"]  # no row of ours has a paper value to draw
    t.ours["Loopy (Full)"] = {"Sync-C": Cell(2.5, 2.0, 3.0)}
    t.metrics = [*t.metrics, "IQA"]
    t.empty = {"IQA": "every test video was skipped, 3 of 3 for: IQA: no face found"}
    fig = bar_figure(t)
    legend = [tx.get_text() for lg in fig.legends for tx in lg.get_texts()]
    assert legend == ["ours: mean, whiskers = 95% CI", "paper (right-hand axis)"]
    titles = [ax.get_title() for ax in fig.axes]
    assert "IQA ↑" in titles
    iqa = fig.axes[titles.index("IQA ↑")]
    written = " ".join(tx.get_text() for tx in iqa.texts).replace("\n", " ")
    assert "no value: every test video was skipped" in written
