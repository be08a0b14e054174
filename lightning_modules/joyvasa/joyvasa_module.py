"""JoyVASA (Cao et al., 2024) as a LightningModule: two training stages and long-video sampling.

Stage ``render`` (§3.2): the face representation -- appearance encoder, motion encoder and warping
generator -- learns by self-reenactment (source = reference frame, driving = a clip frame).
Stage ``motion`` (§3.3): with the motion encoder frozen, motion sequences are extracted from the
clip (current window) and the frames before it (previous window), and the audio-to-motion diffusion
transformer learns to predict their clean motion from audio (Eqs. 2, 4-8). No image reaches it.
Sampling (§3.4): wav2vec2 features -> sliding-window DDIM with CFG (Eq. 3) -> Eq. 1 keypoints from
the reference's canonical keypoints -> warp + render.

Every switch of the ablations is a constructor argument (config key): ``loss.velocity``,
``loss.smooth``, ``loss.expression`` (weight 0 drops the term), ``guidance.scale`` (lambda_c).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler

from lightning_modules.base import PortraitModule
from lightning_modules.blocks.seeding import init_stream
from lightning_modules.joyvasa.audio_to_motion import AudioToMotionDiT, sliding_window_motion
from lightning_modules.joyvasa.face_representation import MotionLayout
from lightning_modules.joyvasa.liveportrait import load_liveportrait_motion_extractor
from lightning_modules.joyvasa.losses import total_loss
from lightning_modules.joyvasa.renderer import FaceRenderer
from lightning_modules.joyvasa.spec import (
    AudioSpec,
    DiTSpec,
    GuidanceSpec,
    LivePortraitSpec,
    LossSpec,
    MotionSpec,
    OptimSpec,
    RendererSpec,
    SamplingSpec,
    WindowsSpec,
)
from lightning_modules.loopy.audio_encoder import Wav2VecAudioEncoder
from lightning_modules.sampling import ddim_sample
from lightning_modules.spec import spec

log = logging.getLogger(__name__)

STAGES = ("render", "motion")
# DDPM schedule of the motion diffusion (x0 prediction); DiffPoseTalk-style linear betas
MOTION_SCHEDULE = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                       prediction_type="sample", clip_sample=False)


class JoyVASAModule(PortraitModule):
    """JoyVASA: LivePortrait-form face representation + audio-to-motion diffusion transformer.

    Args (plain dicts/values from ``experiments/configs/model/joyvasa.yaml``):
        fps: video frame rate (25).
        stages: the runner's list of ``{name, max_steps}``; names 'render' / 'motion'.
        motion: ``{num_kp}`` keypoints K of the motion layout (LivePortrait: 21 -> 70 numbers a frame).
        windows: ``{w_cur, w_pre}`` (100, 25; §4.2).
        dit: ``{width, layers, heads, ff_mult, dropout, align_band}`` (512, 6, 8; §4.2).
        audio: ``{wav2vec_path, random_config, sample_rate}``; the last wav2vec2 layer is used.
        loss: ``{velocity, smooth, expression}`` weights of Eq. 8 (5.0, 0.5, 0.1; §4.2).
        guidance: ``{scale, audio_drop}``: lambda_c of Eq. 3 and the training drop rate of audio (0.1).
        truncate_prob: probability of random truncation of the current window in training (§3.3.1).
        sampling: ``{num_steps, seed, progress, render_chunk}`` (DDIM).
        noise_schedule: DDPMScheduler kwargs over ``MOTION_SCHEDULE``.
        renderer: FaceRenderer kwargs ``{channels, depth, width, sigma, max_angle}``.
        liveportrait: ``{path, image_size, depths, dims}``: a local LivePortrait weights folder; its motion extractor
            becomes the frozen E_mnt (the render stage then trains only appearance + warping).
        optim: ``{lr, betas, render_lr}``: Adam, lr 1e-4 for the motion model (§4.2).
    """

    STAGES = STAGES

    def __init__(self, *, fps: float, motion, windows, dit, audio, loss, guidance, truncate_prob: float,
                 sampling, noise_schedule, renderer, optim, liveportrait, stages=None, name: str = "joyvasa"):
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.check_stages(stages)
        win, dit_spec = spec(WindowsSpec, windows, "windows"), spec(DiTSpec, dit, "dit")
        aud = spec(AudioSpec, audio, "audio")
        self.fps = float(fps)
        self.w_cur, self.w_pre = win.w_cur, win.w_pre
        self.loss_weights = vars(spec(LossSpec, loss, "loss"))
        if any(v < 0 for v in self.loss_weights.values()):
            raise ValueError(f"model.loss: weights must be >= 0, got {self.loss_weights}")
        self.guidance = spec(GuidanceSpec, guidance, "guidance")
        self.sampling, self.optim = spec(SamplingSpec, sampling, "sampling"), spec(OptimSpec, optim, "optim")
        if not 0.0 <= self.guidance.audio_drop < 1.0:
            raise ValueError(f"model.guidance.audio_drop must be in [0, 1), got {self.guidance.audio_drop}")
        if not 0.0 <= float(truncate_prob) <= 1.0:
            raise ValueError(f"model.truncate_prob must be in [0, 1], got {truncate_prob}")
        self.truncate_prob = float(truncate_prob)
        self.layout = MotionLayout(spec(MotionSpec, motion, "motion").num_kp)
        self.audio_encoder = Wav2VecAudioEncoder(aud.wav2vec_path, aud.random_config, aud.sample_rate)
        self.audio_dim = self.audio_encoder.model.config.hidden_size
        with init_stream("dit"):
            self.dit = AudioToMotionDiT(self.layout.dim, self.audio_dim, w_cur=self.w_cur, w_pre=self.w_pre,
                                        **vars(dit_spec))
        lp = spec(LivePortraitSpec, liveportrait, "liveportrait")
        encoder = None
        if lp.path:
            encoder = load_liveportrait_motion_extractor(lp.path, self.layout.num_kp,
                                                         image_size=lp.image_size, depths=tuple(lp.depths),
                                                         dims=tuple(lp.dims))
        else:
            log.warning("No LivePortrait weights (model.liveportrait.path is null): the motion encoder is the small "
                        "trainable one, RANDOMLY INITIALISED until the render stage trains it")
        self.motion_frozen = encoder is not None
        with init_stream("renderer"):  # the same renderer whatever the motion model's sizes
            self.renderer = FaceRenderer(self.layout, motion_encoder=encoder,
                                         **vars(spec(RendererSpec, renderer, "renderer")))
        self.schedule = {**MOTION_SCHEDULE, **dict(noise_schedule)}
        if self.schedule.get("prediction_type") != "sample":
            raise ValueError("model.noise_schedule.prediction_type must be 'sample': D predicts clean motion (§3.3.2)")
        self.noise_scheduler = DDPMScheduler(**self.schedule)
        # per-channel normalisation of motion for the diffusion, fixed from the first motion-stage batch
        self.register_buffer("motion_mean", torch.zeros(self.layout.dim))
        self.register_buffer("motion_std", torch.ones(self.layout.dim))
        self.register_buffer("stats_ready", torch.tensor(False))
        self.stage = "motion"

    # -- stages (render: face representation, §3.2; motion: audio-to-motion diffusion, §3.3) -----------
    def make_optimizer(self):
        if self.stage == "render":  # a pretrained (LivePortrait) motion encoder stays frozen
            trainable = [p for n, p in self.renderer.named_parameters()
                         if not (self.motion_frozen and n.startswith("motion."))]
        else:
            trainable = list(self.dit.parameters())
        for p in self.parameters():
            p.requires_grad_(False)
        for p in trainable:
            p.requires_grad_(True)
        lr = self.optim.render_lr if self.stage == "render" else self.optim.lr
        return torch.optim.Adam(trainable, lr=lr, betas=tuple(self.optim.betas))

    # -- features ------------------------------------------------------------------------------------
    def audio_features(self, audio: torch.Tensor, span: int) -> torch.Tensor:
        """(B, S) waveform spanning ``span`` frames -> (B, span, A) last wav2vec2 layer per frame."""
        return self.audio_encoder(audio, span)[..., -self.audio_dim:]

    @torch.no_grad()
    def extract_motion(self, frames: torch.Tensor) -> torch.Tensor:
        """Frozen E_mnt (§3.3.1): (B, N, 3, H, W) -> (B, N, dim) motion."""
        b, n = frames.shape[:2]
        was = self.renderer.motion.training
        self.renderer.motion.eval()
        _, motion = self.renderer.motion(frames.flatten(0, 1))
        self.renderer.motion.train(was)
        return motion.view(b, n, -1)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.motion_mean) / self.motion_std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.motion_std + self.motion_mean

    # -- training ------------------------------------------------------------------------------------
    def render_step(self, batch: dict) -> torch.Tensor:
        frames = batch["frames"]
        b, t = frames.shape[:2]
        pick = torch.randint(0, t, (b,), device=frames.device)
        driving = frames[torch.arange(b, device=frames.device), pick]
        source = self.renderer.encode_source(batch["reference"])
        _, motion_d = self.renderer.motion(driving)
        return F.l1_loss(self.renderer.render(source, motion_d), driving)

    def motion_step(self, batch: dict) -> tuple[torch.Tensor, dict]:
        frames, dev = batch["frames"], batch["frames"].device
        b, n = frames.shape[:2]
        wp = self.w_pre
        if n != self.w_cur:
            raise ValueError(f"data.clip.num_frames ({n}) must equal model.windows.w_cur ({self.w_cur})")
        mf = batch["motion_frames"]
        if mf.shape[1] < wp:
            raise ValueError(f"data.clip.num_motion_frames ({mf.shape[1]}) must be >= model.windows.w_pre ({wp})")
        x_cur = self.extract_motion(frames)
        x_prev = self.extract_motion(mf[:, :wp].flip(1))                       # chronological
        real = batch.get("motion_mask", torch.ones(b, mf.shape[1], device=dev))[:, :wp]
        is_start = real.min(1).values < 0.5                                     # video start: start features
        if not bool(self.stats_ready):
            both = torch.cat([x_cur.flatten(0, 1), x_prev[~is_start].flatten(0, 1)])
            self.motion_mean.copy_(both.mean(0))
            self.motion_std.copy_(both.std(0).clamp_min(1e-3))
            self.stats_ready.fill_(True)
        x_cur, x_prev = self.normalize(x_cur), self.normalize(x_prev)
        ctx = int(round((batch["audio"].shape[1] / self.audio_encoder.sample_rate * self.fps - n) / 2))
        if ctx < wp:
            raise ValueError(f"data.audio_context_frames ({ctx}) must be >= model.windows.w_pre ({wp}): the previous "
                             f"window's audio conditions the motion model")
        feats = self.audio_features(batch["audio"], n + 2 * ctx)[:, ctx - wp:ctx + n]
        a_prev, a_cur = feats[:, :wp], feats[:, wp:]
        if self.training and self.truncate_prob > 0 and float(torch.rand(())) < self.truncate_prob:
            n = int(torch.randint(1, self.w_cur + 1, ()))                      # random truncation (§3.3.1)
            x_cur, a_cur = x_cur[:, :n], a_cur[:, :n]
        steps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (b,), device=dev)
        x_t = self.noise_scheduler.add_noise(x_cur, torch.randn_like(x_cur), steps)
        keep = torch.rand(b, device=dev) >= self.guidance.audio_drop
        pred = self.dit(x_t, steps, a_cur, x_prev, a_prev, is_start=is_start, audio_keep=keep)
        target = torch.cat([x_prev, x_cur], 1)
        mask = torch.ones(b, wp + n, device=dev)
        mask[:, :wp] = (~is_start).float()[:, None]                             # no target behind start features
        return total_loss(pred, target, self.layout, self.loss_weights, mask)

    def training_step(self, batch, batch_idx):
        b = batch["frames"].shape[0]
        if self.stage == "render":
            loss = self.render_step(batch)
            self.log_loss(loss, b)
            return loss
        loss, parts = self.motion_step(batch)
        self.log_loss(loss, b)
        self.log_dict({f"train/motion_{k}": v for k, v in parts.items()}, batch_size=b)
        return loss

    # -- sampling ------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate_motion(self, audio_feats: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Audio features (B, N, A) -> motion (B, N, dim), sliding windows with CFG (§3.4, Eq. 3)."""
        scale, steps = self.guidance.scale, self.sampling.num_steps
        scheduler = DDIMScheduler.from_config(self.noise_scheduler.config)

        def window(a_cur, x_prev, a_prev):
            noise = torch.randn((a_cur.shape[0], a_cur.shape[1], self.layout.dim), generator=generator,
                                device=a_cur.device if generator is None else generator.device).to(a_cur)

            def denoise(x, t):  # D predicts clean motion: the scheduler's prediction_type is 'sample'
                return self.dit.guided(x, t.expand(x.shape[0]), a_cur, x_prev, a_prev, scale)[:, self.w_pre:]

            return ddim_sample(denoise, noise, scheduler, steps, prediction_type="sample")

        x = sliding_window_motion(window, audio_feats, self.w_cur, self.w_pre,
                                  self.sampling.progress)
        return self.denormalize(x)

    @torch.no_grad()
    def render_motion(self, reference: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        """References (B, 3, H, W) + motion (B, N, dim) -> videos (B, N, 3, H, W) in [-1, 1]: item b is
        rendered from reference b (test items are sampled side by side, ``data.test_batch_size``)."""
        source = self.renderer.encode_source(reference)
        chunk = self.sampling.render_chunk
        videos = []
        for b in range(motion.shape[0]):
            out = []
            for lo in range(0, motion.shape[1], chunk):
                m = motion[b, lo:lo + chunk]
                src = {k: v[b:b + 1].expand(m.shape[0], *v.shape[1:]) for k, v in source.items()}
                out.append(self.renderer.render(src, m))
            videos.append(torch.cat(out))
        return torch.stack(videos).clamp(-1, 1)

    @torch.no_grad()
    def generate(self, reference: torch.Tensor, audio: torch.Tensor, num_frames: int,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Long videos: references (B,3,H,W), audio (B,S) for the whole clips -> (B, num_frames, 3, H, W)."""
        if not bool(self.stats_ready):
            log.warning("JoyVASA: the motion stage has not run (no motion statistics); sampling from an untrained "
                        "motion model")
        motion = self.generate_motion(self.audio_features(audio, num_frames), generator)
        return self.render_motion(reference, motion)

    def sample_items(self, batch: dict, num_frames: int, fps: float, batch_idx: int) -> torch.Tensor:
        gen = torch.Generator(device=batch["reference"].device)
        gen.manual_seed(self.sampling.seed + int(batch_idx))
        return self.generate(batch["reference"], batch["audio"], num_frames, gen)

    def parameter_groups(self) -> dict[str, list[torch.nn.Module]]:
        return {"audio_to_motion_dit": [self.dit], "appearance_encoder": [self.renderer.appearance],
                "motion_encoder": [self.renderer.motion], "warping_generator": [self.renderer.warp],
                "audio_encoder_frozen": [self.audio_encoder]}
