"""MediaPipe face mesh backend (offline default; metric_protocols.md section 7).

``mediapipe==0.10.21`` ships the face detection and face landmark TFLite models inside
the wheel, so this backend needs no download. The 468-point mesh is mapped onto the
68 iBUG points (:data:`MESH_TO_IBUG68`) so Glo/Exp see the same semantics as DWPose.
"""
from __future__ import annotations

import cv2
import numpy as np

from metrics.landmarks import FaceTrack

#: Mesh vertex used for each iBUG-68 point (0-based iBUG order). A widely used
#: correspondence; the iBUG nose tip (30) is mesh vertex 4, the eye corners 36/39/42/45
#: are mesh 33/133/362/263. Only the 37 upper-face points and the nose tip enter
#: Glo/Exp; the jaw and mouth entries complete the layout for other users.
MESH_TO_IBUG68 = (
    # jaw 0-16
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
    # brows 17-26
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,
    # nose bridge 27-30, lower nose 31-35
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    # eyes 36-47
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    # mouth 48-67
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181, 78, 82, 13, 312, 308, 317, 14, 87,
)
assert len(MESH_TO_IBUG68) == 68
MESH_NOSE_TIP = MESH_TO_IBUG68[30]  # 4

# The bundled detector works at 128x128; tiny frames (64x64 test videos) are
# upsampled first so a face that fills the frame is still found. Coordinates are
# normalised, so the resize does not change them.
_MIN_SIDE = 256


def _upsample(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    k = _MIN_SIDE / min(h, w)
    if k <= 1:
        return frame
    return cv2.resize(frame, (round(w * k), round(h * k)), interpolation=cv2.INTER_LINEAR)


class MediaPipeFaceMesh:
    """468-point face mesh -> iBUG-68 :class:`FaceTrack`.

    ``static_image_mode=False`` tracks across frames like a video; one face per frame
    (the most prominent one), ``refine_landmarks=False`` (468 points, no iris model).
    """

    name = "mediapipe"
    label = "mediapipe==0.10.21:face_mesh(468)->ibug68"

    def __init__(self, min_detection_confidence: float = 0.5, static_image_mode: bool = False):
        self.min_detection_confidence = min_detection_confidence
        self.static_image_mode = static_image_mode

    def mesh(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the mesh. frames uint8 [T,H,W,3] RGB -> (points [T,468,2] in [0,1], found [T])."""
        import mediapipe as mp

        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected uint8 frames [T,H,W,3] RGB, got {frames.dtype} {frames.shape}")
        T = len(frames)
        pts = np.full((T, 468, 2), np.nan, dtype=np.float64)
        found = np.zeros(T, dtype=bool)
        with mp.solutions.face_mesh.FaceMesh(
            static_image_mode=self.static_image_mode,
            max_num_faces=1,
            refine_landmarks=False,
            min_detection_confidence=self.min_detection_confidence,
        ) as fm:
            for t, frame in enumerate(frames):
                res = fm.process(np.ascontiguousarray(_upsample(frame)))
                if not res.multi_face_landmarks:
                    continue
                lm = res.multi_face_landmarks[0].landmark
                pts[t] = [(p.x, p.y) for p in lm[:468]]
                found[t] = True
        return pts, found

    def __call__(self, frames: np.ndarray) -> FaceTrack:
        """frames uint8 [T,H,W,3] RGB -> :class:`FaceTrack` with 68 iBUG points."""
        mesh, found = self.mesh(frames)
        h, w = np.asarray(frames).shape[1:3]
        boxes = np.full((len(found), 4), np.nan)
        if found.any():
            xy = mesh[found] * np.array([w, h])
            boxes[found] = np.concatenate([xy.min(1), xy.max(1)], axis=1)
        return FaceTrack(
            points=mesh[:, list(MESH_TO_IBUG68)], found=found, boxes=boxes, backend=self.label
        )


def detect_face_boxes(frames: np.ndarray, min_detection_confidence: float = 0.5) -> np.ndarray:
    """MediaPipe short-range face detection. frames uint8 [T,H,W,3] RGB -> boxes [T,4] in
    pixels (x0, y0, x1, y1) of the highest-scoring face, NaN where none was found.
    Used for the SyncNet crops (metrics/landmarks/face_crop.py)."""
    import mediapipe as mp

    frames = np.asarray(frames)
    T, h, w = frames.shape[:3]
    boxes = np.full((T, 4), np.nan)
    with mp.solutions.face_detection.FaceDetection(
        model_selection=0, min_detection_confidence=min_detection_confidence
    ) as fd:
        for t, frame in enumerate(frames):
            res = fd.process(np.ascontiguousarray(_upsample(frame)))
            if not res.detections:
                continue
            det = max(res.detections, key=lambda d: d.score[0])
            bb = det.location_data.relative_bounding_box
            boxes[t] = [bb.xmin * w, bb.ymin * h, (bb.xmin + bb.width) * w, (bb.ymin + bb.height) * h]
    return boxes
