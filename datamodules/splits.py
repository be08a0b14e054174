"""Train/test splits by fixed seed, written to (and read back from) plain split files.

MCDM (Sec. 4.1) splits HDTF 9:1 into training and test; Loopy (Sec. 4) samples 100 test
videos at random. Both are reproduced by seed and written once as ``<name>_train.txt``
and ``<name>_test.txt`` (one id a line); an existing pair is reused, so adding files to
a data set never reshuffles a published split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datamodules.video_io import atomic_path


def make_split(ids: list[str], seed: int, test_fraction: float | None = None, test_count: int | None = None,
               groups: list[str] | None = None) -> tuple[list[str], list[str]]:
    """Split ``ids`` into (train, test).

    ``test_count`` draws that many test ids (all when fewer); otherwise ``test_fraction``
    of them. With ``groups`` (e.g. speaker identity), whole groups go to one side so no
    identity is in both.
    """
    if test_count is None and test_fraction is None:
        raise ValueError("make_split: give test_fraction (e.g. 0.1 for MCDM's 9:1) or test_count (Loopy: 100)")
    pairs = sorted(zip(ids, groups if groups is not None else ids, strict=True))
    ids = [i for i, _ in pairs]
    rng = np.random.default_rng(seed)
    target = test_count if test_count is not None else int(round(len(ids) * float(test_fraction)))
    gmap: dict[str, list[str]] = {}
    for i, g in pairs:
        gmap.setdefault(g, []).append(i)
    names = sorted(gmap)
    test: set[str] = set()
    for j in rng.permutation(len(names)):
        if len(test) >= target:
            break
        test.update(gmap[names[j]])
    return [i for i in ids if i not in test], [i for i in ids if i in test]


def split_files(split_dir: str | Path, name: str) -> dict[str, Path]:
    d = Path(split_dir)
    return {s: d / f"{name}_{s}.txt" for s in ("train", "test")}


def load_or_write_split(split_dir: str | Path, name: str, ids: list[str], seed: int, **kw) -> dict[str, list[str]]:
    """Read ``<split_dir>/<name>_{train,test}.txt`` if both exist, else make and write them atomically.

    Ids in an existing file that are no longer available are dropped (with the rest kept).
    """
    files = split_files(split_dir, name)
    avail = set(ids)
    if all(p.exists() for p in files.values()):
        return {s: [i for i in p.read_text().split() if i in avail] for s, p in files.items()}
    train, test = make_split(ids, seed, **kw)
    for s, lst in (("train", train), ("test", test)):
        with atomic_path(files[s]) as tmp:
            tmp.write_text("".join(f"{i}\n" for i in lst))
    return {"train": train, "test": test}
