"""Tables from tracked runs: LaTeX (booktabs), CSV and Markdown, with the paper's rows beside ours.

A table has two blocks: the paper's own rows (from ``reports/paper/<table>.csv``, copied from
the papers, never edited) and our rows, one per variant, each cell ``mean ± CI half-width``
from the tracking store. Best is bold and second underlined per column *within a block*:
our numbers come from other data and possibly stand-in backbones, so they are never ranked
against the paper's. Cells that are not comparable with the paper's (a backbone that is not the official
weights: ``standin:``, ``synthtalk:``, ``custom:``; or a deviation from the paper's protocol, e.g. MediaPipe
boxes instead of S3FD tracks for Sync) carry a dagger, and the caption says per metric what deviates.

The ``.tex`` compiles on its own with pdflatex and also ``\\input``s into a paper (which
then needs ``\\usepackage{booktabs}``): it opens a document only when none is open.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from metrics.evaluate import split_subset
from metrics.registry import frame_of

PAPER_DIR = Path(__file__).resolve().parent / "paper"

# +1: higher is better (up arrow), -1: lower is better; 0: closeness to ground truth, no ranking.
# The signs follow the papers' own headers (Loopy Tables 1-3, MCDM Table 2, JoyVASA Table 1).
DIRECTION: dict[str, int] = {
    "IQA": 1, "VQA": 1, "Sync-C": 1, "Sync-D": -1, "FVD-R": -1, "FVD-I": -1, "FVD": -1, "FVD-25": -1,
    "FID": -1, "E-FID": -1, "DGlo": -1, "DExp": -1, "SSIM": 1, "Glo": 0, "Exp": 0, "Smo": 0, "Smooth": 0,
    # speed (Loopy Tables 5-6, experiment.measure: speed): seconds and real-time factor
    "s/step": -1, "Cost/clip": -1, "Cost/15s": -1, "RTF": -1,
}


def direction(metric: str) -> int:
    """+1 / -1 / 0 of a metric; ``SSIM@k`` (one frame's SSIM, MCDM Figure 5b) ranks as SSIM and
    ``open:Sync-C`` (a subset of the test videos, metrics/evaluate.py) as Sync-C."""
    metric = split_subset(metric)[1]
    return DIRECTION.get("SSIM" if frame_of(metric) is not None else metric, 0)




@dataclass
class Cell:
    mean: float
    ci_low: float | None = None
    ci_high: float | None = None
    #: the backbone is not the official weights (stand-in, synthtalk-trained, custom network)
    standin: bool = False
    #: differs from the table's reference row (the full model) by a paired bootstrap at 95%
    significant: bool = False
    #: how many values the interval is over (test videos, or seeds when seeds are pooled); None = unknown
    n: int | None = None
    #: where the run departs from the paper's protocol (metrics.base: scorer ``deviations``)
    deviations: tuple[str, ...] = ()

    @property
    def comparable(self) -> bool:
        """Official weights and the paper's protocol: the only cells a paper number may sit beside."""
        return not self.standin and not self.deviations

    @property
    def half_width(self) -> float | None:
        if self.ci_low is None or self.ci_high is None or not math.isfinite(self.ci_high - self.ci_low):
            return None
        return (self.ci_high - self.ci_low) / 2

    @property
    def single(self) -> bool:
        """One value and hence no interval (metrics/bootstrap.py): printed as "n=1", never as "± 0"."""
        return self.half_width is None and self.n is not None and self.n < 2


@dataclass
class Table:
    """One table: metric columns, paper rows and our rows (label -> metric -> Cell)."""

    name: str
    caption: str
    metrics: list[str]
    ours: dict[str, dict[str, Cell]]
    paper: dict[str, dict[str, float]] = field(default_factory=dict)
    paper_label: str = "Paper"
    ours_label: str = "Ours"
    #: decimals of a metric without an entry in ``metric_decimals``
    decimals: int = 3
    #: per metric, the decimals the paper prints it with (:func:`paper_decimals`)
    metric_decimals: dict[str, int] = field(default_factory=dict)
    #: per metric without a value of ours, why (said in the caption and in the figure)
    empty: dict[str, str] = field(default_factory=dict)
    #: ``experiment.plot`` of the config (``{kind: line, x: frame | <config key>, y: metric}``), if any
    plot: dict = field(default_factory=dict)
    #: per variant, the value of the config key ``plot.x`` (e.g. ``model.mta.alpha``)
    x_values: dict[str, float] = field(default_factory=dict)
    #: the full model's row, against which significance markers are computed
    reference_row: str | None = None
    #: control rows (``experiments/controls.py``): the ground truth intact and broken, never ranked
    controls: dict[str, dict[str, Cell]] = field(default_factory=dict)
    controls_label: str = "Controls (ground truth)"

    def places(self, metric: str) -> int:
        """Decimals of ``metric``'s cells, paper rows and ours alike."""
        return self.metric_decimals.get(metric, self.decimals)


def paper_rows(table: str | None, columns: Mapping[str, str] | None = None,
               metrics: Sequence[str] = (), scale: Mapping[str, float] | None = None) -> dict[str, dict[str, float]]:
    """Rows of ``reports/paper/<table>.csv`` keyed by method, values for ``metrics``.

    ``columns`` maps our metric name to the CSV's column (e.g. ``Sync-C: hdtf_Sync-C``);
    by default a metric reads the column of the same name. ``scale`` multiplies a metric's paper
    values into our units (JoyVASA prints IQA, VQA and Smooth in percent: ``{IQA: 0.01}``).
    """
    if not table:
        return {}
    path = PAPER_DIR / f"{table}.csv"
    if not path.exists():
        raise FileNotFoundError(f"paper table {path} not found; experiment.paper_table must name a CSV in {PAPER_DIR}")
    df = pd.read_csv(path, dtype={"method": str})
    key = df.columns[0]
    out: dict[str, dict[str, float]] = {}
    for _, row in df.iterrows():
        vals = {}
        for m in metrics:
            col = (columns or {}).get(m, m)
            if col in df.columns and not pd.isna(row[col]):
                vals[m] = float(row[col]) * float((scale or {}).get(m, 1.0))
        label = str(row[key]) if key == "method" else ", ".join(f"{c}={row[c]}" for c in df.columns[:2])
        out[label] = vals
    return out


def _decimal_places(text: str) -> int:
    """Digits after the point of a number as printed: ``"0.9932"`` -> 4, ``"18"`` -> 0."""
    text = text.strip()
    return len(text.split(".", 1)[1]) if "." in text else 0


def _column_places(df: pd.DataFrame, column: str) -> int | None:
    values = [v for v in df[column] if isinstance(v, str) and v.strip()]
    return max(map(_decimal_places, values)) if values else None


def paper_decimals(table: str | None, columns: Mapping[str, str] | None = None, metrics: Sequence[str] = (),
                   scale: Mapping[str, float] | None = None) -> dict[str, int]:
    """Per metric, the decimals the papers print it with: the most decimal places in its column of
    ``reports/paper/<table>.csv``, read as text (as a number 0.990 would lose its last digit). A metric
    this table has no column for takes them from every paper table with a column of its name (``Smo``,
    ``open_Smo``), so a table without paper rows still prints Smo's fourth decimal. A ``scale`` factor
    (JoyVASA's percent -> fraction, 0.01) adds its decimal places: 99.44 % is 0.9944."""
    tables = {p.stem: pd.read_csv(p, dtype=str) for p in sorted(PAPER_DIR.glob("*.csv"))}
    own = tables.get(table) if table else None
    out: dict[str, int] = {}
    for m in metrics:
        col = (columns or {}).get(m, m)
        places = _column_places(own, col) if own is not None and col in own.columns else None
        shift = 0
        if places is not None and (scale or {}).get(m, 1.0) not in (0, 1.0):
            shift = max(0, round(-math.log10(float(scale[m]))))
        if places is None:  # from every paper table that prints this metric
            base = split_subset(m)[1]
            found = [_column_places(df, c) for df in tables.values() for c in df.columns
                     if c == base or c.endswith(f"_{base}")]
            found = [f for f in found if f is not None]
            places = max(found) if found else None
        if places is not None:
            out[m] = places + shift
    return out


def _rank(values: dict[str, float], direction: int) -> tuple[str | None, str | None]:
    """(best, second) labels of a column; none when the metric has no direction."""
    finite = {k: v for k, v in values.items() if v is not None and math.isfinite(v)}
    if direction == 0 or len(finite) < 2:
        return None, None
    order = sorted(finite, key=lambda k: -direction * finite[k])
    return order[0], order[1] if len(order) > 1 else None


def _fmt(x: float, decimals: int) -> str:
    return f"{x:.{decimals}f}"


def _header(metric: str, latex: bool) -> str:
    d = direction(metric)
    if latex:
        arrow = {1: r" $\uparrow$", -1: r" $\downarrow$"}.get(d, "")
        return metric.replace("_", r"\_") + arrow
    return metric + {1: " ↑", -1: " ↓"}.get(d, "")


def _block(rows: Mapping[str, Mapping], metrics: Sequence[str], places: Callable[[str], int], latex: bool,
           ours: bool, rank: bool = True):
    """Formatted string cells of one block with best/second marks (none when ``rank`` is False)."""
    out = {label: {} for label in rows}
    for m in metrics:
        means = {label: (r[m].mean if ours else r[m]) for label, r in rows.items() if m in r}
        best, second = _rank(means, direction(m)) if rank else (None, None)
        for label, r in rows.items():
            if m not in r:
                out[label][m] = "--" if latex else ""
                continue
            c = r[m] if ours else Cell(r[m])
            d = places(m)
            s = _fmt(c.mean, d)
            if latex:
                s = rf"\textbf{{{s}}}" if label == best else rf"\underline{{{s}}}" if label == second else s
                if ours and c.half_width is not None:
                    s += rf" {{\scriptsize $\pm$ {_fmt(c.half_width, d)}}}"
                elif ours and c.single:
                    s += rf" {{\scriptsize n={c.n}}}"
                if not c.comparable:
                    s += r"$^\dagger$"
                if c.significant:
                    s += r"$^{*}$"
            else:
                s = f"**{s}**" if label == best else f"_{s}_" if label == second else s
                if ours and c.half_width is not None:
                    s += f" ± {_fmt(c.half_width, d)}"
                elif ours and c.single:
                    s += f" (n={c.n})"
                if not c.comparable:
                    s += "†"
                if c.significant:
                    s += "*"
            out[label][m] = s
    return out


_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "^": r"\^{}", "~": r"\~{}", "&": r"\&", "%": r"\%",
                   "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}"}


def _escape(s: str) -> str:
    """Plain text -> LaTeX text (labels and captions come from configs and may hold any character)."""
    return re.sub(r"[\\^~&%$#_{}]", lambda m: _LATEX_SPECIALS[m.group()], s)


def _escape_keeping_math(s: str) -> str:
    """A caption as LaTeX: ``$...$`` spans stay math (``$s \\cdot r^k$``), the rest is escaped text (a bare
    ``^`` would print as a circumflex accent)."""
    parts = re.split(r"(\$[^$]+\$)", s)
    return "".join(p if p.startswith("$") and p.endswith("$") and len(p) > 1 else _escape(p) for p in parts)


def to_latex(t: Table) -> str:
    """Booktabs table; compiles standalone and ``\\input``s into a paper."""
    cols = [_header(m, True) for m in t.metrics]
    blocks = []
    if t.paper:
        blocks.append((t.paper_label, _block(t.paper, t.metrics, t.places, True, False)))
    blocks.append((t.ours_label, _block(t.ours, t.metrics, t.places, True, True)))
    if t.controls:
        blocks.append((t.controls_label, _block(t.controls, t.metrics, t.places, True, True, rank=False)))
    frames, starts = [], []
    for block_label, cells in blocks:
        df = pd.DataFrame.from_dict(cells, orient="index").reindex(columns=t.metrics) if cells \
            else pd.DataFrame(columns=t.metrics)
        df.index = [_escape(str(i)) for i in df.index]
        starts.append((block_label, sum(len(f) for f in frames) if len(df) else None))
        frames.append(df)
    df = pd.concat(frames)
    df.columns = cols
    body = df.style.to_latex(hrules=True, column_format="l" + "r" * len(cols))
    # a labelled rule above each block (pandas has no row groups without multirow.sty). Blocks are
    # found by row position, not by label: our rows carry the paper's row names (tsm_stride's
    # "s = 1, r = 2" is in both blocks), so a label search would open "Ours" inside the paper block.
    lines = body.splitlines(keepends=True)
    first_row = lines.index("\\midrule\n") + 1  # booktabs: \toprule, header, \midrule, then one line per row
    ncol = len(cols) + 1
    for block_label, offset in reversed(starts):
        if offset is None:
            continue
        head = f"\\midrule\n\\multicolumn{{{ncol}}}{{l}}{{\\emph{{{_escape(block_label)}}}}} \\\\\n"
        lines.insert(first_row + offset, head)
    body = "".join(lines)
    body = re.sub(r"\\midrule\n(\\midrule\n)", r"\1", body)
    has_standin = any(c.standin for r in t.ours.values() for c in r.values())
    caption = _escape_keeping_math(t.caption)
    caption += (r" Ours: mean $\pm$ 95\% bootstrap CI half-width over test videos. "
                r"Best \textbf{bold}, second \underline{underlined}, within each block"
                + (r" (controls are not ranked)." if t.controls else "."))
    if any(c.single for r in [*t.ours.values(), *t.controls.values()] for c in r.values()):
        caption += r" n=1: a single test video, no interval."
    if has_standin:
        caption += r" $^\dagger$Stand-in metric backbone (official weights absent): not comparable with the paper's numbers."
    note = deviation_note(t)
    if note:
        caption += r" $^\dagger$" + _escape(note)
    if t.reference_row and any(c.significant for r in t.ours.values() for c in r.values()):
        caption += (rf" $^{{*}}$Differs from {_escape(t.reference_row)} at the 95\% level (paired bootstrap over "
                    r"test videos and seeds; per-video metrics only).")
    table = (f"% generated by `python -m reports.build` from the tracking store; do not edit\n"
             f"\\begin{{table}}[t]\n\\centering\n\\caption{{{caption}}}\n\\label{{tab:{t.name}}}\n"
             f"\\resizebox{{\\linewidth}}{{!}}{{%\n{body}}}\n\\end{{table}}\n")
    # Open a document only when compiled on its own: before \documentclass runs it is the real command,
    # afterwards LaTeX redefines it to \@twoclasseserror.
    return ("\\makeatletter\n\\ifx\\documentclass\\@twoclasseserror\\makeatother\\def\\suiteStandalone{0}"
            "\\else\\makeatother\\def\\suiteStandalone{1}\n"
            "\\documentclass{article}\\usepackage{booktabs}\\usepackage{graphicx}"
            "\\usepackage[margin=1cm,landscape]{geometry}\n\\begin{document}\n\\fi\n"
            + table + "\\def\\suiteEnd{\\end{document}}\\ifnum\\suiteStandalone=1 \\expandafter\\suiteEnd\\fi\n")


def deviation_note(t: Table) -> str:
    """One sentence naming, per metric, where our cells depart from the paper's protocol ("" if nowhere)."""
    per_metric: dict[str, list[str]] = {}
    for r in t.ours.values():
        for m, c in r.items():
            for d in c.deviations:
                per_metric.setdefault(m, [])
                if d not in per_metric[m]:
                    per_metric[m].append(d)
    if not per_metric:
        return ""
    parts = [f"{m}: {', '.join(ds)}" for m, ds in per_metric.items()]
    return "Not the paper's protocol, so not comparable with its numbers: " + "; ".join(parts) + "."


def to_frame(t: Table) -> pd.DataFrame:
    """Long CSV form: one row per (block, method), mean/ci columns per metric."""
    rows = []
    for label, r in t.paper.items():
        rows.append({"block": t.paper_label, "method": label, **{m: r.get(m) for m in t.metrics}})
    for block, label, r in [*((t.ours_label, k, v) for k, v in t.ours.items()),
                            *((t.controls_label, k, v) for k, v in t.controls.items())]:
        row = {"block": block, "method": label}
        for m in t.metrics:
            c = r.get(m)
            row[m] = c.mean if c else None
            row[f"{m}.ci_low"] = c.ci_low if c else None
            row[f"{m}.ci_high"] = c.ci_high if c else None
            row[f"{m}.standin"] = c.standin if c else None
            row[f"{m}.n"] = c.n if c else None
            row[f"{m}.comparable"] = c.comparable if c else None
            row[f"{m}.deviations"] = "; ".join(c.deviations) if c else None
        rows.append(row)
    return pd.DataFrame(rows)


def to_markdown(t: Table) -> str:
    note = deviation_note(t)
    parts = [f"### {t.name}\n\n{t.caption}" + (f" † {note}" if note else "") + "\n"]
    for label, rows, ours, rank in ((t.paper_label, t.paper, False, True), (t.ours_label, t.ours, True, True),
                                    (t.controls_label, t.controls, True, False)):
        if not rows:
            continue
        cells = _block(rows, t.metrics, t.places, False, ours, rank)
        df = pd.DataFrame.from_dict(cells, orient="index")[t.metrics]
        df.columns = [_header(m, False) for m in t.metrics]
        df.index.name = label
        parts.append(df.to_markdown(disable_numparse=True) + "\n")  # keep our decimals
    return "\n".join(parts)


@dataclass
class Ordering:
    """One pair of rows on one metric: does our ordering agree with the paper's?"""

    metric: str
    better: str          # the row the paper ranks better
    worse: str
    paper: tuple[float, float]
    ours: tuple[float, float]
    #: our two 95% intervals do not overlap (a conservative sign of a real difference)
    separated: bool = False
    #: one of our two cells rests on a single value: no interval to compare
    single: bool = False

    @property
    def agrees(self) -> bool:
        d = direction(self.metric)
        return d * (self.ours[0] - self.ours[1]) > 0


def orderings(t: Table) -> list[Ordering]:
    """Every pair of rows that the paper and we both report, per ranked metric, oriented so that
    ``better`` is the paper's better row (ties in the paper are left out: nothing to reproduce)."""
    out = []
    for m in t.metrics:
        if direction(m) == 0:
            continue
        labels = [k for k in t.ours if m in t.ours[k] and m in t.paper.get(k, {})]
        for i, a in enumerate(labels):
            for b in labels[i + 1:]:
                if t.paper[a][m] == t.paper[b][m]:
                    continue
                hi, lo = (a, b) if direction(m) * (t.paper[a][m] - t.paper[b][m]) > 0 else (b, a)
                ch, cl = t.ours[hi][m], t.ours[lo][m]
                sep = None not in (ch.ci_low, ch.ci_high, cl.ci_low, cl.ci_high) and (
                    ch.ci_low > cl.ci_high or cl.ci_low > ch.ci_high)
                out.append(Ordering(m, hi, lo, (t.paper[hi][m], t.paper[lo][m]), (ch.mean, cl.mean), sep,
                                    ch.single or cl.single))
    return out


ORDERINGS_LEAD = "Orderings reproduced: **"


def ordering_count(delta_markdown: str) -> str | None:
    """``"k/n"`` as :func:`to_delta_markdown` states it, or None for a table without orderings."""
    m = re.search(re.escape(ORDERINGS_LEAD) + r"(\d+/\d+)\*\*", delta_markdown)
    return m.group(1) if m else None


def to_delta_markdown(t: Table) -> str:
    """Paper vs ours: each value beside the paper's, and which of the paper's orderings we reproduce."""
    pairs = orderings(t)
    parts = [f"### {t.name}: paper vs ours\n"]
    rows = []
    for label, r in t.ours.items():
        for m in t.metrics:
            if m in r and m in t.paper.get(label, {}):
                d = t.places(m)
                ours = _fmt(r[m].mean, d) + (f" (n={r[m].n})" if r[m].single else "")
                rows.append({"row": label, "metric": m, "ours": ours, "paper": _fmt(t.paper[label][m], d)})
    if not rows:
        return parts[0] + "\nNo row of ours has a paper value to compare with.\n"
    parts.append(pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) + "\n")
    if pairs:
        agree = sum(p.agrees for p in pairs)
        sep = sum(p.agrees and p.separated for p in pairs)
        parts.append(f"{ORDERINGS_LEAD}{agree}/{len(pairs)}** pairs of rows, {sep} of them with our 95% "
                     "intervals apart (paper's better row first):\n")
        parts.append(pd.DataFrame([{"metric": p.metric, "paper: better > worse": f"{p.better} > {p.worse}",
                                    "ours agree": "yes" if p.agrees else "no",
                                    "our CIs separate": "n=1, no interval" if p.single else
                                    "yes" if p.separated else "no"} for p in pairs])
                     .to_markdown(index=False, disable_numparse=True) + "\n")
    return "\n".join(parts)
