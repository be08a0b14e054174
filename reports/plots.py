"""Figures from a :class:`reports.tables.Table`.

By default one panel per metric, variants on the x axis: our values are bars with their 95% CI;
the paper's value for the row of the same name, where the paper has one, is a marker on a second
y axis (other data, other scale: shape, not level, is what compares). A legend under the panels says
so; a metric with no value of ours (``Table.empty``: Sync when no face was found) keeps its panel with
the reason written in it.

An experiment whose config has ``plot: {kind: line, ...}`` gets a line plot instead, the form of
the papers' figures:

- ``x: frame``: metrics ``SSIM@k`` on a frame axis, one line per variant (MCDM Figure 5b);
- ``x: <config key>`` (e.g. ``model.mta.alpha``): the metric ``y`` against that key's value in each
  variant, with its 95% CI band (MCDM Figure 7).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from core.atomic import atomic_path  # noqa: E402
from metrics.registry import frame_of  # noqa: E402
from reports.tables import Table, _header  # noqa: E402


def plot_table(t: Table, path: str | Path) -> Path | None:
    """The table's figure at ``path`` (PNG), or None when it has no value to plot."""
    if t.plot.get("kind") == "line":
        return plot_lines(t, path)
    return _plot_bars(t, path)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def _err(cells) -> list[list[float]]:
    return [[c.mean - c.ci_low if c.ci_low is not None else 0.0 for c in cells],
            [c.ci_high - c.mean if c.ci_high is not None else 0.0 for c in cells]]


def plot_lines(t: Table, path: str | Path) -> Path | None:
    x = t.plot.get("x", "frame")
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    drawn = False
    if x == "frame":
        frames = sorted((frame_of(m), m) for m in t.metrics if frame_of(m) is not None)
        for label, row in t.ours.items():
            pts = [(k, row[m]) for k, m in frames if m in row]
            if pts:
                ax.errorbar([k for k, _ in pts], [c.mean for _, c in pts], yerr=_err([c for _, c in pts]),
                            marker="o", capsize=3, label=label)
                drawn = True
        ax.set_xlabel("frame")
        if frames and frames[-1][0] / frames[0][0] >= 50:
            ax.set_xscale("log")  # the paper's frames 30 ... 7200 span more than two decades
        ax.legend(fontsize=7)
    else:
        y = t.plot.get("y") or t.metrics[0]
        pts = sorted((t.x_values[label], row[y]) for label, row in t.ours.items()
                     if label in t.x_values and y in row)
        if pts:
            cells = [c for _, c in pts]
            ax.errorbar([v for v, _ in pts], [c.mean for c in cells], yerr=_err(cells), marker="o", capsize=3,
                        label="ours")
            drawn = True
        ax.set_xlabel(t.plot.get("xlabel") or x)
    ax.set_ylabel(t.plot.get("ylabel") or _header(str(t.plot.get("y") or "SSIM"), latex=False))
    ax.set_title(t.plot.get("title") or t.name, fontsize=9)
    fig.tight_layout()
    if not drawn:
        plt.close(fig)
        return None
    return _save(fig, path)


OURS_COLOR, PAPER_COLOR = "#4C72B0", "#DD8452"


def _legend(fig, has_paper: bool) -> None:
    """What the marks mean, once per figure: bars are ours with their 95% CI, diamonds the paper's values
    (on each panel's right-hand axis, in the paper's own scale)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(color=OURS_COLOR, label="ours: mean, whiskers = 95% CI")]
    if has_paper:
        handles.append(Line2D([], [], marker="D", color=PAPER_COLOR, linestyle="none",
                              label="paper (right-hand axis)"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)


def _empty_panel(ax, metric: str, why: str) -> None:
    """A metric without a value of ours keeps its panel, saying why (e.g. no face found for Sync)."""
    import textwrap

    ax.set_title(_header(metric, latex=False), fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, textwrap.fill(f"no value: {why}", 34), ha="center", va="center", fontsize=7,
            color="#555555", transform=ax.transAxes)


def _plot_bars(t: Table, path: str | Path) -> Path | None:
    fig = bar_figure(t)
    return _save(fig, path) if fig is not None else None


def bar_figure(t: Table):
    """One panel per metric: our bars with CI whiskers, the paper's diamonds on a second axis, a legend; a
    metric without a value of ours says why in its panel. None when nothing of ours has a value."""
    metrics = [m for m in t.metrics if any(m in r for r in t.ours.values()) or m in t.empty]
    if not any(m in r for m in metrics for r in t.ours.values()):
        return None
    labels = list(t.ours)
    n = len(metrics)
    ncols = min(n, 4)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.8 * nrows + 0.4), squeeze=False)
    has_paper = False
    for ax, m in zip(axes.flat, metrics):
        if not any(m in r for r in t.ours.values()):
            _empty_panel(ax, m, t.empty[m])
            continue
        xs, ys, errs = [], [], [[], []]
        for i, label in enumerate(labels):
            c = t.ours[label].get(m)
            if c is None:
                continue
            xs.append(i)
            ys.append(c.mean)
            errs[0].append(c.mean - c.ci_low if c.ci_low is not None else 0.0)
            errs[1].append(c.ci_high - c.mean if c.ci_high is not None else 0.0)
        ax.bar(xs, ys, yerr=errs, color=OURS_COLOR, capsize=3, label="ours")
        paper = [(i, t.paper[label][m]) for i, label in enumerate(labels) if m in t.paper.get(label, {})]
        if paper:
            has_paper = True
            ax2 = ax.twinx()
            ax2.plot(*zip(*paper), "D", color=PAPER_COLOR, label="paper")
            ax2.tick_params(axis="y", labelcolor=PAPER_COLOR, labelsize=7)
        ax.set_title(_header(m, latex=False), fontsize=9)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(t.name, fontsize=10)
    _legend(fig, has_paper)
    fig.tight_layout(rect=(0, 0.06, 1, 1))  # room for the legend below the panels
    return fig
