"""Image encoder of the present-clip motion prior (MCDM §3.3): frozen CLIP vision tower, the reference's
projected image embedding (repeated over time by the motion prior's FiLM).

Weights load from a local Hugging Face folder (``config.json`` + ``model.safetensors``, the official
``openai/clip-vit-large-patch14`` layout, or SD image-variation's ``image_encoder``); without one a
small randomly initialised CLIP vision model is built and the run says so loudly.
"""

from __future__ import annotations

import logging
import os

import torch
import torch.nn.functional as F
from torch import nn

from core.weights import fixed_seed_init

log = logging.getLogger(__name__)

# CLIP's input normalisation (openai/clip-vit-large-patch14 preprocessor_config.json)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipImageEncoder(nn.Module):
    """(B, 3, H, W) in [-1, 1] -> (B, projection_dim) CLIP image embeddings, frozen."""

    def __init__(self, path: str | None = None, random_config: dict | None = None):
        super().__init__()
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        if path:
            if not os.path.isfile(os.path.join(path, "config.json")):
                raise FileNotFoundError(f"no CLIP vision checkpoint at {path!r} (expected config.json + weights of "
                                        f"openai/clip-vit-large-patch14); fix model.image.clip_path or set it null")
            self.model = CLIPVisionModelWithProjection.from_pretrained(path)
        else:
            log.warning("No CLIP weights given (model.image.clip_path is null): MCDM's image encoder is "
                        "RANDOMLY INITIALISED.")
            with fixed_seed_init(0):  # the same random encoder in every run; the run's RNG untouched
                self.model = CLIPVisionModelWithProjection(CLIPVisionConfig(**(random_config or {})))
        self.model.requires_grad_(False).eval()
        self.size = int(self.model.config.image_size)
        self.dim = int(self.model.config.projection_dim)
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):  # frozen: stays in eval mode
        super().train(mode)
        self.model.eval()
        return self

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate((images + 1) / 2, size=(self.size, self.size), mode="bicubic", align_corners=False)
        return self.model(pixel_values=(x - self.mean) / self.std).image_embeds
