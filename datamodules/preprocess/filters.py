"""The papers' data filters, each a named, configurable step.

Loopy (App. A): face-centre jump as camera cut, several people, split over 20 s, drop
under 2 s, head rotation over 45 degrees, SyncNet confidence under 2.5, file under
150 KB. MCDM (Sec. 4.1): scene cuts (PySceneDetect), at most 30 s, complete single
face, quality filter, SyncNet. A step returns a drop reason or None, and may split or
trim ``work.segments`` (``[start, end)`` frame ranges at 25 fps).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from datamodules.clips import FPS


@dataclass
class Work:
    """One video on its way through the filters."""

    rec: object
    frames: np.ndarray
    audio: np.ndarray
    faces: object = None
    segments: list = field(default_factory=list)


class Step:
    name = "step"
    stage = "decoded"  # "decoded": on frames; "output": on a written file

    def params(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __call__(self, work: Work) -> str | None:
        raise TypeError(f"{type(self).__name__} must define __call__")


class NoFace(Step):
    """Drop when more than ``max_missing`` of the sampled frames show no face."""

    name = "no_face"

    def __init__(self, max_missing: float = 0.2):
        self.max_missing = max_missing

    def __call__(self, w):
        miss = float(np.mean(w.faces.count == 0))
        return (f"no face on {miss:.0%} of sampled frames (> {self.max_missing:.0%}); the clip must show one visible "
                f"face (or raise preprocess.filters.no_face.max_missing)") if miss > self.max_missing else None


class MultiplePeople(Step):
    """Drop when more than ``max_fraction`` of the sampled frames show several faces (Loopy, MCDM)."""

    name = "multiple_people"

    def __init__(self, max_fraction: float = 0.1):
        self.max_fraction = max_fraction

    def __call__(self, w):
        frac = float(np.mean(w.faces.count > 1))
        return (f"several faces on {frac:.0%} of sampled frames (> {self.max_fraction:.0%}); the papers train on one "
                f"speaker per clip: crop it to one person (or raise preprocess.filters.multiple_people.max_fraction)"
                ) if frac > self.max_fraction else None


class CameraCut(Step):
    """Loopy: a face centre that jumps more than ``max_jump`` (fraction of the frame) between samples is a cut."""

    name = "camera_cut"

    def __init__(self, max_jump: float = 0.15):
        self.max_jump = max_jump

    def __call__(self, w):
        c = w.faces.centres
        c = c[~np.isnan(c).any(1)]
        if len(c) < 2:
            return None
        jump = float(np.linalg.norm(np.diff(c, axis=0), axis=1).max())
        return f"face centre jumped {jump:.2f} of the frame (camera cut)" if jump > self.max_jump else None


class SceneCut(Step):
    """MCDM: split at content changes (HSV histogram distance above ``threshold``, as PySceneDetect's content detector)."""

    name = "scene_cut"

    def __init__(self, threshold: float = 0.4):
        self.threshold = threshold

    def __call__(self, w):
        hists = []
        for f in w.frames:
            hsv = cv2.cvtColor(cv2.resize(f, (64, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2HSV)
            h = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256])
            hists.append(cv2.normalize(h, h).flatten())
        d = [cv2.compareHist(hists[i - 1], hists[i], cv2.HISTCMP_BHATTACHARYYA) for i in range(1, len(hists))]
        cuts = [i + 1 for i, v in enumerate(d) if v > self.threshold]
        out = []
        for a, b in w.segments:
            edges = [a] + [c for c in cuts if a < c < b] + [b]
            out += list(zip(edges[:-1], edges[1:], strict=True))
        w.segments = out
        return None


class HeadRotation(Step):
    """Loopy: drop when any estimated head angle exceeds ``max_deg`` (side profiles)."""

    name = "head_rotation"

    def __init__(self, max_deg: float = 45.0):
        self.max_deg = max_deg

    def __call__(self, w):
        p = w.faces.pose[~np.isnan(w.faces.pose).any(1)]
        if not len(p):
            return None
        worst = float(np.abs(p).max())
        return f"head rotation {worst:.0f} deg > {self.max_deg:g}" if worst > self.max_deg else None


class SplitLong(Step):
    """Loopy: split segments longer than ``max_s`` seconds into consecutive pieces."""

    name = "split_long"

    def __init__(self, max_s: float = 20.0):
        self.max_s = max_s

    def __call__(self, w):
        n = int(self.max_s * FPS)
        w.segments = [(s, min(s + n, b)) for a, b in w.segments for s in range(a, b, n)]
        return None


class MaxDuration(Step):
    """MCDM: trim each segment to at most ``max_s`` seconds."""

    name = "max_duration"

    def __init__(self, max_s: float = 30.0):
        self.max_s = max_s

    def __call__(self, w):
        w.segments = [(a, min(b, a + int(self.max_s * FPS))) for a, b in w.segments]
        return None


class MinDuration(Step):
    """Loopy: drop segments shorter than ``min_s`` seconds; the video when none is left."""

    name = "min_duration"

    def __init__(self, min_s: float = 2.0):
        self.min_s = min_s

    def __call__(self, w):
        w.segments = [(a, b) for a, b in w.segments if (b - a) >= self.min_s * FPS]
        return None if w.segments else f"no segment of at least {self.min_s:g} s"


class SyncConfidence(Step):
    """Loopy/MCDM: drop below ``min_confidence`` SyncNet confidence. Needs a scorer ``f(frames, audio) -> float``.

    Without one (no SyncNet weights) the step is reported as not run, never silently passed.
    """

    name = "sync_confidence"

    def __init__(self, min_confidence: float = 2.5, scorer=None):
        self.min_confidence, self._scorer = min_confidence, scorer

    @property
    def available(self) -> bool:
        return self._scorer is not None

    def __call__(self, w):
        if self._scorer is None:
            return None
        from metrics.landmarks import VideoSkipped

        try:
            c = float(self._scorer(w.frames, w.audio))
        except VideoSkipped as e:  # no face track, too short, no audio: SyncNet cannot vouch for it
            return f"SyncNet could not score it: {e}"
        return f"SyncNet confidence {c:.2f} < {self.min_confidence:g}" if c < self.min_confidence else None


class Quality(Step):
    """MCDM's quality filter, stand-in: the learned IQA model (HyperIQA) is replaced by two measurable
    proxies, the face box height in pixels and the sharpness (variance of the Laplacian) of sampled frames."""

    name = "quality"

    def __init__(self, min_face_px: float = 96.0, min_sharpness: float = 20.0):
        self.min_face_px, self.min_sharpness = min_face_px, min_sharpness

    def __call__(self, w):
        h = w.frames.shape[1]
        face_px = float(np.nanmedian((w.faces.boxes[:, 3] - w.faces.boxes[:, 1]) * h))
        if face_px < self.min_face_px:
            return f"face {face_px:.0f} px tall < {self.min_face_px:g} (low resolution)"
        sample = w.frames[:: max(1, len(w.frames) // 8)]
        sharp = float(np.median([cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var() for f in sample]))
        return f"sharpness {sharp:.1f} < {self.min_sharpness:g} (blurry)" if sharp < self.min_sharpness else None


class FileSize(Step):
    """Loopy: discard written clips smaller than ``min_kb`` kilobytes."""

    name = "file_size"
    stage = "output"

    def __init__(self, min_kb: float = 150.0):
        self.min_kb = min_kb

    def check(self, path) -> str | None:
        import os

        kb = os.path.getsize(path) / 1024
        return f"file {kb:.0f} KB < {self.min_kb:g} KB" if kb < self.min_kb else None

    def __call__(self, w):
        return None


STEPS = {c.name: c for c in (NoFace, MultiplePeople, CameraCut, SceneCut, HeadRotation, SplitLong, MaxDuration,
                             MinDuration, SyncConfidence, Quality, FileSize)}

PRESETS = {
    "loopy": [{"name": "no_face"}, {"name": "multiple_people"}, {"name": "camera_cut"}, {"name": "split_long"},
              {"name": "min_duration"}, {"name": "head_rotation"}, {"name": "sync_confidence"}, {"name": "file_size"}],
    "mcdm": [{"name": "scene_cut"}, {"name": "max_duration"}, {"name": "no_face"}, {"name": "multiple_people"},
             {"name": "quality"}, {"name": "sync_confidence"}],
}


def build_steps(spec, sync_scorer=None) -> list[Step]:
    """``spec``: a preset name (``loopy``, ``mcdm``) or a list of ``{name: ..., <param>: ...}``."""
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise ValueError(f"preprocess.filters={spec!r}: choose a preset {sorted(PRESETS)} or a list of steps")
        spec = PRESETS[spec]
    steps = []
    for item in spec or []:
        item = dict(item)
        name = item.pop("name", None)
        if name not in STEPS:
            raise ValueError(f"preprocess.filters: unknown step {name!r}; known: {sorted(STEPS)}")
        if name == "sync_confidence":
            item["scorer"] = sync_scorer
        try:
            steps.append(STEPS[name](**item))
        except TypeError as e:
            raise ValueError(f"preprocess.filters.{name}: {e}") from e
    return steps
