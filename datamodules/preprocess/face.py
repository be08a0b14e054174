"""Face boxes and a coarse head pose from MediaPipe's face detector (bundled BlazeFace model, offline).

The detector gives a box and six keypoints per face (right eye, left eye, nose tip,
mouth centre, right ear tragion, left ear tragion). From them we estimate the head
rotation the papers filter on (Loopy App. A drops any angle over 45 degrees):
roll from the eye line, yaw from where the nose sits between the ears, pitch from
where it sits between the eyes and the mouth, relative to a frontal face. These are
geometric approximations (about +-10 degrees), enough for a 45-degree filter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# nose height between eye line (0) and mouth (1) on a frontal face
_FRONTAL_NOSE_RATIO = 0.55


@dataclass
class FaceTrack:
    """Detections on sampled frames.

    Attributes:
        frame_index: ``[F]`` the sampled frame numbers.
        count: ``[F]`` faces found on each.
        boxes: ``[F, 4]`` x0, y0, x1, y1 in [0, 1] of the most confident face (NaN when none).
        pose: ``[F, 3]`` yaw, pitch, roll in degrees of that face (NaN when none).
    """

    frame_index: np.ndarray
    count: np.ndarray
    boxes: np.ndarray
    pose: np.ndarray

    @property
    def centres(self) -> np.ndarray:
        return np.stack([(self.boxes[:, 0] + self.boxes[:, 2]) / 2, (self.boxes[:, 1] + self.boxes[:, 3]) / 2], -1)


def pose_from_keypoints(kp: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) degrees from the six detector keypoints ``[6, 2]`` (x right, y down)."""
    reye, leye, nose, mouth, rear, lear = kp
    roll = np.degrees(np.arctan2(leye[1] - reye[1], leye[0] - reye[0]))
    half = max(abs(lear[0] - rear[0]) / 2, 1e-6)
    yaw = np.degrees(np.arcsin(np.clip((nose[0] - (lear[0] + rear[0]) / 2) / half, -1, 1)))
    eye_y = (reye[1] + leye[1]) / 2
    span = max(mouth[1] - eye_y, 1e-6)
    pitch = np.degrees(np.arcsin(np.clip(((nose[1] - eye_y) / span - _FRONTAL_NOSE_RATIO) / _FRONTAL_NOSE_RATIO, -1, 1)))
    return np.array([yaw, pitch, roll], np.float32)


def detect_faces(frames: np.ndarray, every: int = 5, min_confidence: float = 0.5, full_range: bool = True) -> FaceTrack:
    """Run the detector on every ``every``-th frame of uint8 ``[T, H, W, 3]`` RGB frames."""
    import mediapipe as mp

    idx = np.arange(0, len(frames), max(1, every))
    count = np.zeros(len(idx), np.int32)
    boxes = np.full((len(idx), 4), np.nan, np.float32)
    pose = np.full((len(idx), 3), np.nan, np.float32)
    with mp.solutions.face_detection.FaceDetection(model_selection=int(full_range),
                                                   min_detection_confidence=min_confidence) as fd:
        for j, t in enumerate(idx):
            dets = fd.process(np.ascontiguousarray(frames[t])).detections or []
            count[j] = len(dets)
            if dets:
                d = max(dets, key=lambda d: d.score[0])
                b = d.location_data.relative_bounding_box
                boxes[j] = (b.xmin, b.ymin, b.xmin + b.width, b.ymin + b.height)
                kp = np.array([(k.x, k.y) for k in d.location_data.relative_keypoints])
                pose[j] = pose_from_keypoints(kp)
    return FaceTrack(idx, count, boxes, pose)
