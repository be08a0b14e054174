"""The papers' ablation findings that SynthTalk should reproduce (issue 21), and the verdict rules.

Each claim in ``reports/claims.yaml`` names an experiment (an ``experiments/configs/ablation`` or
``table`` config), the rows it compares (labels of that config's ``experiment.variants``), one metric
and the direction the paper reports, with the paper section or table it comes from. Two kinds:

- ``pair``: the paper's better row against its worse row; ``direction: higher | lower`` is where the
  better row's value lies (Loopy Table 3: ``Loopy (Full)`` below ``w/o TSM`` on DGlo).
- ``monotone``: rows in the order of a swept config key (``key``); ``direction: rises | falls`` says how
  the metric follows the key (Loopy Table 7: Sync-C rises with the audio guidance ratio).

Verdicts (the wording ``docs/SYNTHTALK_RESULTS.md`` prints in :data:`RULES`): two of our cells are
*apart* when their 95% intervals do not overlap, or when the paired bootstrap over the test videos and
seeds both rows scored puts the 95% interval of the mean difference on one side of 0, on the side of
our means' order. A pair claim is *reproduced* when our means order the rows as the paper does and
they are apart, *not reproduced* when they are apart the other way, *not separable* otherwise, and
*not run* when a row lacks a value. A monotone claim is reproduced when its first and last rows are
apart in the paper's direction and no adjacent pair is apart against it; not reproduced when the ends
or any adjacent pair are apart against it; not separable otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from reports.tables import Cell

CLAIMS_FILE = Path(__file__).resolve().parent / "claims.yaml"

REPRODUCED, NOT_REPRODUCED = "reproduced", "not reproduced"
NOT_SEPARABLE, NOT_RUN = "not separable", "not run"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, NOT_SEPARABLE, NOT_RUN)

#: direction word -> sign: +1 the better (pair) or later (monotone) row has the higher value
_PAIR_DIRECTIONS = {"higher": 1, "lower": -1}
_MONOTONE_DIRECTIONS = {"rises": 1, "falls": -1}

RULES = (
    "Two rows are **apart** on a metric when their 95% intervals do not overlap, or when the paired "
    "bootstrap of the per-video scores both rows have (pairs = same test video and seed; 2,000 "
    "resamples; percentile 95% interval of the mean difference) excludes 0 on the side of our means' "
    "order. Set metrics (FID, FVD, E-FID) have no per-video scores: for them only the intervals count "
    "(videos resampled; runs scored from 2026-12-06 on shift that interval by the resampling's own bias, "
    "metrics/bootstrap.py).\n"
    "- **reproduced**: our means order the rows as the paper does and the rows are apart;\n"
    "- **not reproduced**: the rows are apart in the opposite order;\n"
    "- **not separable**: the rows are not apart (including a cell that rests on one value, n=1, "
    "and so has no interval);\n"
    "- **not run**: no finished tracked run of the experiment gives every row of the claim a value of "
    "the metric.\n\n"
    "A monotone claim (rows in the order of a swept config key) is reproduced when its first and last "
    "rows are apart in the paper's direction and no adjacent pair of rows is apart against it; not "
    "reproduced when the first and last rows, or any adjacent pair, are apart against it; not "
    "separable otherwise."
)


class ClaimsFileError(ValueError):
    """A malformed claims file; the message names the file, the claim and the key."""


@dataclass(frozen=True)
class Claim:
    """One finding of a paper, as ``reports/claims.yaml`` states it (see the module docstring)."""

    id: str
    paper: str
    source: str
    experiment: str
    metric: str
    statement: str
    kind: str
    #: +1: the better row (pair) / the later row (monotone) has the higher value; -1: the lower
    sign: int
    better: str | None = None
    worse: str | None = None
    rows: tuple[str, ...] = ()
    key: str | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        """The experiment's rows this claim reads, in the order the paper's statement puts them."""
        return (self.better, self.worse) if self.kind == "pair" else self.rows

    @property
    def direction_word(self) -> str:
        words = _PAIR_DIRECTIONS if self.kind == "pair" else _MONOTONE_DIRECTIONS
        return next(w for w, s in words.items() if s == self.sign)

    def paper_ordering(self) -> str:
        """``Loopy (Full) < w/o TSM`` (pair) or ``Sync-C rises with model.guidance.audio_ratio (4 rows)``."""
        if self.kind == "pair":
            return f"{self.better} {'>' if self.sign > 0 else '<'} {self.worse}"
        return f"{self.metric} {self.direction_word} with {self.key} ({len(self.rows)} rows)"


_REQUIRED = ("id", "paper", "source", "experiment", "metric", "statement", "kind", "direction")


def load_claims(path: str | Path = CLAIMS_FILE) -> list[Claim]:
    """The claims of ``path`` (a mapping with a list ``claims``), checked for shape; one-line errors."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ClaimsFileError(f"{path}: cannot be read as YAML ({type(e).__name__}: {e}); fix the file") \
            from e
    if not isinstance(doc, dict) or not isinstance(doc.get("claims"), list):
        raise ClaimsFileError(f"{path}: expected a mapping with a list `claims:`; see reports/claims.yaml")
    claims, seen = [], set()
    for i, entry in enumerate(doc["claims"]):
        where = f"{path}: claims[{i}]" + (f" ({entry.get('id')!r})" if isinstance(entry, dict) else "")
        if not isinstance(entry, dict):
            raise ClaimsFileError(f"{where}: a claim is a mapping with keys {', '.join(_REQUIRED)}")
        missing = [k for k in _REQUIRED if entry.get(k) in (None, "")]
        if missing:
            raise ClaimsFileError(f"{where}: missing {', '.join(missing)}")
        claims.append(_claim(entry, where))
        if claims[-1].id in seen:
            raise ClaimsFileError(f"{where}: id {claims[-1].id!r} is used twice; ids must be unique")
        seen.add(claims[-1].id)
    return claims


def _claim(entry: dict, where: str) -> Claim:
    kind, direction = str(entry["kind"]), str(entry["direction"])
    common = {k: str(entry[k]) for k in ("id", "paper", "source", "experiment", "metric", "statement")}
    if kind == "pair":
        if direction not in _PAIR_DIRECTIONS:
            raise ClaimsFileError(f"{where}: direction must be higher or lower for a pair claim, "
                                  f"got {direction!r}")
        if not entry.get("better") or not entry.get("worse") or entry["better"] == entry["worse"]:
            raise ClaimsFileError(f"{where}: a pair claim needs two different rows `better:` and `worse:`")
        return Claim(**common, kind=kind, sign=_PAIR_DIRECTIONS[direction], better=str(entry["better"]),
                     worse=str(entry["worse"]))
    if kind == "monotone":
        if direction not in _MONOTONE_DIRECTIONS:
            raise ClaimsFileError(f"{where}: direction must be rises or falls for a monotone claim, "
                                  f"got {direction!r}")
        rows = entry.get("rows")
        if not isinstance(rows, list) or len(rows) < 3 or len(set(rows)) != len(rows):
            raise ClaimsFileError(f"{where}: a monotone claim needs `rows:`, at least 3 different row labels "
                                  "in the order of the swept key (two rows make a pair claim)")
        if not entry.get("key"):
            raise ClaimsFileError(f"{where}: a monotone claim needs `key:`, the config key its rows sweep")
        return Claim(**common, kind=kind, sign=_MONOTONE_DIRECTIONS[direction], rows=tuple(map(str, rows)),
                     key=str(entry["key"]))
    raise ClaimsFileError(f"{where}: kind must be pair or monotone, got {kind!r}")


# --------------------------------------------------------------------------------------------- verdicts
def _finite(*xs) -> bool:
    return all(x is not None and math.isfinite(x) for x in xs)


def intervals_apart(a: Cell, b: Cell) -> int:
    """+1 when ``a``'s 95% interval lies wholly above ``b``'s, -1 below, 0 when they overlap or one is
    missing (a cell of one value has none)."""
    if not _finite(a.ci_low, a.ci_high, b.ci_low, b.ci_high):
        return 0
    return 1 if a.ci_low > b.ci_high else -1 if a.ci_high < b.ci_low else 0


@dataclass
class Comparison:
    """Row ``a`` against row ``b`` on one metric, the paper expecting ``a`` on the ``sign`` side of ``b``.

    ``paired``: :func:`metrics.bootstrap.paired_bootstrap` of ``a - b`` over the (video, seed) pairs both
    rows scored, or None (a set metric, or no per-video scores)."""

    a: str
    b: str
    cell_a: Cell
    cell_b: Cell
    sign: int
    paired: dict | None = None
    #: our means' order: +1 a above b, -1 below, 0 equal
    order: int = field(init=False)
    by_intervals: bool = field(init=False)
    by_paired: bool = field(init=False)

    def __post_init__(self):
        d = self.cell_a.mean - self.cell_b.mean
        self.order = 0 if not math.isfinite(d) or d == 0 else (1 if d > 0 else -1)
        self.by_intervals = self.order != 0 and intervals_apart(self.cell_a, self.cell_b) == self.order
        p = self.paired or {}
        lo, hi = p.get("ci_low"), p.get("ci_high")
        # the paired interval counts only on the side of our means' order (a conflict separates nothing)
        self.by_paired = _finite(lo, hi) and ((self.order > 0 and lo > 0) or (self.order < 0 and hi < 0))

    @property
    def apart(self) -> bool:
        return self.by_intervals or self.by_paired

    @property
    def verdict(self) -> str:
        if not self.apart:
            return NOT_SEPARABLE
        return REPRODUCED if self.order == self.sign else NOT_REPRODUCED

    @property
    def apart_by(self) -> str:
        """Which test put the rows apart: ``intervals``, ``paired bootstrap``, both, or ``-``."""
        tests = (("intervals", self.by_intervals), ("paired bootstrap", self.by_paired))
        parts = [name for name, hit in tests if hit]
        return " and ".join(parts) or "-"


def claim_verdict(claim: Claim, comparisons: list[Comparison]) -> str:
    """The verdict of ``claim`` from its comparisons: a pair claim has one (better vs worse); a monotone
    claim has its ends (last vs first) first, then each adjacent pair (later vs earlier)."""
    if not comparisons:
        return NOT_RUN
    if claim.kind == "pair":
        return comparisons[0].verdict
    ends, steps = comparisons[0], comparisons[1:]
    if ends.verdict == NOT_REPRODUCED or any(s.verdict == NOT_REPRODUCED for s in steps):
        return NOT_REPRODUCED
    return REPRODUCED if ends.verdict == REPRODUCED else NOT_SEPARABLE


def planned_comparisons(claim: Claim) -> list[tuple[str, str]]:
    """The (a, b) row pairs a claim's verdict reads, each with the paper expecting ``a`` on the claim's
    ``sign`` side of ``b`` (see :func:`claim_verdict` for their order)."""
    if claim.kind == "pair":
        return [(claim.better, claim.worse)]
    rows = claim.rows
    return [(rows[-1], rows[0])] + [(rows[i + 1], rows[i]) for i in range(len(rows) - 1)]
