"""Initialisation streams per submodule: a submodule's random initial weights depend only on the run's
seed and its own name, not on which other submodules (of which sizes) were built before it.

Without this, switching off Loopy's audio-to-latents module or changing the temporal layout would
also change the initial weights of the U-Nets (they draw from the same global stream), and an
ablation row would differ in more than what it ablates. It also makes a shared training stage
(``experiments/stage_cache.py``) independent of which variant happened to train it first.
"""

from __future__ import annotations

import zlib
from contextlib import contextmanager

import torch

from core.weights import fixed_seed_init


@contextmanager
def init_stream(name: str):
    """Draw the block's initial weights from the stream ``(initial seed, name)``; the global random
    state (CUDA's too) is left as it was, as if nothing had been drawn."""
    with fixed_seed_init((torch.initial_seed() + zlib.crc32(name.encode())) % (2 ** 63)):
        yield
