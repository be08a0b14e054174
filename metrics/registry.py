"""Metric name -> scorer, built lazily so that ``--metrics SSIM`` never imports SyncNet or I3D.

A scorer may produce several metrics (``Sync`` gives Sync-C and Sync-D; ``Motion`` gives Glo, Exp,
DGlo, DExp). ``SCORERS`` maps a scorer group to ``"module:Class"``; every class is built as
``Class(weights_cfg, device=..., standin=..., **options)`` and follows :mod:`metrics.base`.

Which network scores a group: its official weight files when they are all given (config or
environment); else, when SynthTalk evaluators are given (``lab``: the folder
``metrics.synthtalk.ensure_evaluators`` returns), the suite-trained scorer of ``LAB_SCORERS``,
built as ``Class(lab, device=..., **options)``; else the labelled stand-in (or the offline
detector) as before.
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ScorerEntry:
    """One scorer group: import target, the metric names it yields, its weight files, set or per-video."""

    target: str
    metrics: tuple[str, ...]
    weight_keys: tuple[str, ...]
    kind: str
    needs_gt: bool


SCORERS: dict[str, ScorerEntry] = {
    "FID": ScorerEntry("metrics.fid:FIDScorer", ("FID",), ("fid_inception",), "set", True),
    "FVD-I": ScorerEntry("metrics.fvd:FVDIScorer", ("FVD-I",), ("i3d_inception",), "set", True),
    "FVD-R": ScorerEntry("metrics.fvd:FVDRScorer", ("FVD-R",), ("resnet3d50",), "set", True),
    "E-FID": ScorerEntry("metrics.efid:EFIDScorer", ("E-FID",), ("deep3d_recon",), "set", True),
    "SSIM": ScorerEntry("metrics.ssim:SSIMScorer", ("SSIM",), (), "per_video", True),
    "IQA": ScorerEntry("metrics.iqa:IQAScorer", ("IQA",), (), "per_video", False),
    "VQA": ScorerEntry("metrics.iqa:VQAScorer", ("VQA",), (), "per_video", False),
    "Sync": ScorerEntry("metrics.sync:SyncScorer", ("Sync-C", "Sync-D"), ("syncnet_v2",), "per_video", False),
    "Motion": ScorerEntry("metrics.motion:MotionScorer", ("Glo", "Exp", "DGlo", "DExp"), (), "per_video", False),
    "Smo": ScorerEntry("metrics.smoothness:SmoothnessScorer", ("Smo",), ("amt_s",), "per_video", False),
}

#: Scorers built from SynthTalk evaluators, and the official files whose presence overrides them
#: (Motion has no required file; DWPose is its official detector).
LAB_SCORERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Sync": ("metrics.synthtalk.scorers:SynthTalkSyncScorer", ("syncnet_v2",)),
    "Motion": ("metrics.synthtalk.scorers:motion_scorer", ("dwpose_det", "dwpose_pose")),
    "FID": ("metrics.synthtalk.scorers:SynthTalkFIDScorer", ("fid_inception",)),
    "FVD-I": ("metrics.synthtalk.scorers:SynthTalkFVDIScorer", ("i3d_inception",)),
    "FVD-R": ("metrics.synthtalk.scorers:SynthTalkFVDRScorer", ("resnet3d50",)),
    "E-FID": ("metrics.synthtalk.scorers:SynthTalkEFIDScorer", ("deep3d_recon",)),
}

#: The metric names of docs/CONTRACTS.md, in table order.
METRIC_NAMES = ("IQA", "VQA", "Sync-C", "Sync-D", "FVD-R", "FVD-I", "FID", "Glo", "Exp", "DGlo", "DExp", "E-FID",
                "Smo", "SSIM")
METRIC_TO_SCORER = {m: group for group, e in SCORERS.items() for m in e.metrics}
#: Metrics that compare with a ground-truth video even though their scorer does not need one.
GT_ONLY_METRICS = {"DGlo", "DExp"}

#: ``SSIM@k``: SSIM of the single frame number k (1-based) against the same ground-truth frame,
#: the long-term consistency curve of MCDM Figure 5(b) (k = 30, 300, 1800, 3600, 7200).
SSIM_AT = re.compile(r"^SSIM@([1-9][0-9]*)$")


def frame_of(name: str) -> int | None:
    """k of a metric name ``SSIM@k``, else None."""
    m = SSIM_AT.match(name)
    return int(m.group(1)) if m else None


def _group(name: str) -> str | None:
    if frame_of(name) is not None:
        return "SSIM"
    return METRIC_TO_SCORER.get(name, name if name in SCORERS else None)


def group_of(name: str) -> str:
    """The scorer group that yields metric ``name`` (a group name maps to itself)."""
    group = _group(name)
    if group is None:
        raise ValueError(f"unknown metric name {name!r} (--metrics / experiment.metrics); "
                         f"known: {', '.join(METRIC_NAMES)}, SSIM@k (frame k, 1-based)")
    return group


def scorer_groups(metrics) -> list[str]:
    """Scorer groups needed for metric names (or group names), in registry order; unknown names raise."""
    metrics = list(metrics or METRIC_NAMES)
    unknown = [m for m in metrics if _group(m) is None]
    if unknown:
        raise ValueError(f"unknown metric name(s) {unknown} (--metrics / metrics.names); "
                         f"known: {', '.join(METRIC_NAMES)}, SSIM@k (frame k, 1-based)")
    wanted = {_group(m) for m in metrics}
    return [g for g in SCORERS if g in wanted]


#: Weight files that depend on a scorer option: group -> option -> {value: weight keys}.
OPTION_WEIGHT_KEYS: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "FVD-I": {"reference": {"disco": ("i3d_inception",), "styleganv": ("i3d",)}},
    "Sync": {"face_boxes": {"s3fd": ("syncnet_v2", "s3fd")}},
}


def weight_keys(group: str, options: dict | None = None) -> tuple[str, ...]:
    """The weights keys scorer ``group`` needs with ``options`` (e.g. FVD-I with ``reference=styleganv``)."""
    keys = SCORERS[group].weight_keys
    for option, by_value in OPTION_WEIGHT_KEYS.get(group, {}).items():
        value = (options or {}).get(option)
        if isinstance(value, str) and value in by_value:
            keys = by_value[value]
    return keys


def uses_lab(group: str, weights_cfg: dict | None = None, lab=None, options: dict | None = None) -> bool:
    """True when the SynthTalk evaluators in ``lab`` score ``group``: lab given, and not every official
    file the group needs with ``options`` (:func:`weight_keys`) is set."""
    from core.weights import resolve

    if lab is None or group not in LAB_SCORERS:
        return False
    official = weight_keys(group, options) or LAB_SCORERS[group][1]  # Motion lists no file of its own
    return not all(resolve(k, weights_cfg, standin=True) for k in official)


def required_weight_keys(groups, weights_cfg: dict | None = None, lab=None, options=None) -> list[str]:
    """Weight keys the groups need with their ``options`` ({group: {option: value}}), leaving out those of
    groups the SynthTalk evaluators score."""
    options = options or {}
    return [k for g in groups if not uses_lab(g, weights_cfg, lab, options.get(g))
            for k in weight_keys(g, options.get(g))]


def _load(target: str):
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def build(group: str, weights_cfg: dict | None = None, device: str = "cpu", standin: bool = True, lab=None,
          **options):
    """Import and build the scorer of ``group`` (e.g. ``"FID"``, ``"Sync"``).

    ``lab``: a SynthTalk evaluator folder; used for the groups of ``LAB_SCORERS`` whose official files
    are not given (:func:`uses_lab`).
    """
    if group not in SCORERS:
        raise ValueError(f"unknown scorer {group!r}; known: {', '.join(SCORERS)}")
    if uses_lab(group, weights_cfg, lab, options):
        return _load(LAB_SCORERS[group][0])(lab, device=device, **options)
    return _load(SCORERS[group].target)(weights_cfg, device=device, standin=standin, **options)


def builder(group: str):
    """Lazy builder ``(weights_cfg) -> scorer`` for ``group`` with default options."""
    return lambda weights_cfg=None, **kw: build(group, weights_cfg, **kw)


__all__ = ["GT_ONLY_METRICS", "LAB_SCORERS", "METRIC_NAMES", "METRIC_TO_SCORER", "OPTION_WEIGHT_KEYS", "SCORERS",
           "SSIM_AT", "ScorerEntry", "build", "builder", "frame_of", "group_of", "required_weight_keys",
           "scorer_groups", "uses_lab", "weight_keys"]
