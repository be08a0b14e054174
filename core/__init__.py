"""The bottom layer: what every other package shares, importing none of them.

- ``atomic``: the one atomic writer (``atomic_path``, for a file or a whole folder);
- ``video_io``: video and audio reading and writing (PyAV, soundfile);
- ``weights``: the table of every pretrained file, its resolution and checked loading, and the
  fixed-seed init of networks built without their file;
- ``tracking``: the MLflow store (runs, tags, metric keys, compare links);
- ``train_once``: folders the suite trains once and every later run reuses;
- ``cli``: how every entry point reports a user error (one line, exit status 2).

``datamodules``, ``lightning_modules``, ``metrics``, ``experiments`` and ``reports`` sit above it; the
layers are enforced by import-linter (``setup.cfg``, ``tests/test_layers.py``).
"""
