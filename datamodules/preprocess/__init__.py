"""Preprocessing of real data sets: decode, resample, filter, crop (``pipeline``), the papers' filters
(``filters``) and face boxes and pose (``face``). The sharded feature cache it writes lives in
``datamodules.feature_cache``, beside the data modules that read it.

Command line: ``python -m datamodules.preprocess data=hdtf out_dir=... filters=loopy size=512``.

The names below load on first use (PEP 562), so that ``python -m datamodules.preprocess --help`` and a
refused argument answer without importing torch.
"""

from __future__ import annotations

import importlib

_HOMES = {"PRESETS": "filters", "STEPS": "filters", "build_steps": "filters", "Preprocessor": "pipeline"}

__all__ = ["Preprocessor", "PRESETS", "STEPS", "build_steps"]


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
