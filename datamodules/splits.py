"""Train/test splits by fixed seed, written to (and read back from) plain split files.

MCDM (Sec. 4.1) splits HDTF 9:1 into training and test; Loopy (Sec. 4) samples 100 test
videos at random. Both are reproduced by seed and written once as ``<name>-<digest>_train.txt``
and ``<name>-<digest>_test.txt`` (one id a line). The digest covers everything the split
depends on (the data root, the usable video ids, the seed, ``test_fraction`` / ``test_count``
and the grouping), so the same inputs always read back the same files, while another folder,
another set of videos or other split settings get a split of their own instead of a stale one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from core.atomic import atomic_path


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


def split_key(ids: list[str], seed: int, test_fraction: float | None = None, test_count: int | None = None,
              groups: list[str] | None = None, root: str | Path | None = None) -> str:
    """10 hex digits naming a split by what it depends on (see the module docstring)."""
    what = {"root": str(Path(root).expanduser().resolve()) if root is not None else None,
            "ids": sorted(zip(ids, groups if groups is not None else ids, strict=True)),
            "grouped": groups is not None, "seed": int(seed), "test_fraction": test_fraction,
            "test_count": test_count}
    return hashlib.sha1(json.dumps(what, sort_keys=True).encode()).hexdigest()[:10]


def split_files(split_dir: str | Path, name: str, key: str) -> dict[str, Path]:
    d = Path(split_dir)
    return {s: d / f"{name}-{key}_{s}.txt" for s in ("train", "test")}


def load_or_write_split(split_dir: str | Path, name: str, ids: list[str], seed: int,
                        test_fraction: float | None = None, test_count: int | None = None,
                        groups: list[str] | None = None, root: str | Path | None = None,
                        ) -> tuple[dict[str, list[str]], dict[str, Path]]:
    """The split of ``ids`` and its two files: read back when this split was drawn before, else drawn by
    :func:`make_split` and written atomically."""
    files = split_files(split_dir, name, split_key(ids, seed, test_fraction, test_count, groups, root))
    avail = set(ids)
    if all(p.exists() for p in files.values()):
        return {s: [i for i in p.read_text().split() if i in avail] for s, p in files.items()}, files
    train, test = make_split(ids, seed, test_fraction=test_fraction, test_count=test_count, groups=groups)
    for s, lst in (("train", train), ("test", test)):
        with atomic_path(files[s]) as tmp:
            tmp.write_text("".join(f"{i}\n" for i in lst))
    return {"train": train, "test": test}, files
