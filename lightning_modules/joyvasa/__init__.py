"""JoyVASA (Cao et al., 2024): one file per paper concept; the LightningModule is ``JoyVASAModule``."""

from lightning_modules.joyvasa.joyvasa_module import JoyVASAModule

__all__ = ["JoyVASAModule"]
