"""SynthTalk: a deterministic talking-head benchmark with ground truth, and its DataModule.

Identities are the two photos scikit-image ships (``astronaut``, a human portrait, and
``chelsea``, a cat for JoyVASA's animal case, Sec. 4.3) plus procedurally drawn faces.
Each has its own voice (``synth_speech.Speaker``) and motion style
(``synth_motion.MotionStyle``). Per clip the generator writes, in the layout of the
folder data set::

    <root>/<key>/videos/<video_id>.mp4   H.264 + AAC, 25 fps, image_size^2
    <root>/<key>/videos/<video_id>.wav   16 kHz mono PCM
    <root>/<key>/gt/<video_id>.npz       per-frame ground truth (below)
    <root>/<key>/splits/{train,test}.txt video ids, one a line
    <root>/<key>/identities.json         voice, motion style, kind and split of each identity

Ground truth (``gt/*.npz``), T frames: ``yaw``, ``pitch``, ``roll`` [T] degrees;
``translation`` [T, 2] and ``scale`` [T]; ``mouth_open`` [T] and ``blink`` [T] in [0, 1];
``nose`` [T, 2] and ``keypoints`` [T, 68, 2] in [0, 1] (iBUG-68 layout, ``synth_faces``);
``audio_envelope`` [T] (RMS per frame); scalars ``fps``, ``lip_latency_frames``, ``t0``.

The mouth opening of frame t is the vowel openness times loudness of the audio of frame
``t - lip_latency_frames``; sway and blinks follow the identity's slow rhythms, visible
only to a model with a long motion history. Same parameters, same bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.atomic import atomic_path
from core.video_io import write_video, write_wav
from datamodules.base import ClipDataModule
from datamodules.clips import FPS, SAMPLE_RATE, VideoRecord
from datamodules.synth_faces import NOSE_TIP, make_identity, render_frame
from datamodules.synth_motion import MotionStyle, blink_track, head_pose
from datamodules.synth_speech import Speaker, frame_envelope, mouth_track, speak

GENERATOR_VERSION = 4  # 4: frames encoded with explicit timestamps, the same bytes in any process (core.video_io)


def identity_names(num_identities: int) -> list[str]:
    return ["astronaut", "chelsea"][:num_identities] + [f"face{i:02d}" for i in range(2, num_identities)]


def render_clip(ident, speaker: Speaker, style: MotionStyle, seconds: float, image_size: int,
                rng: np.random.Generator, latency_frames: int = 0, clock: float | None = None,
                at_rest: bool = False) -> tuple[np.ndarray, np.ndarray, dict]:
    """Frames uint8 ``[T, S, S, 3]``, audio float32 ``[T * 640]`` and the ground-truth dict.

    ``clock``: the same clip (identity, speech, mouth, nods on the same phrase onsets) with its head sway and
    blinks taken from that point of the identity's clock instead of the clip's own, the pose shifted so that
    frame 0 keeps the clip's own first pose (its reference frame): what a perfect generator that starts
    from the reference but cannot know the clip's motion phase would render (the ``own_clock`` control).
    ``at_rest``: the same clip with the head at the identity's mean pose (no sway) and no blinks, the nods
    on phrase onsets and the mouth as before: only what the audio determines (the ``at_rest`` control).
    """
    n = int(round(seconds * FPS))
    audio, openness, phrases = speak(n / FPS, speaker, rng)
    t0 = float(rng.uniform(0.0, 100.0))  # where on the identity's clock this clip starts
    start = t0 if clock is None else float(clock)
    times = start + np.arange(n) / FPS
    if at_rest:  # the sinusoids' mean is the neutral pose; a blink period beyond the clip: no blink
        style = dataclasses.replace(style, amplitudes=(0.0, 0.0, 0.0), blink_period_s=1e9)
    pose = head_pose(style, times, [start + p for p in phrases])
    if clock is not None:
        first = head_pose(style, np.array([t0]), [t0 + p for p in phrases])
        pose = {k: v - v[:1] + first[k] for k, v in pose.items()}
    blink = blink_track(style, times)
    mouth = mouth_track(openness, n, FPS, latency_frames)
    frames = np.zeros((n, image_size, image_size, 3), np.uint8)
    kps = np.zeros((n, 68, 2), np.float32)
    for t in range(n):
        p = {k: v[t] for k, v in pose.items()}
        frames[t], kps[t] = render_frame(ident, p, float(mouth[t]), float(blink[t]), image_size)
    gt = {**pose, "mouth_open": mouth, "blink": blink, "keypoints": kps, "nose": kps[:, NOSE_TIP],
          "audio_envelope": frame_envelope(audio, n, FPS), "fps": np.float32(FPS),
          "lip_latency_frames": np.int32(latency_frames), "t0": np.float32(start)}
    return frames, audio, gt


class SynthTalk:
    """The generator. ``build()`` writes the whole set once into ``folder`` (atomically)."""

    def __init__(self, root: str | os.PathLike, seed: int = 0, image_size: int = 64, num_identities: int = 4,
                 clips_per_identity: int = 3, seconds_per_clip: float = 6.0, test_identities: list | None = None,
                 test_clips_per_identity: int = 1, test_seconds: float = 4.0, lip_latency_frames: int = 0,
                 canvas_scale: int = 2, crf: int = 12):
        if num_identities < 1 or clips_per_identity < 0 or seconds_per_clip <= 0 or image_size < 16:
            raise ValueError("data: num_identities >= 1, clips_per_identity >= 0, seconds_per_clip > 0 and "
                             f"image_size >= 16 are required (got {num_identities}, {clips_per_identity}, "
                             f"{seconds_per_clip}, {image_size})")
        names = identity_names(num_identities)
        test_identities = list(test_identities or [])
        unknown = [t for t in test_identities if t not in names]
        if unknown:
            raise ValueError(f"data.test_identities: {unknown} are not among the identities {names}; "
                             f"raise data.num_identities or pick from that list")
        self.params = {"version": GENERATOR_VERSION, "seed": int(seed), "image_size": int(image_size),
                       "num_identities": int(num_identities), "clips_per_identity": int(clips_per_identity),
                       "seconds_per_clip": float(seconds_per_clip), "test_identities": test_identities,
                       "test_clips_per_identity": int(test_clips_per_identity), "test_seconds": float(test_seconds),
                       "lip_latency_frames": int(lip_latency_frames), "canvas_scale": int(canvas_scale),
                       "crf": int(crf)}
        digest = hashlib.sha1(json.dumps(self.params, sort_keys=True).encode()).hexdigest()[:8]
        key = f"px{image_size}_id{num_identities}x{clips_per_identity}_{seconds_per_clip:g}s_seed{seed}_{digest}"
        self.folder = Path(root) / key
        self.names = names

    @property
    def ready(self) -> bool:
        return (self.folder / "splits" / "test.txt").exists()

    def plan(self) -> list[tuple[str, int, str, float]]:
        """(identity, identity index, video id, seconds) of every clip, in generation order."""
        p = self.params
        out = []
        for i, name in enumerate(self.names):
            if name not in p["test_identities"]:
                out += [(name, i, f"{name}_{c:02d}", p["seconds_per_clip"]) for c in range(p["clips_per_identity"])]
            out += [(name, i, f"{name}_test{c}", p["test_seconds"]) for c in range(p["test_clips_per_identity"])]
        return out

    def _voice(self, index: int):
        rng = np.random.default_rng([self.params["seed"], 101, index])
        return Speaker.random(rng), MotionStyle.random(rng)

    def _clip_rng(self, index: int, vid: str) -> np.random.Generator:
        return np.random.default_rng([self.params["seed"], 202, index, int(hashlib.sha1(vid.encode()).hexdigest()[:8], 16)])

    def render(self, video_id: str, clock: float | None = None, at_rest: bool = False
               ) -> tuple[np.ndarray, np.ndarray, dict]:
        """Render clip ``video_id`` again, as ``build`` did (``clock=None``), on another point of its
        identity's clock or with the head at rest (:func:`render_clip`); before video encoding."""
        plan = {vid: (name, i, secs) for name, i, vid, secs in self.plan()}
        if video_id not in plan:
            raise KeyError(f"SynthTalk has no clip {video_id!r} at {self.folder}")
        _, i, secs = plan[video_id]
        p = self.params
        ident = make_identity(i, p["image_size"] * p["canvas_scale"], p["seed"])
        return render_clip(ident, *self._voice(i), secs, p["image_size"], self._clip_rng(i, video_id),
                           p["lip_latency_frames"], clock=clock, at_rest=at_rest)

    def build(self, progress: bool = True) -> Path:
        if self.ready:
            return self.folder
        p = self.params
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        idents, voices = {}, {}
        info = {}
        for i, name in enumerate(self.names):
            idents[name] = make_identity(i, p["image_size"] * p["canvas_scale"], p["seed"])
            voices[name] = self._voice(i)
            info[name] = {"index": i, "kind": idents[name].kind, "held_out": name in p["test_identities"],
                          "speaker": voices[name][0].__dict__, "motion_style": voices[name][1].__dict__}
        # never a half-built set behind the name; another process that finished first keeps its copy
        with atomic_path(self.folder, folder=True, replace=False) as tmp:
            self._write(tmp, idents, voices, info, progress)
        return self.folder


    def _write(self, tmp: Path, idents: dict, voices: dict, info: dict, progress: bool) -> None:
        p = self.params
        splits: dict[str, list[str]] = {"train": [], "test": []}
        for name, i, vid, secs in tqdm(self.plan(), desc=f"SynthTalk -> {self.folder.name}", disable=not progress):
            frames, audio, gt = render_clip(idents[name], *voices[name], secs, p["image_size"],
                                            self._clip_rng(i, vid), p["lip_latency_frames"])
            write_video(tmp / "videos" / f"{vid}.mp4", frames, FPS, audio, SAMPLE_RATE, crf=p["crf"])
            write_wav(tmp / "videos" / f"{vid}.wav", audio, SAMPLE_RATE)
            with atomic_path(tmp / "gt" / f"{vid}.npz") as t, open(t, "wb") as fh:
                np.savez(fh, identity=np.array(name), kind=np.array(idents[name].kind), **gt)
            splits["test" if "_test" in vid else "train"].append(vid)
        (tmp / "splits").mkdir(parents=True, exist_ok=True)
        for split, ids in splits.items():
            (tmp / "splits" / f"{split}.txt").write_text("".join(f"{v}\n" for v in ids))
        (tmp / "identities.json").write_text(json.dumps(info, indent=1, sort_keys=True))
        (tmp / "params.json").write_text(json.dumps(p, indent=1, sort_keys=True))


class SynthTalkDataModule(ClipDataModule):
    """SynthTalk through the shared clip sampler; generates on first use.

    Config keys (``experiments/configs/data/synthtalk.yaml``): the generator's (``root``,
    ``seed``, ``image_size``, ``num_identities``, ``clips_per_identity``,
    ``seconds_per_clip``, ``test_identities``, ``test_clips_per_identity``,
    ``test_seconds``, ``lip_latency_frames``, ``crf``) and the loader's (``clip``,
    ``batch_size``, ``num_workers``, ``samples_per_video``, ``val_items``,
    ``max_test_items``, ``test_batch_size``, ``cache``: keep decoded frames as .npy beside the set).
    """

    name = "synthtalk"

    def __init__(self, root: str, seed: int = 0, image_size: int = 64, num_identities: int = 4,
                 clips_per_identity: int = 3, seconds_per_clip: float = 6.0, test_identities: list | None = None,
                 test_clips_per_identity: int = 1, test_seconds: float = 4.0, lip_latency_frames: int = 0,
                 crf: int = 12, clip: dict | None = None, batch_size: int = 4, num_workers: int = 0,
                 samples_per_video: int | None = None, val_items: int = 4, max_test_items: int | None = None,
                 cache: bool = True, audio_context_frames: int | None = None, name: str = "synthtalk",
                 progress: bool = True, test_batch_size: int = 1):
        self.gen = SynthTalk(root, seed, image_size, num_identities, clips_per_identity, seconds_per_clip,
                             test_identities, test_clips_per_identity, test_seconds, lip_latency_frames, crf=crf)
        # the test clips are generated test_seconds long: nothing to cut
        super().__init__(clip, image_size, batch_size, num_workers,
                         str(self.gen.folder / "cache") if cache else None, samples_per_video, val_items,
                         max_test_items, test_seconds=None, name=name,
                         audio_context_frames=audio_context_frames, test_batch_size=test_batch_size)
        self.progress = progress

    @property
    def folder(self) -> Path:
        return self.gen.folder

    def own_clock_frames(self, video_id: str, seed: int = 0) -> np.ndarray:
        """Test clip ``video_id`` rendered on another point of its identity's clock (uint8 ``[T, S, S, 3]``):
        the same speech and first pose, head sway and blinks out of phase with the ground truth's. The
        clock is drawn from ``seed`` and the clip's name, so every run of a seed gets the same video."""
        digest = int(hashlib.sha1(video_id.encode()).hexdigest()[:8], 16)
        clock = float(np.random.default_rng([int(seed), 303, digest]).uniform(0.0, 100.0))
        return self.gen.render(video_id, clock=clock)[0]

    def at_rest_frames(self, video_id: str, seed: int = 0) -> np.ndarray:
        """Test clip ``video_id`` with the head at its mean pose and no blinks, mouth and nods as in the
        ground truth (uint8 ``[T, S, S, 3]``; ``seed`` unused: nothing is drawn)."""
        return self.gen.render(video_id, at_rest=True)[0]

    def prepare_data(self) -> None:
        self.gen.build(self.progress)

    def records(self, split: str) -> list[VideoRecord]:
        self.prepare_data()
        path = self.folder / "splits" / f"{split}.txt"
        if not path.exists():
            raise FileNotFoundError(f"{path}: split file missing; delete {self.folder} to regenerate SynthTalk")
        info = json.loads((self.folder / "identities.json").read_text())
        out = []
        for vid in path.read_text().split():
            name = vid.rsplit("_", 1)[0]
            out.append(VideoRecord(
                video_id=vid, path=str(self.folder / "videos" / f"{vid}.mp4"), dataset="synthtalk", identity=name,
                split=split, audio_path=str(self.folder / "videos" / f"{vid}.wav"),
                keypoints=str(self.folder / "gt" / f"{vid}.npz"), gt_ready=True,
                meta={"kind": info[name]["kind"], "held_out_identity": info[name]["held_out"],
                      "gt_npz": str(self.folder / "gt" / f"{vid}.npz")}))
        return out
