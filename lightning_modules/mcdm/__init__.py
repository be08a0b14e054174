"""MCDM: motion-priors conditional diffusion model (../shared/papers/mcdm.txt) as a LightningModule."""

from lightning_modules.mcdm.mcdm_module import MCDMModule

__all__ = ["MCDMModule"]
