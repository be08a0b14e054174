"""Loopy (ICLR 2025) as a LightningModule: two training stages (§3.4) and long-video sampling.

Every switch of the paper's ablations (Tables 3, 7, 8) is a constructor argument (config key):
``tsm.*`` (stride s, expand ratio r, segments, abstraction, enabled), ``temporal.layout``
(dual inter-/intra-clip or single), ``a2l.enabled``, ``guidance.audio_ratio`` / ``guidance.ref_ratio``.
"""

from __future__ import annotations

import logging

import torch
from diffusers import DDPMScheduler

from lightning_modules.base import PortraitModule
from lightning_modules.blocks.latent_codec import build_latent_codec
from lightning_modules.blocks.mouth_weights import mouth_weights
from lightning_modules.blocks.preconditioning import EDMPreconditioning
from lightning_modules.blocks.seeding import init_stream
from lightning_modules.loopy.audio_encoder import Wav2VecAudioEncoder
from lightning_modules.loopy.audio_projection import AudioProjection
from lightning_modules.loopy.audio_to_latents import AudioToLatents
from lightning_modules.loopy.condition_masks import ConditionMasks
from lightning_modules.loopy.dual_unet import DualUNet
from lightning_modules.loopy.spec import (
    A2LSpec,
    AudioSpec,
    GuidanceSpec,
    MasksSpec,
    OptimSpec,
    SamplingSpec,
    TemporalSpec,
    TSMSpec,
    VarianceSpec,
)
from lightning_modules.loopy.temporal_segment import TemporalSegmentModule
from lightning_modules.sampling import (
    SD15_SCHEDULE,
    combine_guidance,
    ddim_sample,
    diffusion_loss,
    diffusion_target,
    generate_long_video,
    make_ddim,
)
from lightning_modules.spec import LatentSpec, PretrainedSpec, spec
from metrics.landmarks import IBUG_NOSE_TIP
from metrics.motion import expression_variance, head_motion_variance

log = logging.getLogger(__name__)

STAGES = ("stage1", "stage2")


class LoopyModule(PortraitModule):
    """Loopy: dual U-Net + TSM + inter/intra-clip temporal layers + audio condition module.

    Args (all plain dicts/values from ``experiments/configs/model/loopy.yaml``):
        num_frames: frames per clip (12).
        fps: video frame rate (25), used to align audio with frames.
        stages: the runner's list of ``{name, max_steps}``; names must be 'stage1'/'stage2'.
        pretrained: ``{path}`` SD 1.5 diffusers folder (VAE + U-Net) or null.
        latent: ``{factor, vae}``: stand-in codec factor; ``vae`` AutoencoderKL kwargs for a random
            SD VAE without weights (null = stand-in codec).
        unet: ``UNet2DConditionModel`` kwargs used without pretrained weights.
        tsm: ``{stride, expand_ratio, num_segments, abstraction, enabled, plain_frames}``.
        temporal: ``{layout: dual|single, heads}``.
        audio: ``{wav2vec_path, random_config, dim, window_before, window_after, sample_rate}``.
        a2l: ``{enabled, num_embeddings, dim, heads}``.
        variance: ``{scale}`` (s = 1000) of the A2L variances, Glo and Exp of appendix B.1 computed by
            ``metrics.motion`` on the batch's iBUG-68 landmarks.
        masks: ``{audio_drop, motion_latents_drop, reference_drop, motion_frames_mask}`` (§3.4).
        guidance: ``{audio_ratio, ref_ratio}`` (§3.4: 5 and 3).
        sampling: ``{num_steps, progress}`` (DDIM, 25 steps).
        noise_schedule: diffusers scheduler kwargs over SD 1.5's schedule.
        optim: ``{lr, weight_decay, betas}`` of AdamW (lr 1e-5 in the paper).
    """

    STAGES = STAGES
    # Min-SNR-gamma loss weights of the current stage (model.stages[i].snr_gamma, set by the runner;
    # lightning_modules.sampling.diffusion_loss); None: the paper's plain MSE
    snr_gamma: float | None = None
    # mouth-region loss weight of the current stage (model.stages[i].lip_weight, set by the runner;
    # lightning_modules.blocks.mouth_weights); None: every latent cell weighs the same, as in the paper
    lip_weight: float | None = None

    def __init__(self, *, num_frames: int, fps: float, pretrained, latent, unet, tsm, temporal, audio, a2l,
                 variance, masks, guidance, sampling, noise_schedule, optim, stages=None,
                 preconditioning=None, name: str = "loopy"):
        super().__init__()
        self.save_hyperparameters(logger=False)
        if int(num_frames) < 1:
            raise ValueError(f"model.num_frames must be >= 1, got {num_frames}")
        self.check_stages(stages)
        self.num_frames, self.fps = int(num_frames), float(fps)
        variance = dict(variance)
        # configs saved before Glo/Exp moved to metrics.motion carry nose_index: 30, the iBUG-68 nose tip
        legacy_nose = variance.pop("nose_index", IBUG_NOSE_TIP)
        if set(variance) - {"scale"} or legacy_nose != IBUG_NOSE_TIP:
            raise ValueError(f"model.variance: only 'scale' is read, got {variance}; Glo/Exp use the "
                             f"fixed nose tip ({IBUG_NOSE_TIP}) and 37 upper-face points of the iBUG-68 "
                             f"landmarks (metrics/landmarks); remove the other keys")
        pre, lat = spec(PretrainedSpec, pretrained, "pretrained"), spec(LatentSpec, latent, "latent")
        tem, aud = spec(TemporalSpec, temporal, "temporal"), spec(AudioSpec, audio, "audio")
        self.a2l_spec, self.variance = spec(A2LSpec, a2l, "a2l"), spec(VarianceSpec, variance, "variance")
        self.guidance = spec(GuidanceSpec, guidance, "guidance")
        self.sampling, self.optim = spec(SamplingSpec, sampling, "sampling"), spec(OptimSpec, optim, "optim")
        self.codec = build_latent_codec(pre.path, lat.factor, lat.vae or {}, lat.vae_path, lat.autoencoder)
        self.tsm = TemporalSegmentModule(**vars(spec(TSMSpec, tsm, "tsm")))
        self.audio_encoder = Wav2VecAudioEncoder(aud.wav2vec_path, aud.random_config, aud.sample_rate)
        with init_stream("audio_proj"):
            self.audio_proj = AudioProjection(self.audio_encoder.feature_dim, aud.dim, aud.window_before,
                                              aud.window_after)
        with init_stream("dual_unet"):  # the U-Nets draw first inside it: the same whatever the temporal layout
            self.dual_unet = DualUNet(dict(unet), pre.path, aud.dim, tem.heads, tem.layout, use_audio=True)
        if self.dual_unet.denoising_unet.config.in_channels != self.codec.latent_channels:
            raise ValueError(f"model.unet.in_channels ({self.dual_unet.denoising_unet.config.in_channels}) must equal "
                             f"the latent channels of the codec ({self.codec.latent_channels})")
        self.a2l = None
        if self.a2l_spec.enabled:
            with init_stream("a2l"):
                a2l_spec = self.a2l_spec
                self.a2l = AudioToLatents(aud.dim, self.dual_unet.time_embed_dim, a2l_spec.num_embeddings,
                                          a2l_spec.dim, a2l_spec.heads)
        self.masks = ConditionMasks(**vars(spec(MasksSpec, masks, "masks")))
        self.noise_schedule = dict(noise_schedule)  # diffusers kwargs over SD 1.5's schedule
        ddpm = {k: v for k, v in {**SD15_SCHEDULE, **self.noise_schedule}.items()
                if k not in ("set_alpha_to_one", "steps_offset")}  # DDIM-only keys
        self.noise_scheduler = DDPMScheduler(**ddpm)
        self.precond = None  # EDM preconditioning of an x0 denoiser, off unless set (blocks/preconditioning.py)
        if preconditioning:
            if self.noise_scheduler.config.prediction_type != "sample":
                raise ValueError(f"model.preconditioning wraps a clean-latent (x0) denoiser; set "
                                 f"model.noise_schedule.prediction_type: sample (got "
                                 f"{self.noise_scheduler.config.prediction_type!r}) or remove model.preconditioning")
            self.precond = EDMPreconditioning(float(preconditioning["sigma_data"]),
                                              self.noise_scheduler.alphas_cumprod)
        self.stage = "stage2"
        log.info("Loopy parameters per module: %s",
                 {k: f"{v / 1e6:.2f}M" for k, v in self.parameter_counts().items()})

    # -- stages (stage1: single frame + reference, no temporal or audio modules; stage2: all modules, §3.4)
    def trainable_modules(self) -> list[torch.nn.Module]:
        dual = self.dual_unet
        image = [dual.reference_net, dual.denoising_unet]
        if self.stage == "stage1":
            return image
        return image + [dual.temporal, self.audio_proj] + ([self.a2l] if self.a2l is not None else [])

    def make_optimizer(self):
        params = [p for m in self.trainable_modules() for p in m.parameters()] + [self.dual_unet.null_context]
        for p in self.parameters():
            p.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
        return torch.optim.AdamW(params, lr=self.optim.lr, weight_decay=self.optim.weight_decay,
                                 betas=tuple(self.optim.betas))

    # -- conditions ----------------------------------------------------------------------------------
    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, N, 3, H, W) pixels -> (B, N, C, h, w) latents."""
        b, n = frames.shape[:2]
        if n == 0:
            return frames.new_zeros(b, 0, self.codec.latent_channels, 1, 1)
        with torch.no_grad():
            lat = self.codec.encode(frames.flatten(0, 1))
        return lat.view(b, n, *lat.shape[1:])

    def motion_latents_from_frames(self, motion_frames: torch.Tensor, motion_mask: torch.Tensor | None):
        """TSM then encoding: uniform/random abstraction selects frames before the VAE (only the chosen
        frames are encoded); mean pooling abstracts in latent space. Returns (B, M, C, h, w).

        Frames before a video's start (mask 0) become exact zero latents, as at sampling (§3.4:
        "Ungenerated parts of motion frames are masked to all-zero features until generated"); a
        black frame through the SD VAE is not a zero latent."""
        if motion_mask is None:
            motion_mask = motion_frames.new_ones(motion_frames.shape[:2])
        if self.tsm.abstraction == "mean" and self.tsm.enabled:
            lat = self.encode_frames(motion_frames)
            lat, _ = self.tsm(lat * motion_mask.view(*motion_mask.shape, 1, 1, 1).to(lat.dtype), motion_mask)
            return lat
        sel, mask = self.tsm(motion_frames, motion_mask)
        lat = self.encode_frames(sel)
        return lat * mask.view(*mask.shape, 1, 1, 1).to(lat.dtype)

    def audio_embeddings(self, audio: torch.Tensor, num_frames: int, fps: float, span: int | None = None):
        """Audio (B, S) -> (c_audio (B, T, L, D), pooled (B, D)). The waveform may carry context on
        both sides; it spans ``span`` frames (default: from its length and fps) and the central
        ``num_frames`` are kept."""
        rate = self.audio_encoder.sample_rate
        span = span or max(num_frames, int(round(audio.shape[1] * fps / rate)))
        feats = self.audio_proj(self.audio_encoder(audio, span))
        start = (span - num_frames) // 2
        c_audio = feats[:, start:start + num_frames]
        return c_audio, c_audio.mean((1, 2))

    def motion_latents(self, pooled_audio, choice=None, landmarks=None):
        """A2L motion latents (B, time_embed_dim), or None without the module."""
        if self.a2l is None:
            return None
        if choice is None:
            return self.a2l(pooled_audio)
        if landmarks is None:
            raise ValueError("batch has no 'landmarks' (B,T,K,2): the audio-to-latents module needs them in training "
                             "for the movement/expression variances; set model.a2l.enabled=false or provide them")
        mov, exp = self.motion_variances(landmarks)
        # log1p keeps the x1000-scaled variances (appendix B.1) in a range an FC layer digests
        return self.a2l(pooled_audio, torch.log1p(mov), torch.log1p(exp), choice)

    def motion_variances(self, landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Head-movement and expression variance (B,) of a clip's landmarks (B, T, 68, 2): the Glo and
        Exp of the evaluation (appendix B.1, Eqs. 3-5), one implementation in ``metrics.motion``."""
        if landmarks.shape[-2:] != (68, 2):
            raise ValueError(f"batch 'landmarks' have shape {tuple(landmarks.shape)}; the audio-to-latents "
                             f"variances need the (B, T, 68, 2) iBUG-68 layout of the batch contract "
                             f"(datamodules/clips.py)")
        if landmarks.shape[1] < 2:
            raise ValueError(f"the expression variance needs at least 2 frames per clip, the batch has "
                             f"{landmarks.shape[1]} (data.clip.num_frames)")
        scale = self.variance.scale
        lm = landmarks.float()
        return head_motion_variance(lm[:, :, IBUG_NOSE_TIP], scale), expression_variance(lm, scale)

    # -- training ------------------------------------------------------------------------------------
    def model_step(self, batch: dict) -> torch.Tensor:
        frames = batch["frames"]
        b, t = frames.shape[:2]
        stage1 = self.stage == "stage1"
        landmarks = batch.get("landmarks")
        if stage1:  # one random target frame per sample (§3.4, stage 1)
            rows, pick = torch.arange(b, device=frames.device), torch.randint(0, t, (b,), device=frames.device)
            frames = frames[rows, pick][:, None]
            if landmarks is not None:
                landmarks = landmarks[rows, pick][:, None]
        z0 = self.encode_frames(frames)
        ref = self.encode_frames(batch["reference"][:, None])[:, 0]
        keep = self.masks(b, frames.device)
        if stage1:
            feats = self.dual_unet.encode_reference(ref)
            audio = lat = None
        else:
            motion = self.motion_latents_from_frames(batch["motion_frames"], batch.get("motion_mask"))
            motion = motion * keep.motion_frames.view(b, 1, 1, 1, 1).to(motion.dtype)  # 40 % zero mask
            feats = self.dual_unet.encode_reference(ref, motion)
            fps = float(batch["meta"][0].get("fps", self.fps)) if batch.get("meta") else self.fps
            audio, pooled = self.audio_embeddings(batch["audio"], t, fps)
            audio = audio * keep.audio.view(b, 1, 1, 1).to(audio.dtype)
            choice = None
            if self.a2l is not None:
                choice = AudioToLatents.sample_conditions(b).to(frames.device)
                if "landmark_mask" in batch:  # videos without keypoints fall back to the audio condition
                    has = batch["landmark_mask"].to(choice.device) > 0
                    choice = torch.where(has, choice, torch.zeros_like(choice))
            lat = self.motion_latents(pooled, choice, landmarks)
            if lat is not None:
                lat = lat * keep.motion_latents.view(b, 1).to(lat.dtype)
        noise = torch.randn_like(z0)
        steps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (b,), device=z0.device)
        t_rep = steps.repeat_interleave(z0.shape[1])
        zt = self.noise_scheduler.add_noise(z0.flatten(0, 1), noise.flatten(0, 1), t_rep)
        pred = self.denoise(zt.view_as(z0), steps, feats, keep.reference, audio, lat, temporal=not stage1)
        # Eq. 1 (epsilon); noise_schedule.prediction_type switches to v or x0 targets, snr_gamma to Min-SNR
        # weights, lip_weight to a heavier mouth region (CPU-scale recipes of model.stages[i])
        target = diffusion_target(self.noise_scheduler, z0.flatten(0, 1), noise.flatten(0, 1), t_rep)
        weights = None
        if self.lip_weight:
            if landmarks is None:
                raise ValueError("model.stages[i].lip_weight weighs the mouth region by the batch's 'landmarks' "
                                 "(B,T,68,2), which this data module does not give; remove the key or use data "
                                 "with keypoints (SynthTalk)")
            weights = mouth_weights(landmarks, tuple(z0.shape[-2:]), self.lip_weight,
                                    has=batch.get("landmark_mask")).flatten(0, 1)
        return diffusion_loss(self.noise_scheduler, pred.flatten(0, 1), target, t_rep, self.snr_gamma, weights)

    def denoise(self, z, steps, *args, **kwargs) -> torch.Tensor:
        """The dual U-Net's prediction for noisy latents z (B,T,C,h,w) at steps (B,), through the EDM
        preconditioning when ``model.preconditioning`` is set."""
        if self.precond is None:
            return self.dual_unet(z, steps, *args, **kwargs)
        return self.precond.denoise(self.dual_unet, z, steps, *args, **kwargs)

    def training_step(self, batch, batch_idx):
        loss = self.model_step(batch)
        self.log_loss(loss, batch["frames"].shape[0])
        return loss

    # -- sampling ------------------------------------------------------------------------------------
    def guided_eps(self, z, t, feats, audio, lat) -> torch.Tensor:
        """Three-branch guidance (§3.4) as ONE batched forward: rows = (all, no audio, no audio + no ref)."""
        b = z.shape[0]
        ar, rr = self.guidance.audio_ratio, self.guidance.ref_ratio
        zero = torch.zeros(b, dtype=torch.bool, device=z.device)
        one = ~zero
        ref_keep = torch.cat([one, one, zero])
        audio3 = torch.cat([audio, torch.zeros_like(audio), torch.zeros_like(audio)])
        lat3 = None if lat is None else torch.cat([lat, torch.zeros_like(lat), torch.zeros_like(lat)])
        steps = torch.full((3 * b,), int(t), device=z.device, dtype=torch.long)
        eps = self.denoise(z.repeat(3, 1, 1, 1, 1), steps, feats.repeat(3), ref_keep, audio3, lat3, temporal=True)
        e_audio, e_ref, e_base = eps.chunk(3)
        return combine_guidance([e_audio, e_ref, e_base], [ar, rr])

    @torch.no_grad()
    def generate(self, reference: torch.Tensor, audio: torch.Tensor, num_frames: int, fps: float | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Long video: reference (B,3,H,W), audio (B,S) for the whole clip -> (B, num_frames, 3, H, W).
        The B test items are generated side by side (one batched forward per denoising step)."""
        fps = fps or self.fps
        b = reference.shape[0]
        t_len = self.num_frames
        n_clips = -(-num_frames // t_len)
        c_audio, _ = self.audio_embeddings(audio, num_frames, fps, span=num_frames)
        pad = n_clips * t_len - num_frames  # the last clip repeats the final audio frame
        c_audio = torch.cat([c_audio, c_audio[:, -1:].expand(-1, pad, -1, -1)], 1) if pad else c_audio
        ref = self.encode_frames(reference[:, None])[:, 0]
        shape = ref.shape[1:]
        scheduler = make_ddim(self.noise_schedule)

        def clip_fn(i, history, mask):
            motion, _ = self.tsm(history, mask)  # zeros until generated (§3.4)
            feats = self.dual_unet.encode_reference(ref, motion)  # once per clip, reused at every step
            a = c_audio[:, i * t_len:(i + 1) * t_len]
            lat = self.motion_latents(a.mean((1, 2)))
            noise = torch.randn((b, t_len, *shape), generator=generator, device=ref.device, dtype=ref.dtype)
            return ddim_sample(lambda z, t: self.guided_eps(z, t, feats, a, lat), noise, scheduler,
                               self.sampling.num_steps, self.sampling.progress)

        latents = generate_long_video(clip_fn, num_frames, t_len, self.tsm.num_input_frames, tuple(shape), batch=b,
                                      device=ref.device, dtype=ref.dtype)
        frames = torch.cat([self.codec.decode(latents[:, i:i + t_len].flatten(0, 1)).unflatten(0, (b, -1))
                            for i in range(0, num_frames, t_len)], 1)
        return frames.clamp(-1, 1)

    def sample_items(self, batch: dict, num_frames: int, fps: float, batch_idx: int) -> torch.Tensor:
        return self.generate(batch["reference"], batch["audio"], num_frames, fps)

    # -- reporting -----------------------------------------------------------------------------------
    def parameter_groups(self) -> dict[str, list[torch.nn.Module]]:
        dual = self.dual_unet
        temporal = list(dual.temporal.values())
        return {"reference_net": [dual.reference_net], "denoising_unet": [dual.denoising_unet],
                "inter_clip_temporal": [b.inter for b in temporal],
                "intra_clip_temporal": [b.intra for b in temporal if b.intra is not None],
                "audio_cross_attention": [b.audio for b in temporal if b.audio is not None],
                "audio_projection": [self.audio_proj], "audio_to_latents": [self.a2l] if self.a2l else [],
                "audio_encoder_frozen": [self.audio_encoder], "latent_codec_frozen": [self.codec]}
