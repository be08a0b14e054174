"""Shared network blocks reused by the Loopy, MCDM and JoyVASA modules."""

from lightning_modules.blocks.attention import (
                                                KVBankProcessor,
                                                MaskedAttnProcessor,
                                                TemporalSelfAttention,
                                                masked_attention,
                                                sinusoidal_positions,
)
from lightning_modules.blocks.latent_codec import PixelUnshuffleCodec, VAECodec, build_latent_codec

__all__ = ["KVBankProcessor", "MaskedAttnProcessor", "TemporalSelfAttention", "masked_attention",
           "sinusoidal_positions", "PixelUnshuffleCodec", "VAECodec", "build_latent_codec"]
