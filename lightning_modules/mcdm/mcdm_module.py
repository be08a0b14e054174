"""MCDM (motion-priors conditional diffusion model) as a LightningModule: three training stages (§3.5)
and clip-after-clip sampling whose state (archived clip + motion memory) has a fixed size (§3.4).

Config groups (``experiments/configs/model/mcdm.yaml``): ``latent``, ``pretrained``, ``unet``,
``archived`` (enabled, encoder, aggregator, num_frames a, num_tokens m, num_queries n, patch_size),
``present`` (source: motion | audio), ``mta`` (kind, alpha, heads, nb_features), ``motion_prior``,
``audio``, ``image``, ``optim``, ``guidance`` (scale, present_drop), ``sampling``, ``noise_schedule``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler
from torch import nn
from tqdm.auto import tqdm

from lightning_modules.base import PortraitModule
from lightning_modules.blocks.latent_codec import build_latent_codec
from lightning_modules.blocks.seeding import init_stream
from lightning_modules.loopy.audio_encoder import Wav2VecAudioEncoder
from lightning_modules.mcdm.archived_clip import ArchivedClipMotionPrior
from lightning_modules.mcdm.denoising_unet import MCDMUNet
from lightning_modules.mcdm.image_encoder import ClipImageEncoder
from lightning_modules.mcdm.motion_encoders import MotionEncoders
from lightning_modules.mcdm.motion_prior import PresentClipMotionPrior
from lightning_modules.mcdm.spec import (
    ArchivedSpec,
    AudioSpec,
    GuidanceSpec,
    ImageSpec,
    MotionPriorSpec,
    MTASpec,
    OptimSpec,
    PresentSpec,
    SamplingSpec,
)
from lightning_modules.sampling import combine_guidance, ddim_sample, diffusion_target, make_ddim
from lightning_modules.spec import LatentSpec, PretrainedSpec, spec

log = logging.getLogger(__name__)
STAGES = ("stage1", "stage2", "stage3")


def _choice(value: str, allowed: tuple, key: str) -> str:
    if value not in allowed:
        raise ValueError(f"model.{key} must be one of {allowed}, got {value!r}")
    return value


class MCDMModule(PortraitModule):
    """MCDM: archived-clip motion prior + present-clip motion-prior diffusion model + denoising U-Net with
    memory-efficient temporal attention.

    Stages (§3.5): ``stage1`` trains the archived-clip prior and the U-Net (present-clip reference
    attention and MTA frozen); ``stage2`` trains the present-clip motion prior and its encoders, the
    landmark clip dropped with probability ``motion_prior.landmark_drop``; ``stage3`` trains only the
    present-clip reference attention and the MTA.
    """

    STAGES = STAGES

    def __init__(self, *, num_frames: int, fps: float, pretrained, latent, unet, archived, present, mta,
                 motion_prior, audio, image, guidance, sampling, noise_schedule, optim, stages=None,
                 name: str = "mcdm"):
        super().__init__()
        self.save_hyperparameters()
        self.num_frames, self.fps = int(num_frames), float(fps)
        pre, lat = spec(PretrainedSpec, pretrained, "pretrained"), spec(LatentSpec, latent, "latent")
        arc, pres = spec(ArchivedSpec, archived, "archived"), spec(PresentSpec, present, "present")
        mt, mp = spec(MTASpec, mta, "mta"), spec(MotionPriorSpec, motion_prior, "motion_prior")
        aud, img = spec(AudioSpec, audio, "audio"), spec(ImageSpec, image, "image")
        self.guidance = spec(GuidanceSpec, guidance, "guidance")
        self.sampling, self.optim = spec(SamplingSpec, sampling, "sampling"), spec(OptimSpec, optim, "optim")
        self.codec = build_latent_codec(pre.path, lat.factor, lat.vae or None, lat.vae_path, lat.autoencoder)
        self.codec.requires_grad_(False)

        self.archived_enabled = arc.enabled
        self.archived_encoder = _choice(arc.encoder, ("vae_patchify", "reference_unet"), "archived.encoder")
        self.num_archived = arc.num_frames
        self.num_tokens = arc.num_tokens
        self.present_source = _choice(pres.source, ("motion", "audio"), "present.source")
        motion_dim = mp.motion_dim
        with init_stream("unet"):  # the SD U-Net draws first inside it: the same whatever the MTA kind
            self.unet = MCDMUNet(dict(unet), pre.path, present_dim=motion_dim, heads=pres.heads,
                                 temporal=_choice(mt.kind, ("memory", "standard"), "mta.kind"),
                                 alpha=mt.alpha, nb_features=mt.nb_features, temporal_heads=mt.heads,
                                 reference_unet=self.archived_encoder == "reference_unet")
        # "w/o F_a" (Table 4) omits only the historical frames: the prior stays, every archived slot
        # holding the reference (archived_from_history), so the denoiser still sees the identity.
        # B2 (Table 5) replaces VAE + patchify by a reference U-Net: no archived-clip prior at all.
        self.archived = None
        if self.archived_encoder == "vae_patchify":
            with init_stream("archived"):
                self.archived = ArchivedClipMotionPrior(self.codec.latent_channels, self.unet.cross_dim,
                                                        arc.patch_size, arc.num_queries,
                                                        _choice(arc.aggregator, ("frame_aligned", "qformer"),
                                                                "archived.aggregator"))
        self.audio_encoder = Wav2VecAudioEncoder(aud.wav2vec_path, aud.random_config)
        self.audio_context = aud.context_frames
        self.image_encoder = ClipImageEncoder(img.clip_path, img.random_config)
        with init_stream("motion_encoders"):
            self.motion_encoders = MotionEncoders(motion_dim, mp.encoder_hidden)
        with init_stream("motion_prior"):
            self.motion_prior = PresentClipMotionPrior(self.audio_encoder.feature_dim, self.image_encoder.dim,
                                                       motion_dim, mp.dim, mp.layers, mp.heads)
        # "w/o F_pc" (Table 4): an audio attention takes the present-clip branch's place
        with init_stream("audio_proj"):
            self.audio_proj = (nn.Linear(self.audio_encoder.feature_dim, motion_dim) if self.present_source == "audio"
                               else None)
        self.landmark_drop = mp.landmark_drop
        self.use_landmarks = mp.use_landmarks
        if not 0.0 <= self.landmark_drop <= 1.0:
            raise ValueError(f"model.motion_prior.landmark_drop must lie in [0, 1], got {self.landmark_drop}")
        self.scheduler = make_ddim(dict(noise_schedule))
        for frozen in (self.audio_encoder, self.image_encoder):
            frozen.requires_grad_(False)
        self.stage_names = self.check_stages(stages) or ["stage1"]
        self.set_stage(self.stage_names[0])

    # -- stages ----------------------------------------------------------------------------------------
    def module_groups(self) -> dict[str, list[nn.Module]]:
        """Trainable parts by paper module (frozen encoders excluded)."""
        unet = [self.unet.unet] + ([self.unet.reference_unet] if self.unet.reference_unet is not None else [])
        return {"archived_clip": [self.archived] if self.archived is not None else [], "unet": unet,
                "present_reference_attention": [self.unet.present_ref] + ([self.audio_proj] if self.audio_proj else []),
                "memory_temporal_attention": [self.unet.temporal],
                "motion_prior": [self.motion_prior, self.motion_encoders]}

    STAGE_GROUPS = {"stage1": ("archived_clip", "unet"), "stage2": ("motion_prior",),
                    "stage3": ("present_reference_attention", "memory_temporal_attention")}

    def set_stage(self, name: str) -> None:
        """Freeze everything, then unfreeze the groups trained in ``name`` (§3.5)."""
        super().set_stage(name)
        self.requires_grad_(False)
        groups = self.module_groups()
        for g in self.STAGE_GROUPS[name]:
            for m in groups[g]:
                m.requires_grad_(True)

    def make_optimizer(self):
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=self.optim.lr, weight_decay=self.optim.weight_decay)

    # -- conditions ------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> latents (B, T, C, h, w) through the frozen codec."""
        return self.codec.encode(frames.flatten(0, 1)).unflatten(0, frames.shape[:2])

    def audio_features(self, audio: torch.Tensor, num_frames: int, fps: float) -> torch.Tensor:
        """(B, S) waveform with context on both sides -> (B, num_frames, D) wav2vec2 features of the centre."""
        span = max(num_frames, int(round(audio.shape[1] * fps / self.audio_encoder.sample_rate)))
        feats = self.audio_encoder(audio, span)
        start = (span - num_frames) // 2
        return feats[:, start:start + num_frames]

    def archived_tokens(self, ref_lat: torch.Tensor, archived_lat: torch.Tensor) -> torch.Tensor | None:
        """F_ac flattened to (B, a*n, d), or None without the archived-clip prior."""
        if self.archived is None:
            return None
        f_ac = self.archived(ref_lat, archived_lat)
        if self.num_tokens is not None:
            m = (ref_lat.shape[-2] // self.archived.patchify_ref.patch) * (ref_lat.shape[-1] // self.archived.patchify_ref.patch)
            if m != int(self.num_tokens):
                raise ValueError(f"model.archived.num_tokens={self.num_tokens} but patch_size "
                                 f"{self.archived.patchify_ref.patch} on {tuple(ref_lat.shape[-2:])} latents gives {m}")
        return f_ac.flatten(1, 2)

    def present_tokens(self, motion: torch.Tensor | None, audio_feats: torch.Tensor) -> torch.Tensor:
        """F_pc (B, T, P, motion_dim): motion tokens (P = 3) or, for 'w/o F_pc', projected audio (P = 1)."""
        if self.present_source == "audio":
            return self.audio_proj(audio_feats)[:, :, None]
        return motion

    def archived_from_history(self, ref_lat, history, mask) -> torch.Tensor:
        """(B, M, C, h, w) newest-first history -> (B, a, ...): the first a frames, the reference where
        a frame is missing (the first archived clip is initialised from the reference image, §3.5).
        With ``archived.enabled`` false ("w/o F_a", Table 4: "omits historical frame information")
        every slot is the reference."""
        b, a = ref_lat.shape[0], self.num_archived
        out = ref_lat[:, None].expand(b, a, *ref_lat.shape[1:]).clone()
        if not self.archived_enabled:
            return out
        k = min(a, history.shape[1])
        keep = mask[:, :k].to(torch.bool)[..., None, None, None]
        out[:, :k] = torch.where(keep, history[:, :k], out[:, :k])
        return out

    # -- training ----------------------------------------------------------------------------------------
    def denoise_loss(self, batch: dict) -> torch.Tensor:
        frames = batch["frames"]
        b, t = frames.shape[:2]
        z0, ref_lat = self.encode(frames), self.encode(batch["reference"][:, None])[:, 0]
        f_ac = None
        if self.archived is not None:
            motion = batch.get("motion_frames")
            if motion is not None and motion.shape[1] > 0 and self.archived_enabled:
                hist, mask = self.encode(motion[:, :self.num_archived]), batch["motion_mask"][:, :self.num_archived]
            else:
                hist, mask = ref_lat[:, None], torch.zeros(b, 1, device=ref_lat.device)
            f_ac = self.archived_tokens(ref_lat, self.archived_from_history(ref_lat, hist, mask))
        self.unet.encode_reference(ref_lat)
        feats = self.audio_features(batch["audio"], t, self.fps)
        with torch.no_grad():  # teacher forcing: ground-truth motion tokens from the (stage-2) encoders
            motion = self.motion_encoders(batch["landmarks"])
        f_pc = self.present_tokens(motion, feats)
        keep = torch.rand(b, device=self.device) >= self.guidance.present_drop
        if self.present_source == "motion":
            keep = keep & batch.get("landmark_mask", torch.ones(b, device=self.device)).to(torch.bool)
        f_pc = f_pc * keep.view(b, 1, 1, 1).to(f_pc.dtype)
        noise = torch.randn_like(z0)
        ts = torch.randint(0, self.scheduler.config.num_train_timesteps, (b,), device=self.device)
        t_rep = ts.repeat_interleave(t)
        zt = self.scheduler.add_noise(z0.flatten(0, 1), noise.flatten(0, 1), t_rep)
        pred = self.unet(zt, t_rep, f_ac, f_pc.flatten(0, 1), t)
        # epsilon (SD 1.5); noise_schedule.prediction_type switches to v or x0 targets
        return F.mse_loss(pred, diffusion_target(self.scheduler, z0.flatten(0, 1), noise.flatten(0, 1), t_rep))

    def prior_loss(self, batch: dict) -> torch.Tensor:
        """Eq. 3 plus the encoders' reconstruction loss, on the samples that have landmarks."""
        has = batch.get("landmark_mask", torch.ones(batch["landmarks"].shape[0], device=self.device)).to(torch.bool)
        if not bool(has.any()):  # nothing to learn from this batch; keep the graph for Lightning
            return sum(p.sum() * 0 for p in self.motion_prior.parameters())
        lmk, t = batch["landmarks"][has], batch["landmarks"].shape[1]
        rec = self.motion_encoders.reconstruction_loss(lmk)
        x0 = self.motion_encoders(lmk).detach()   # diffusion targets; the encoders learn from `rec` only
        b = x0.shape[0]
        feats = self.audio_features(batch["audio"][has], t, self.fps)
        image = self.image_encoder(batch["reference"][has])
        guided = torch.rand(b, device=self.device) >= self.landmark_drop   # landmark clip dropped at random
        noise = torch.randn_like(x0)
        ts = torch.randint(0, self.scheduler.config.num_train_timesteps, (b,), device=self.device)
        xt = self.scheduler.add_noise(x0, noise, ts)
        eps = self.motion_prior(xt, ts, feats, image, head_cond=x0[:, :, 0], guided=guided)
        weight = torch.ones_like(eps)
        weight[:, :, 0] = (~guided).view(b, 1, 1).to(eps.dtype)   # a clean landmark head token is no target
        target = diffusion_target(self.scheduler, x0, noise, ts)
        return (weight * (eps - target) ** 2).sum() / weight.sum().clamp(min=1) + rec

    def training_step(self, batch, batch_idx):
        loss = self.prior_loss(batch) if self.stage == "stage2" else self.denoise_loss(batch)
        self.log_loss(loss, batch["frames"].shape[0])
        return loss

    # -- sampling ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_motion(self, feats, image, landmarks=None, steps: int = 25) -> torch.Tensor:
        """Motion tokens (B, T, 3, motion_dim) from the present-clip prior, with landmark guidance when
        ``landmarks`` (B, T, 68, 2) are given."""
        b, t = feats.shape[:2]
        head, guided = None, None
        if landmarks is not None:
            head, guided = self.motion_encoders(landmarks)[:, :, 0], torch.ones(b, dtype=torch.bool, device=feats.device)
        shape = (b, t, 3, self.motion_prior.out.out_features)
        eps_fn = lambda z, ts: self.motion_prior(z, ts.expand(b), feats, image, head, guided)  # noqa: E731
        tokens = ddim_sample(eps_fn, torch.randn(shape, device=feats.device), DDIMScheduler.from_config(self.scheduler.config), steps)
        if head is not None:
            tokens[:, :, 0] = head
        return tokens

    def clip_audio(self, audio: torch.Tensor, start: int, frames: int, fps: float) -> torch.Tensor:
        """Waveform of frames [start, start+frames) plus ``audio.context_frames`` each side, zero-padded."""
        per = self.audio_encoder.sample_rate / fps
        lo, hi = int(round((start - self.audio_context) * per)), int(round((start + frames + self.audio_context) * per))
        out = audio.new_zeros(audio.shape[0], hi - lo)
        a, z = max(lo, 0), min(hi, audio.shape[1])
        if z > a:
            out[:, a - lo:z - lo] = audio[:, a:z]
        return out

    @torch.no_grad()
    def generate(self, reference: torch.Tensor, audio: torch.Tensor, num_frames: int, fps: float | None = None,
                 landmarks: torch.Tensor | None = None, on_clip: Callable[[int, torch.Tensor], None] | None = None,
                 progress: bool = True) -> torch.Tensor | None:
        """Clip after clip (§3.5 Inference): motion tokens first, then the denoiser; the archived clip
        starts as the reference and then holds the newest a generated frames; the MTA memory carries
        across clips. Memory is constant in ``num_frames`` when ``on_clip(index, frames)`` consumes the
        decoded clips (then None is returned); otherwise returns (B, num_frames, 3, H, W) in [-1, 1]."""
        fps = float(fps or self.fps)
        steps, scale = self.sampling.num_steps, self.guidance.scale
        if landmarks is None and self.use_landmarks:
            raise ValueError("model.motion_prior.use_landmarks is true but the test item has no landmarks")
        b, t = reference.shape[0], self.num_frames
        ref_lat = self.encode(reference[:, None])[:, 0]
        image = self.image_encoder(reference)
        history = ref_lat.new_zeros(b, self.num_archived, *ref_lat.shape[1:])
        mask = ref_lat.new_zeros(b, self.num_archived)
        branches = 2 if scale != 1.0 else 1
        self.unet.reset_memory()
        self.unet.encode_reference(ref_lat.repeat(branches, 1, 1, 1))
        clips, n_clips = [], math.ceil(num_frames / t)
        for i in tqdm(range(n_clips), desc="mcdm clips", disable=not progress, leave=False):
            feats = self.audio_features(self.clip_audio(audio, i * t, t, fps), t, fps)
            lmk = None if landmarks is None else landmarks[:, i * t:(i + 1) * t]
            if lmk is not None and lmk.shape[1] < t:
                lmk = torch.cat([lmk, lmk[:, -1:].expand(-1, t - lmk.shape[1], -1, -1)], 1)
            motion = self.sample_motion(feats, image, lmk, steps) if self.present_source == "motion" else None
            f_pc = self.present_tokens(motion, feats).flatten(0, 1)
            f_ac = self.archived_tokens(ref_lat, self.archived_from_history(ref_lat, history, mask))
            if branches == 2:  # unconditional branch drops F_pc (classifier-free guidance)
                f_pc = torch.cat([f_pc, torch.zeros_like(f_pc)])
                f_ac = None if f_ac is None else f_ac.repeat(2, 1, 1)

            def eps_fn(z, ts, f_ac=f_ac, f_pc=f_pc, carry=i > 0):
                zz = z.repeat(branches, 1, 1, 1)
                e = self.unet(zz, ts.expand(zz.shape[0]), f_ac, f_pc, t, carry=carry)
                if branches == 1:
                    return e
                return combine_guidance(e.chunk(2), [scale])

            noise = torch.randn(b * t, *ref_lat.shape[1:], device=ref_lat.device, dtype=ref_lat.dtype)
            z = ddim_sample(eps_fn, noise, DDIMScheduler.from_config(self.scheduler.config), steps).view(b, t, *ref_lat.shape[1:])
            self.unet.commit_memory()
            history = torch.cat([z.flip(1), history], 1)[:, :self.num_archived]   # newest first, a frames kept
            mask = torch.cat([torch.ones(b, t, device=mask.device), mask], 1)[:, :self.num_archived]
            n_keep = min(t, num_frames - i * t)
            video = self.codec.decode(z[:, :n_keep].flatten(0, 1)).unflatten(0, (b, n_keep))
            if on_clip is not None:
                on_clip(i, video)
            else:
                clips.append(video)
        return None if on_clip is not None else torch.cat(clips, 1)

    def sample_items(self, batch: dict, num_frames: int, fps: float, batch_idx: int) -> torch.Tensor:
        landmarks = batch.get("landmarks") if self.use_landmarks else None  # §3.5: only when specified
        return self.generate(batch["reference"], batch["audio"], num_frames, fps, landmarks)

    # -- reporting -----------------------------------------------------------------------------------------
    def parameter_groups(self) -> dict[str, list[nn.Module]]:
        return {**self.module_groups(), "audio_encoder_frozen": [self.audio_encoder],
                "image_encoder_frozen": [self.image_encoder], "latent_codec_frozen": [self.codec]}
