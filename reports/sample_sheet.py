"""Sample sheets: ground truth beside every variant's generated frames, for every test item.

The numbers of a table describe videos; the sheet shows them. Each variant's run keeps a few evenly
spaced frames of every test video it generated, and of the ground truth (``samples/frames.npz``,
written by :func:`experiments.prediction_writer.save_frames` after sampling). ``reports.build`` lays them out per table as
``<name>.samples.png``: one tile per test item, in each tile a row of ground-truth frames and then one
row per variant, the same frame indices in every row.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def compose(rows: dict[str, dict], title: str, out: Path, scale: int | None = None) -> Path | None:
    """Write the sheet of ``rows`` (variant label -> ``experiments.prediction_writer.load_frames`` dict) to
    ``out`` (PNG).

    Items are those the first variant generated; a variant without an item leaves its row grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.atomic import atomic_path

    if not rows:
        return None
    labels = list(rows)
    first = rows[labels[0]]
    ids = [str(i) for i in first["ids"]]
    _, k, h, w, _ = first["gt"].shape
    pad = max(1, h // 16)
    tile_h, tile_w = (len(labels) + 1) * (h + pad), k * (w + pad)
    cols = max(1, math.ceil(math.sqrt(len(ids) * tile_h / tile_w)))
    grid_rows = math.ceil(len(ids) / cols)
    sheet = np.full((grid_rows * (tile_h + 3 * pad), cols * (tile_w + 3 * pad), 3), 255, np.uint8)
    positions = []
    for n, vid in enumerate(ids):
        r, c = divmod(n, cols)
        y0, x0 = r * (tile_h + 3 * pad) + 2 * pad, c * (tile_w + 3 * pad) + 2 * pad
        positions.append((y0, x0))
        strips = [first["gt"][n]]
        for lb in labels:
            d = rows[lb]
            where = [j for j, v in enumerate(d["ids"]) if str(v) == vid]
            strips.append(d["pred"][where[0]] if where and d["pred"].shape[2:4] == (h, w)
                          else np.full((k, h, w, 3), 128, np.uint8))
        for j, strip in enumerate(strips):
            for f in range(k):
                y, x = y0 + j * (h + pad), x0 + f * (w + pad)
                sheet[y:y + h, x:x + w] = strip[f]
    scale = scale or max(1, 192 // max(h, 1))
    dpi = 100
    fig = plt.figure(figsize=(sheet.shape[1] * scale / dpi + 2.5, sheet.shape[0] * scale / dpi + 0.6), dpi=dpi)
    ax = fig.add_axes([2.5 / (sheet.shape[1] * scale / dpi + 2.5), 0, 1 - 2.5 / (sheet.shape[1] * scale / dpi + 2.5),
                       1 - 0.6 / (sheet.shape[0] * scale / dpi + 0.6)])
    ax.imshow(sheet, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([positions[0][0] + j * (h + pad) + h / 2 for j in range(len(labels) + 1)])
    ax.set_yticklabels(["ground truth", *labels], fontsize=8)
    for (y0, x0), vid in zip(positions, ids, strict=True):
        ax.text(x0, y0 - pad / 2, vid, fontsize=7, va="bottom")
    frames = ", ".join(str(int(i) + 1) for i in first["index"][0])
    ax.set_title(f"{title}: ground truth and generated frames ({frames} of each test video)", fontsize=9)
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return out


__all__ = ["compose"]
