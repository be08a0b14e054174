"""Preprocessing of real data sets: decode, resample, filter, crop (``pipeline``), the papers' filters
(``filters``), face boxes and pose (``face``) and the sharded feature cache (``feature_cache``).

Command line: ``python -m datamodules.preprocess data=hdtf out_dir=... filters=loopy size=512``.

The names below load on first use (PEP 562), so that ``python -m datamodules.preprocess --help`` and a
refused argument answer without importing torch.
"""

from __future__ import annotations

import importlib

_HOMES = {"FeatureCache": "feature_cache", "landmarks68": "feature_cache", "PRESETS": "filters",
          "STEPS": "filters", "build_steps": "filters", "Preprocessor": "pipeline"}

__all__ = ["FeatureCache", "Preprocessor", "PRESETS", "STEPS", "build_steps", "landmarks68"]


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
