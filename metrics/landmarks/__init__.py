"""Face landmark backends shared by the motion (Glo/Exp) and Sync metrics.

Both backends return a :class:`FaceTrack`: the 68 iBUG face points per frame in
normalised [0, 1] image coordinates (x right, y down), NaN rows where no face was
found. Keeping one 68-point semantics for both backends lets Glo/Exp (Loopy appendix
B.1, eqs. 3-7) use the same nose tip and the same 37 upper-face points everywhere.

iBUG-68 layout (0-based): jaw 0-16, brows 17-26, nose bridge 27-30 (30 = nose tip),
lower nose 31-35, eyes 36-47, mouth 48-67.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Nose tip in the iBUG-68 layout (DWPose whole-body id 23 + 30 = 53).
IBUG_NOSE_TIP = 30

#: The 37 "upper face" points of Exp (Loopy eq. 4: other facial landmarks, excluding
#: the keypoints below the nose that move with the lips). The appendix gives no list;
#: we keep everything at or above the nose-tip line: the upper jaw contour on each side
#: (0-2, 14-16), both brows (17-26), the whole nose (27-35) and both eyes (36-47).
#: The lower jaw (3-13) and the mouth (48-67) are excluded. The nose tip itself is in
#: the set; its offset from itself is 0, so it adds nothing to Exp.
IBUG_UPPER37 = tuple(list(range(0, 3)) + list(range(14, 48)))
assert len(IBUG_UPPER37) == 37

#: DWPose / COCO-WholeBody: face points are ids 23..90 of the 133 keypoints.
WHOLEBODY_FACE_START = 23
WHOLEBODY_NOSE_TIP = WHOLEBODY_FACE_START + IBUG_NOSE_TIP  # 53
WHOLEBODY_UPPER37 = tuple(WHOLEBODY_FACE_START + i for i in IBUG_UPPER37)


class VideoSkipped(ValueError):
    """A video cannot be scored by a metric; ``reason`` becomes ``skipped: reason``.

    Raised for videos without a face in too many frames, too short videos, or
    pred/gt pairs of different lengths; the evaluator records it per video.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class FaceTrack:
    """Landmarks of one video.

    points: float [T, 68, 2] in [0, 1] (x / width, y / height); NaN where not found.
    found:  bool [T], True where a face was found.
    boxes:  float [T, 4] face boxes in pixels (x0, y0, x1, y1); NaN where not found.
    """

    points: np.ndarray
    found: np.ndarray
    boxes: np.ndarray
    backend: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def found_fraction(self) -> float:
        return float(self.found.mean()) if len(self.found) else 0.0


def get_backend(name: str = "mediapipe", weights_cfg: dict | None = None):
    """Build a landmark backend by name: ``mediapipe`` (offline default) or ``dwpose``. The face network
    trained on SynthTalk is ``metrics.synthtalk.lab.open_lab(folder).tracker()`` (it builds on this
    package, so it is handed to the scorers as an object, not looked up here)."""
    if name == "mediapipe":
        from metrics.landmarks.mediapipe_backend import MediaPipeFaceMesh

        return MediaPipeFaceMesh()
    if name == "dwpose":
        from metrics.landmarks.dwpose import DWPose

        return DWPose.from_weights(weights_cfg)
    raise ValueError(
        f"unknown landmark backend {name!r} (config key metrics.landmarks.backend); "
        "use 'mediapipe' or 'dwpose' (the SynthTalk face network: eval.lab / --lab)"
    )


__all__ = [
    "FaceTrack",
    "IBUG_NOSE_TIP",
    "IBUG_UPPER37",
    "VideoSkipped",
    "WHOLEBODY_FACE_START",
    "WHOLEBODY_NOSE_TIP",
    "WHOLEBODY_UPPER37",
    "get_backend",
]
