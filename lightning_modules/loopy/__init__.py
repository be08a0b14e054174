"""Loopy (Jiang et al., ICLR 2025): one file per paper module; the LightningModule is ``LoopyModule``."""

from lightning_modules.loopy.loopy_module import LoopyModule

__all__ = ["LoopyModule"]
