"""What the suite trains once and every later run reuses: a folder per key, filled by one process.

The SynthTalk autoencoder (``lightning_modules/autoencoder.py``), shared training stages
(``experiments/stage_cache.py``) and any network the suite trains for a metric live in such folders
beside the data. Filling one:

- takes a file lock (``<folder>.lock``), so two runs started at once train it once: the second waits
  and then reads what the first wrote;
- builds into a hidden temporary folder and renames it into place (``core.atomic.atomic_path``), so a
  killed run never leaves a half-written folder behind;
- checks a folder before use; a damaged one (truncated or foreign file, missing key) is reported with
  a warning naming the file, moved aside as ``<folder>.damaged-<time>`` and trained again. Nothing
  else in the cache is touched.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from core.atomic import atomic_path, sweep_partials

log = logging.getLogger(__name__)

META = "meta.json"


class DamagedCache(RuntimeError):
    """A cached folder exists but cannot be used; the message names the file."""


def key_of(parts: dict, length: int = 12) -> str:
    """A short stable hash of a JSON-able description (the cache key of a folder)."""
    import hashlib

    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:length]


def read_meta(folder: Path) -> dict:
    """The ``meta.json`` of a cached folder (what it is, how it was made, what it measured)."""
    path = Path(folder) / META
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DamagedCache(f"{path}: unreadable ({type(e).__name__}: {e})") from e


def get_or_build(folder: str | os.PathLike, build: Callable[[Path], dict], check: Callable[[Path], None],
                 what: str) -> Path:
    """The folder for one key: checked and returned if present, else built once.

    ``build(tmp)`` writes the folder's files into ``tmp`` and returns the description stored as
    ``meta.json``; ``check(folder)`` raises (any exception) when a file is damaged. ``what`` names the
    thing in messages, e.g. ``"SynthTalk autoencoder"``.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if folder.exists():
            try:
                read_meta(folder)
                check(folder)
                return folder
            except Exception as e:  # noqa: BLE001 - any failure of a cached file means: train it again
                aside = folder.with_name(f"{folder.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
                log.warning("%s in %s is damaged (%s); moved aside to %s and training it again", what, folder, e,
                            aside.name)
                os.replace(folder, aside)
        sweep_partials(folder, only_dead=False)  # a killed build's leftovers (we hold the lock)
        with atomic_path(folder, folder=True) as tmp:
            meta = build(tmp)
            (tmp / META).write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
            check(tmp)
    return folder
