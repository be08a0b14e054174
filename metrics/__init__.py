"""Talking-portrait metrics: FID, FVD-I/R, E-FID, SSIM, IQA/VQA, Sync-C/D, Glo/Exp/DGlo/DExp, Smo.

Feature extractors live beside the metric they serve (``fid.py``, ``fvd.py``, ``efid.py``); the
Frechet distance is one function (``frechet.py``); every pretrained file is a row of ``core/weights.py``;
``evaluate.py`` scores a folder of videos (``python -m metrics.evaluate --pred DIR --gt DIR``).
Submodules are imported on use so that scoring one metric never loads every network.
"""
