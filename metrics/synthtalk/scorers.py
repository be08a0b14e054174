"""Scorers built from the SynthTalk evaluators, with the suite's scorer protocol (metrics/base.py).

Each takes the evaluator folder (``lab``, what ``ensure_evaluators`` returns) and labels its numbers
``synthtalk:<network>-w<width>:<cache key>``; ``protocol`` says what of the paper's protocol it keeps
and what it replaces. None of these numbers is comparable with a paper's (``metrics.base.comparable``).
Options meant for the official networks (batch sizes, input sizes, stand-in choices) do not apply
here; they are accepted so that one preset serves both, and listed in ``protocol`` as unused.
"""

from __future__ import annotations

import numpy as np

from metrics.base import SET, VideoSkipped, sample_frames, video_frames
from metrics.sync import VSHIFT, SyncScorer
from metrics.synthtalk.features import FVD_CLIP_LEN, clip_feature, expression_features
from metrics.synthtalk.lab import Lab, open_lab
from metrics.synthtalk.syncnet import lip_crops


def _lab(lab) -> Lab:
    return lab if isinstance(lab, Lab) else open_lab(lab)


def _unused(options: dict) -> str:
    return f"; unused options of the official network: {sorted(options)}" if options else ""


class SynthTalkSyncScorer(SyncScorer):
    """Sync-C / Sync-D with the SynthTalk SyncNet; lip crops from the face network's keypoint boxes."""

    def __init__(
        self, lab, device: str = "cpu", vshift: int = VSHIFT, min_face_fraction: float = 0.5, **unused
    ):
        # SyncScorer.__init__ would resolve the official file; everything else (score_video) is shared
        self.lab = _lab(lab)
        self.device, self.vshift, self.min_face_fraction, self.batch = device, vshift, min_face_fraction, 20
        self.model, self.backbone = self.lab.syncnet().to(device), self.lab.sync_label
        self.box_source = "synthtalk"  # score_video then crops the whole clip through self.crops
        self.deviations = ("lip crops from the SynthTalk face network's keypoints over the whole clip, "
                           "not syncnet_python's S3FD tracks",)
        self.protocol = (
            f"syncnet_python evaluation (MFCC, 5-frame windows, 224 px BGR crops, vshift={vshift}, "
            f"Sync-C = median - min) with metrics.sync.S at width {self.lab.config.sync.width:g} "
            f"trained on SynthTalk, not syncnet_v2.model; crop box = the 68 keypoints of the SynthTalk "
            f"face network instead of S3FD{_unused(unused)}"
        )

    def crops(self, frames: np.ndarray) -> np.ndarray:
        track = self.lab.tracker()(frames)
        if track.found_fraction < self.min_face_fraction:
            raise VideoSkipped(
                f"face found in {int(track.found.sum())}/{len(track.found)} frames "
                f"(< {self.min_face_fraction:.0%}): no face to crop the lips from; "
                f"the video must show one visible face"
            )
        return lip_crops(frames, track.boxes)


def motion_scorer(lab, device: str = "cpu", **options):
    """Glo / Exp / DGlo / DExp (Loopy eqs. 3-7) on the SynthTalk face network's keypoints."""
    from metrics.motion import MotionScorer

    scorer = MotionScorer(None, device=device, backend=_lab(lab).tracker(), **options)
    scorer.protocol = (
        "Loopy appendix B.1 eqs. 3-7 on the iBUG-68 points of the SynthTalk face network "
        "(trained on SynthTalk) instead of DWPose"
    )
    return scorer


class _SetScorer:
    needs_gt = True
    kind = SET

    def __init__(self, lab, device: str = "cpu"):
        self.lab = _lab(lab)
        self.device = device
        self.backbone = self.lab.face_label

    def outputs(self, video) -> dict:
        """Face network outputs of every frame (shared with the video's other SynthTalk scorers)."""
        return self.lab.tracker().outputs(video_frames(video))

    def sampled(self, video, key: str) -> np.ndarray:
        """Output ``key`` of the frames ``sample_frames`` picks (``frame_stride``, ``max_frames``)."""
        out = self.outputs(video)
        return out[key][sample_frames(np.arange(len(out[key])), self.frame_stride, self.max_frames)]


class SynthTalkFIDScorer(_SetScorer):
    """FID on the face network's frame embeddings."""

    name = "FID"
    metric_names = ("FID",)

    def __init__(
        self, lab, device: str = "cpu", frame_stride: int = 1, max_frames: int | None = None, **unused
    ):
        super().__init__(lab, device)
        self.frame_stride, self.max_frames = frame_stride, max_frames
        self.protocol = (
            f"Frechet distance of the SynthTalk face network's {self.lab.face().embed_dim}-d frame "
            f"embeddings instead of Inception pool-3; frame_stride={frame_stride}, "
            f"max_frames={max_frames}{_unused(unused)}"
        )

    def features(self, video) -> np.ndarray:
        return self.sampled(video, "embedding")


class SynthTalkFVDIScorer(_SetScorer):
    """FVD-I's clip sampling (StyleGAN-V fvd2048_16f: the first 16 frames) on face-network clip features."""

    name = "FVD-I"
    metric_names = ("FVD-I",)

    def __init__(
        self, lab, device: str = "cpu", clip_len: int = FVD_CLIP_LEN, clips_per_video: int = 1, **unused
    ):
        super().__init__(lab, device)
        self.clip_len, self.clips_per_video = clip_len, clips_per_video
        self.protocol = (
            f"{clips_per_video} clip(s) x {clip_len} frames per video as StyleGAN-V; clip feature = "
            f"mean, std and mean |difference| over time of the SynthTalk face network's frame embeddings "
            f"instead of I3D logits{_unused(unused)}"
        )

    def features(self, video) -> np.ndarray:
        from metrics.fvd import video_clips

        emb = self.outputs(video)["embedding"]
        return np.stack([clip_feature(c) for c in video_clips(emb, self.clip_len, self.clips_per_video)])


class SynthTalkFVDRScorer(_SetScorer):
    """FVD-R's pooling (DisCo FVD-3DRN50: 16-frame segments, averaged) on face-network clip features."""

    name = "FVD-R"
    metric_names = ("FVD-R",)

    def __init__(self, lab, device: str = "cpu", **unused):
        super().__init__(lab, device)
        self.protocol = (
            f"whole video in {FVD_CLIP_LEN}-frame segments (last padded with its last frame), segment "
            f"features averaged, as DisCo; segment feature = mean, std and mean |difference| over time of "
            f"the SynthTalk face network's frame embeddings instead of 3D ResNet-50{_unused(unused)}"
        )

    def features(self, video) -> np.ndarray:
        emb = self.outputs(video)["embedding"]
        pad = (-len(emb)) % FVD_CLIP_LEN
        if pad:
            emb = np.concatenate([emb, np.repeat(emb[-1:], pad, 0)])
        segments = emb.reshape(-1, FVD_CLIP_LEN, emb.shape[-1])
        return np.mean([clip_feature(s) for s in segments], axis=0, keepdims=True)


class SynthTalkEFIDScorer(_SetScorer):
    """E-FID on the face network's expression outputs."""

    name = "E-FID"
    metric_names = ("E-FID",)

    def __init__(
        self, lab, device: str = "cpu", frame_stride: int = 1, max_frames: int | None = None, **unused
    ):
        super().__init__(lab, device)
        self.frame_stride, self.max_frames = frame_stride, max_frames
        self.protocol = (
            "Frechet distance of per-frame expression outputs of the SynthTalk face network (mouth "
            "opening, blink, inner-lip gap / IOD, eyelid gap / IOD) instead of Deep3DFaceRecon's 64 "
            f"expression coefficients; frame_stride={frame_stride}, max_frames={max_frames}{_unused(unused)}"
        )

    def features(self, video) -> np.ndarray:
        out = self.outputs(video)
        pick = sample_frames(np.arange(len(out["points"])), self.frame_stride, self.max_frames)
        return expression_features({k: v[pick] for k, v in out.items()})


__all__ = [
    "SynthTalkEFIDScorer",
    "SynthTalkFIDScorer",
    "SynthTalkFVDIScorer",
    "SynthTalkFVDRScorer",
    "SynthTalkSyncScorer",
    "motion_scorer",
]
