"""MCDM's denoising U-Net (MCDM §3.1, Figure 1): Stable Diffusion 1.5's U-Net whose transformer blocks
hold four attentions: SD self-attention; two parallel cross-attentions, the archived-clip reference
attention (to F_ac, through SD's own cross-attention projections, since MCDM has no text) and the
present-clip reference attention (to F_pc, new projections); and the memory-efficient temporal
attention (MTA, §3.4) on their outputs F_ac^ref and F_pc^ref.

Variant B2 (Table 5) adds a reference U-Net (AnimateAnyone) whose self-attention inputs join the
denoiser's self-attention keys, replacing the VAE + patchify archived-clip prior.
"""

from __future__ import annotations

import logging
import os

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.attention_processor import Attention
from torch import nn

from lightning_modules.blocks.attention import KVBankProcessor, masked_attention
from lightning_modules.mcdm.memory_temporal_attention import (
    MemoryEfficientTemporalAttention,
    StandardTemporalAttention,
)

log = logging.getLogger(__name__)


def build_sd_unet(pretrained_path: str | None, config: dict | None) -> UNet2DConditionModel:
    """SD 1.5 U-Net from a local diffusers folder (``<path>/unet``) or, with random weights, from ``config``."""
    if pretrained_path:
        if not os.path.isfile(os.path.join(pretrained_path, "unet", "config.json")):
            raise FileNotFoundError(f"no diffusers U-Net at {os.path.join(pretrained_path, 'unet')!r}; set "
                                    f"model.pretrained.path to a Stable Diffusion 1.5 diffusers folder, or null")
        return UNet2DConditionModel.from_pretrained(pretrained_path, subfolder="unet")
    return UNet2DConditionModel(**dict(config or {}))


class DualReferenceProcessor:
    """Replaces SD's cross-attention (attn2): ``archived(h -> F_ac) + present(h -> F_pc)``, both recorded
    in ``ctx['refs'][name]`` for the temporal attention. A branch whose tokens are None gives zeros.

    Variant B2 has no F_ac: its reference U-Net takes the archived-clip prior's place, so the motion
    memory (MTA, §3.4) is fed with what the reference attention draws from the reference U-Net, the
    block's features attending to that U-Net's banked tokens through the self-attention projections
    (``reference``: attn1 of the block, the bank and its key). That feature goes to the memory only:
    the denoiser already reads the tokens in its self-attention (AnimateAnyone)."""

    def __init__(self, ctx: dict, name: str, present: Attention,
                 reference: tuple[Attention, dict, str] | None = None):
        self.ctx, self.name, self.present, self.reference = ctx, name, present, reference

    def _reference_unet_feature(self, hidden_states: torch.Tensor) -> torch.Tensor | None:
        if self.reference is None:
            return None
        attn1, bank, key = self.reference
        tokens = bank.get(key)
        if tokens is None:
            return None
        frames = hidden_states.shape[0] // tokens.shape[0]
        return masked_attention(attn1, hidden_states, tokens.repeat_interleave(frames, 0))

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states=None,
                 attention_mask=None, **kwargs) -> torch.Tensor:
        f_ac, f_pc = self.ctx.get("f_ac"), self.ctx.get("f_pc")
        ac = masked_attention(attn, hidden_states, f_ac) if f_ac is not None else torch.zeros_like(hidden_states)
        pc = (masked_attention(self.present, hidden_states, f_pc) if f_pc is not None
              else torch.zeros_like(hidden_states))
        memory_in = self._reference_unet_feature(hidden_states) if f_ac is None else None
        self.ctx["refs"][self.name] = (ac if memory_in is None else memory_in, pc)
        return ac + pc


class MCDMUNet(nn.Module):
    """Denoising U-Net with archived/present reference attentions and a temporal attention per block.

    Args:
        unet_config / pretrained_path: the SD U-Net (config used without weights).
        present_dim: width of the F_pc tokens. heads: heads of the present-clip reference attention;
        temporal_heads: heads of the temporal attention (``model.mta.heads``).
        temporal: 'memory' (MTA, the paper) or 'standard' (the w/o-MTA ablation).
        alpha, nb_features: MTA's Eq. 5 weight and FAVOR+ random features.
        reference_unet: True builds variant B2's reference U-Net.

    ``forward(z, t, f_ac, f_pc, frames, carry=False)``: z (B*T, C, h, w) noisy latents frame-major per
    video; t (B*T,); f_ac (B, A, d) archived tokens or None; f_pc (B*T, P, present_dim) or None.
    ``carry=True`` starts the MTA memory from the state committed by ``commit_memory()`` (long video).
    """

    def __init__(self, unet_config: dict | None = None, pretrained_path: str | None = None, present_dim: int = 768,
                 heads: int = 8, temporal: str = "memory", alpha: float = 0.1, nb_features: int = 64,
                 reference_unet: bool = False, temporal_heads: int = 8):
        super().__init__()
        if temporal not in ("memory", "standard"):
            raise ValueError(f"model.mta.kind must be 'memory' or 'standard', got {temporal!r}")
        if pretrained_path is None:
            log.warning("No Stable Diffusion weights given (model.pretrained.path is null): MCDM's denoising "
                        "U-Net is RANDOMLY INITIALISED.")
        self.unet = build_sd_unet(pretrained_path, unet_config)
        self.cross_dim = int(self.unet.config.cross_attention_dim)
        self._ctx: dict = {"refs": {}}
        self._bank: dict = {}
        self._memory: dict = {}
        self._pending: dict = {}
        self.present_ref = nn.ModuleDict()
        self.temporal = nn.ModuleDict()
        procs = dict(self.unet.attn_processors)
        for name, block in self.unet.named_modules():
            if not isinstance(block, BasicTransformerBlock):
                continue
            key, c = name.replace(".", "_"), block.attn1.to_q.out_features
            h = heads if c % heads == 0 else 1
            present = Attention(query_dim=c, cross_attention_dim=present_dim, heads=h, dim_head=c // h)
            nn.init.zeros_(present.to_out[0].weight)  # a new branch starts as a no-op on a trained U-Net
            nn.init.zeros_(present.to_out[0].bias)
            self.present_ref[key] = present
            th = temporal_heads if c % temporal_heads == 0 else 1  # model.mta.heads
            self.temporal[key] = (MemoryEfficientTemporalAttention(c, th, nb_features, alpha)
                                  if temporal == "memory" else StandardTemporalAttention(c, th))
            reference = (block.attn1, self._bank, f"{name}.attn1.processor") if reference_unet else None
            procs[f"{name}.attn2.processor"] = DualReferenceProcessor(self._ctx, key, present, reference)
            if reference_unet:
                procs[f"{name}.attn1.processor"] = KVBankProcessor(self._bank, f"{name}.attn1.processor", "read")
            block.register_forward_hook(self._temporal_hook(key))
        self.unet.set_attn_processor(procs)
        self.reference_unet = None
        if reference_unet:
            self.reference_unet = build_sd_unet(pretrained_path, unet_config)
            if pretrained_path is None:  # from the denoiser's weights, as both start from SD 1.5 (AnimateAnyone)
                self.reference_unet.load_state_dict(self.unet.state_dict(), strict=False)
            self.reference_unet.set_attn_processor({n: KVBankProcessor(self._bank, n, "write")
                                                    for n in self.reference_unet.attn_processors})

    def _temporal_hook(self, key: str):
        def hook(module, args, output):
            ctx = self._ctx
            if "frames" not in ctx:
                return output
            t = ctx["frames"]
            ac, pc = ctx["refs"].pop(key)
            n = output.shape[0] // t
            memory = self._memory.get(key) if ctx.get("carry") else None
            out, new_mem = self.temporal[key](ac.view(n, t, *ac.shape[1:]), pc.view(n, t, *pc.shape[1:]), memory)
            if new_mem is not None:
                self._pending[key] = new_mem.detach()
            return output + out.reshape(output.shape)
        return hook

    def reset_memory(self) -> None:
        """Forget the motion memory (start of a new video)."""
        self._memory.clear()
        self._pending.clear()

    def commit_memory(self) -> None:
        """Keep the memory of the last forward (the final denoising step of a clip) for the next clip."""
        self._memory = dict(self._pending)

    def encode_reference(self, ref_latent: torch.Tensor) -> None:
        """B2 only: run the reference U-Net once on the clean reference latent (B, C, h, w) and bank its
        self-attention inputs for the denoiser; without a reference U-Net the bank stays empty."""
        self._bank.clear()
        if self.reference_unet is None:
            return
        self._bank["__recording__"] = True
        t = torch.zeros(ref_latent.shape[0], device=ref_latent.device, dtype=torch.long)
        null = ref_latent.new_zeros(ref_latent.shape[0], 1, self.cross_dim)
        self.reference_unet(ref_latent, t, encoder_hidden_states=null)
        self._bank["__recording__"] = False

    def forward(self, z, t, f_ac, f_pc, frames: int, carry: bool = False) -> torch.Tensor:
        n = z.shape[0]
        if n % frames:
            raise ValueError(f"U-Net batch {n} is not a multiple of the clip length {frames}")
        self._ctx.update(frames=frames, carry=carry, refs={},
                         f_ac=None if f_ac is None else f_ac.repeat_interleave(frames, 0), f_pc=f_pc)
        try:
            null = z.new_zeros(n, 1, self.cross_dim)  # attn2 ignores it; SD's block needs a context to call attn2
            return self.unet(z, t, encoder_hidden_states=null).sample
        finally:
            for k in ("frames", "f_ac", "f_pc"):
                self._ctx.pop(k, None)
