"""Preprocessing of real data sets: decode, resample, filter, crop (``pipeline``), the papers' filters
(``filters``), face boxes and pose (``face``) and the sharded feature cache (``feature_cache``).

Command line: ``python -m datamodules.preprocess data=hdtf out_dir=... filters=loopy size=512``.
"""

from datamodules.preprocess.feature_cache import FeatureCache, landmarks68
from datamodules.preprocess.filters import PRESETS, STEPS, build_steps
from datamodules.preprocess.pipeline import Preprocessor

__all__ = ["FeatureCache", "Preprocessor", "PRESETS", "STEPS", "build_steps", "landmarks68"]
