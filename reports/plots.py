"""Figures from a :class:`reports.tables.Table`: one panel per metric, variants on the x axis.

Our values are bars with their 95% CI; the paper's value for the row of the same name, where
the paper has one, is a marker on a second y axis (other data, other scale: shape, not level,
is what compares).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from datamodules.video_io import atomic_path  # noqa: E402
from reports.tables import Table, _header  # noqa: E402


def plot_table(t: Table, path: str | Path) -> Path | None:
    metrics = [m for m in t.metrics if any(m in r for r in t.ours.values())]
    if not metrics:
        return None
    labels = list(t.ours)
    n = len(metrics)
    ncols = min(n, 4)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.8 * nrows), squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        xs, ys, errs = [], [], [[], []]
        for i, label in enumerate(labels):
            c = t.ours[label].get(m)
            if c is None:
                continue
            xs.append(i)
            ys.append(c.mean)
            errs[0].append(c.mean - c.ci_low if c.ci_low is not None else 0.0)
            errs[1].append(c.ci_high - c.mean if c.ci_high is not None else 0.0)
        ax.bar(xs, ys, yerr=errs, color="#4C72B0", capsize=3, label="ours")
        paper = [(i, t.paper[label][m]) for i, label in enumerate(labels) if m in t.paper.get(label, {})]
        if paper:
            ax2 = ax.twinx()
            ax2.plot(*zip(*paper), "D", color="#DD8452", label="paper")
            ax2.tick_params(axis="y", labelcolor="#DD8452", labelsize=7)
        ax.set_title(_header(m, latex=False), fontsize=9)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(t.name, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path
