"""Dual U-Net of Loopy (§3.1, Figure 2): a denoising U-Net and a reference net of the same Stable
Diffusion 1.5 structure, both ``diffusers.UNet2DConditionModel``.

* Reference attention: in every spatial self-attention (``attn1``) of the denoising U-Net, the
  keys/values of the reference net's matching layer are concatenated along the spatial axis
  (diffusers attention processors :class:`KVBankProcessor`, write in the reference net, read in the
  denoising U-Net).
* The reference net also encodes the motion frames frame by frame; the output of each of its residual
  blocks feeds the inter-clip temporal layer of the matching residual block of the denoising U-Net
  (forward hooks on ``ResnetBlock2D``, so the SD parameter names stay intact for checkpoint loading).
* Motion latents of the audio-to-latents module are added to the timestep embedding through the
  U-Net's ``class_embed_type="identity"`` input (no new parameters).
Reference and motion-frame features are computed once per clip (:meth:`encode_reference`) and reused
at every denoising step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.resnet import ResnetBlock2D
from torch import nn

from lightning_modules.blocks.attention import KVBankProcessor
from lightning_modules.loopy.temporal_layers import LoopyTemporalBlock

log = logging.getLogger(__name__)


@dataclass
class ReferenceFeatures:
    """Reference-net outputs for one clip: ``attn[name]`` (B, N, C) self-attention inputs of the
    reference image; ``motion[name]`` (B, M, C, H, W) residual-block outputs of the motion frames."""

    attn: dict = field(default_factory=dict)
    motion: dict = field(default_factory=dict)

    def repeat(self, n: int) -> ReferenceFeatures:
        """Tile the batch n times (for the batched classifier-free guidance branches)."""
        return ReferenceFeatures({k: v.repeat(n, *[1] * (v.dim() - 1)) for k, v in self.attn.items()},
                                 {k: v.repeat(n, *[1] * (v.dim() - 1)) for k, v in self.motion.items()})


@dataclass
class _Context:
    frames: int
    temporal: bool
    motion: dict
    motion_keep: torch.Tensor | None
    audio: torch.Tensor | None


class _ReferenceHook:
    """Records a reference-net residual block's output (the motion-frame features) while recording."""

    def __init__(self, owner: DualUNet, name: str):
        self.owner, self.name = owner, name

    def __call__(self, module, args, output):
        if self.owner._bank.get("__recording__", False):
            self.owner._motion_out[self.name] = output
        return output


class _DenoiseHook:
    """Runs the temporal/audio layers after a denoising-U-Net residual block (frames folded into batch)."""

    def __init__(self, owner: DualUNet, name: str, key: str):
        self.owner, self.name, self.key = owner, name, key

    def __call__(self, module, args, output):
        ctx = self.owner._ctx
        if ctx is None or not ctx.temporal or self.key not in self.owner.temporal:
            return output
        b = output.shape[0] // ctx.frames
        x = output.view(b, ctx.frames, *output.shape[1:])
        x = self.owner.temporal[self.key](x, ctx.motion.get(self.name), ctx.motion_keep, ctx.audio)
        return x.reshape(output.shape)


def _resnet_names(unet: nn.Module) -> list[tuple[str, int]]:
    return [(n, m.out_channels) for n, m in unet.named_modules() if isinstance(m, ResnetBlock2D)]


def build_unet(pretrained_path: str | None, config: dict | None) -> UNet2DConditionModel:
    """SD 1.5 U-Net from a local diffusers folder (``<path>/unet``), or from ``config`` with random weights."""
    if pretrained_path:
        return UNet2DConditionModel.from_pretrained(pretrained_path, subfolder="unet", class_embed_type="identity")
    return UNet2DConditionModel(**dict(config or {}), class_embed_type="identity")


class DualUNet(nn.Module):
    """Reference net + denoising U-Net with Loopy's temporal and audio layers in every residual block.

    Args:
        unet_config: ``UNet2DConditionModel`` keyword arguments (used when ``pretrained_path`` is None).
        pretrained_path: SD 1.5 diffusers folder; both nets load its ``unet`` weights.
        audio_dim: width of the audio embedding tokens for the audio cross-attention.
        temporal_heads: heads of the temporal and audio attention layers.
        layout: 'dual' (inter- + intra-clip layers) or 'single' (one joint temporal layer).
        use_audio: False drops the audio cross-attention layers.
        use_temporal: False builds no temporal/audio layers at all (image model only).
    """

    def __init__(self, unet_config: dict | None = None, pretrained_path: str | None = None, audio_dim: int = 768,
                 temporal_heads: int = 8, layout: str = "dual", use_audio: bool = True, use_temporal: bool = True):
        super().__init__()
        if pretrained_path is None:
            log.warning("No Stable Diffusion weights given (model.pretrained.path is null): the reference net and "
                        "the denoising U-Net are RANDOMLY INITIALISED.")
        self.reference_net = build_unet(pretrained_path, unet_config)
        self.denoising_unet = build_unet(pretrained_path, unet_config)
        if pretrained_path is None:
            # both nets start from the same weights, as both start from SD 1.5 in the paper (§3.1): the
            # reference features then line up with the denoiser's own from the first step
            self.denoising_unet.load_state_dict(self.reference_net.state_dict())
        cross_dim = self.denoising_unet.config.cross_attention_dim
        # SD's text cross-attention has no text in Loopy (§3.1 replaces c); it attends to one learned token.
        self.null_context = nn.Parameter(torch.zeros(1, 1, cross_dim))
        self.time_embed_dim = self.denoising_unet.time_embedding.linear_2.out_features
        self._bank: dict = {}
        self._ctx: _Context | None = None
        self._motion_out: dict = {}
        self.reference_calls = 0  # how often the reference net ran (features are cached per clip)

        procs = {}
        for name in self.denoising_unet.attn_processors:
            procs[name] = KVBankProcessor(self._bank, name, "read")  # cross-attention calls pass through
        self.denoising_unet.set_attn_processor(procs)
        self.reference_net.set_attn_processor(
            {n: KVBankProcessor(self._bank, n, "write") for n in self.reference_net.attn_processors})

        self.temporal = nn.ModuleDict()
        self._names = _resnet_names(self.denoising_unet)
        ref_modules = dict(self.reference_net.named_modules())
        for name, channels in self._names:
            key = name.replace(".", "_")
            if use_temporal:
                self.temporal[key] = LoopyTemporalBlock(channels, audio_dim, temporal_heads, layout, use_audio)
            dict(self.denoising_unet.named_modules())[name].register_forward_hook(self._denoise_hook(name, key))
            ref_modules[name].register_forward_hook(self._reference_hook(name))

    # -- hooks (objects, not closures, so that a deep copy of the model hooks into the copy) --------
    def _reference_hook(self, name: str):
        return _ReferenceHook(self, name)

    def _denoise_hook(self, name: str, key: str):
        return _DenoiseHook(self, name, key)

    # -- reference net -----------------------------------------------------------------------------
    def encode_reference(self, reference: torch.Tensor, motion: torch.Tensor | None = None) -> ReferenceFeatures:
        """Run the reference net once on the reference latents and, frame by frame, the motion latents.

        :param reference: (B, C, h, w). :param motion: (B, M, C, h, w) or None.
        :returns: :class:`ReferenceFeatures` (attention tokens of the reference, residual outputs of the
            motion frames)."""
        b = reference.shape[0]
        x = reference if motion is None else torch.cat([reference, motion.flatten(0, 1)], 0)
        self._bank["__recording__"] = True
        self._motion_out.clear()
        try:
            n = x.shape[0]
            self.reference_net(x, torch.zeros(n, device=x.device, dtype=torch.long),
                               encoder_hidden_states=self.null_context.expand(n, -1, -1).to(x.dtype),
                               class_labels=x.new_zeros(n, self.time_embed_dim))
        finally:
            self._bank["__recording__"] = False
        self.reference_calls += 1
        attn = {k: v[:b] for k, v in self._bank.items() if not k.startswith("__")}
        for k in list(attn):
            self._bank.pop(k)
        feats = ReferenceFeatures(attn=attn)
        if motion is not None:
            m = motion.shape[1]
            feats.motion = {k: v[b:].reshape(b, m, *v.shape[1:]) for k, v in self._motion_out.items()}
        self._motion_out.clear()
        return feats

    # -- denoising U-Net ---------------------------------------------------------------------------
    def forward(self, noisy: torch.Tensor, timesteps: torch.Tensor, feats: ReferenceFeatures,
                reference_keep: torch.Tensor | None = None, audio: torch.Tensor | None = None,
                motion_latents: torch.Tensor | None = None, temporal: bool = True) -> torch.Tensor:
        """Predict the noise of a clip.

        :param noisy: (B, T, C, h, w) noisy latents z_t.
        :param timesteps: (B,) diffusion steps.
        :param feats: reference features of the same B samples.
        :param reference_keep: (B,) bool, False drops c_ref and the motion frames (§3.4 / CFG).
        :param audio: (B, T, L, D) audio embeddings or None.
        :param motion_latents: (B, time_embed_dim) audio-to-latents output or None.
        :param temporal: False runs the image model of stage 1 (no temporal/audio layers).
        :returns: (B, T, C, h, w) predicted noise."""
        b, t = noisy.shape[:2]
        keep = reference_keep
        if keep is None:
            keep = torch.ones(b, dtype=torch.bool, device=noisy.device)
        self._bank.update(feats.attn)
        self._bank["__keep__"] = keep
        self._ctx = _Context(t, temporal, feats.motion, keep, audio)
        try:
            x = noisy.flatten(0, 1)
            emb = motion_latents if motion_latents is not None else noisy.new_zeros(b, self.time_embed_dim)
            context = self.null_context.expand(b * t, -1, -1).to(x.dtype)
            out = self.denoising_unet(x, timesteps.repeat_interleave(t), encoder_hidden_states=context,
                                      class_labels=emb.repeat_interleave(t, dim=0)).sample
        finally:
            self._ctx = None
            for k in list(self._bank):
                if not k.startswith("__recording"):
                    self._bank.pop(k)
        return out.view(b, t, *out.shape[1:])
