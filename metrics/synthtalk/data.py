"""Read a built SynthTalk folder by its documented layout (``datamodules/synthtalk.py``).

::

    <folder>/videos/<id>.mp4 + <id>.wav   frames (RGB, 25 fps) and 16 kHz speech
    <folder>/gt/<id>.npz                  keypoints [T,68,2] in [0,1], mouth_open, blink, yaw/pitch/roll,
                                          translation, scale (per frame)
    <folder>/splits/{train,test}.txt      video ids, one a line
    <folder>/identities.json              per identity ``held_out`` (not in the training split)
    <folder>/params.json                  the generator parameters, ``version`` among them

The metrics package sits below the data modules, so this reader knows the layout only, never the
generator's code; mp4/wav decoding goes through ``core.video_io`` imported on use, as
``metrics/evaluate.py`` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Per-frame ground-truth arrays an evaluator trains on (all present in every gt/<id>.npz).
GT_KEYS = ("keypoints", "mouth_open", "blink", "yaw", "pitch", "roll", "translation", "scale")


@dataclass
class Clip:
    """One SynthTalk video with its ground truth, cut to the common length of frames and gt.

    frames uint8 [T,S,S,3] RGB; audio float32 [samples] at 16 kHz; gt: ``GT_KEYS`` -> arrays [T, ...].
    """

    video_id: str
    identity: str
    held_out: bool
    frames: np.ndarray
    audio: np.ndarray
    gt: dict

    @property
    def keypoints(self) -> np.ndarray:
        return self.gt["keypoints"]


class SynthTalkFolder:
    """A built SynthTalk set: parameters, identities, splits and clips.

    Raises ``FileNotFoundError`` naming the missing file when ``folder`` is not a built set.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        for rel in ("params.json", "identities.json", "splits/train.txt", "splits/test.txt"):
            if not (self.folder / rel).is_file():
                raise FileNotFoundError(
                    f"{self.folder / rel}: missing; {self.folder} is not a built SynthTalk folder "
                    "(build it with datamodules.synthtalk.SynthTalk(...).build(); pass the folder it returns)"
                )
        self.params: dict = json.loads((self.folder / "params.json").read_text())
        self.identities: dict = json.loads((self.folder / "identities.json").read_text())

    @property
    def image_size(self) -> int:
        return int(self.params["image_size"])

    def video_ids(self, split: str) -> list[str]:
        return (self.folder / "splits" / f"{split}.txt").read_text().split()

    def identity_of(self, video_id: str) -> str:
        """``face03_test1`` -> ``face03`` (ids are ``<identity>_<clip>``)."""
        return video_id.rsplit("_", 1)[0]

    def video_path(self, video_id: str) -> Path:
        return self.folder / "videos" / f"{video_id}.mp4"

    def clip(self, video_id: str) -> Clip:
        """Decode one clip and its ground truth (lazy ``core.video_io`` import)."""
        from core.video_io import read_audio, read_video

        video = read_video(self.video_path(video_id), with_audio=False)
        audio = read_audio(self.folder / "videos" / f"{video_id}.wav")
        path = self.folder / "gt" / f"{video_id}.npz"
        with np.load(path) as z:
            missing = [k for k in GT_KEYS if k not in z.files]
            if missing:
                raise ValueError(
                    f"{path}: ground truth lacks {missing}; rebuild the SynthTalk folder {self.folder}"
                )
            gt = {k: np.asarray(z[k], dtype=np.float32) for k in GT_KEYS}
        n = min(len(video.frames), len(gt["keypoints"]))
        identity = self.identity_of(video_id)
        held_out = bool(self.identities.get(identity, {}).get("held_out", False))
        return Clip(video_id, identity, held_out, video.frames[:n], audio, {k: v[:n] for k, v in gt.items()})

    def clips(self, split: str) -> list[Clip]:
        return [self.clip(v) for v in self.video_ids(split)]


__all__ = ["GT_KEYS", "Clip", "SynthTalkFolder"]
