"""Face tracks for Sync as syncnet_python's ``run_pipeline.py`` builds them (joonson/syncnet_python@6efbb1c).

1. **Shots** (``scene_detect``): PySceneDetect 0.5.1 (the version syncnet_python pins) ``ContentDetector()``
   with its defaults, threshold 30 and ``min_scene_len`` 15, on frames subsampled by the VideoManager's
   default downscale factor: a cut at frame n when the mean absolute H, S and V change from frame n - 1,
   averaged over the three channels, is at least the threshold and n is at least ``min_scene_len`` frames
   after the previous cut. Shots are the spans between cuts (the whole clip when there is none).
2. **Detections** (``inference_video``): S3FD at ``facedet_scale`` 0.25 with ``conf_th`` 0.9
   (:mod:`metrics.landmarks.s3fd`).
3. **Tracks** (``track_shot``) in every shot of at least ``min_track`` frames: greedy chains of detections
   whose IoU with the chain's last box exceeds 0.5 and that are at most ``num_failed_det`` frames apart;
   chains longer than ``min_track`` detections are filled in frame by frame by linear interpolation and kept
   when their mean width or height exceeds ``min_face_size`` pixels.

The crops of each track (``crop_video``: crop_scale 0.4, median filter 13, pad 110, 224 px) and the
track's own audio span are then scored by :class:`metrics.sync.SyncScorer`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

#: PySceneDetect 0.5.1 ``DEFAULT_DOWNSCALE_FACTORS``: frame width -> pixel step (``frame[::k, ::k]``).
DOWNSCALE_FACTORS = {3200: 12, 2100: 8, 1700: 6, 1200: 5, 900: 4, 600: 3, 400: 2}
CONTENT_THRESHOLD = 30.0
MIN_SCENE_LEN = 15
IOU_THRESHOLD = 0.5


@dataclass
class Track:
    """One face track: absolute frame numbers ``[n]`` (consecutive) and boxes ``[n, 4]`` (x0, y0, x1, y1)."""

    frames: np.ndarray
    boxes: np.ndarray


def downscale_factor(width: int) -> int:
    """PySceneDetect 0.5.1 ``compute_downscale_factor``."""
    return next((k for w, k in sorted(DOWNSCALE_FACTORS.items(), reverse=True) if width >= w), 1)


def content_cuts(frames: np.ndarray, threshold: float = CONTENT_THRESHOLD,
                 min_scene_len: int = MIN_SCENE_LEN) -> list[int]:
    """Frame numbers where a new shot starts (PySceneDetect 0.5.1 ``ContentDetector.process_frame``)."""
    step = downscale_factor(frames.shape[2])
    cuts: list[int] = []
    last_hsv, last_cut = None, None
    for n, frame in enumerate(frames):
        hsv = cv2.cvtColor(np.ascontiguousarray(frame[::step, ::step]), cv2.COLOR_RGB2HSV).astype(np.int32)
        if last_hsv is not None:
            value = np.abs(hsv - last_hsv).mean(axis=(0, 1)).mean()
            if value >= threshold and (last_cut is None or n - last_cut >= min_scene_len):
                cuts.append(n)
                last_cut = n
        last_hsv = hsv
    return cuts


def shots(n_frames: int, cuts: list[int]) -> list[tuple[int, int]]:
    """``[start, end)`` spans between cuts (``get_scenes_from_cuts``)."""
    edges = [0, *cuts, n_frames]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def iou(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes (``bb_intersection_over_union``)."""
    iw, ih = max(0.0, min(a[2], b[2]) - max(a[0], b[0])), max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def track_shot(dets: list[list[dict]], min_track: int, num_failed_det: int, min_face_size: float,
               iou_threshold: float = IOU_THRESHOLD) -> list[Track]:
    """Greedy IoU tracks over one shot's detections (``{"frame": n, "bbox": [4]}`` per face, per frame).

    Same chaining as run_pipeline ``track_shot``, including that a face taken into a track is removed from
    its frame's list while that list is being walked (so the next face of the same frame is passed over in
    that sweep), and that a detection farther than ``num_failed_det`` frames from the track ends the walk
    of its frame.
    """
    pending = [list(f) for f in dets]
    tracks: list[Track] = []
    while True:
        track: list[dict] = []
        for faces in pending:
            i = 0
            while i < len(faces):
                face = faces[i]
                if not track:
                    track.append(face)
                    del faces[i]
                elif face["frame"] - track[-1]["frame"] <= num_failed_det:
                    if iou(face["bbox"], track[-1]["bbox"]) > iou_threshold:
                        track.append(face)
                        del faces[i]
                else:
                    break
                i += 1  # a list iterator moves on by one even when the current item was removed
        if not track:
            return tracks
        if len(track) > min_track:
            frame_num = np.array([f["frame"] for f in track])
            boxes = np.array([f["bbox"] for f in track], dtype=np.float64)
            frames = np.arange(frame_num[0], frame_num[-1] + 1)
            filled = np.stack([np.interp(frames, frame_num, boxes[:, j]) for j in range(4)], 1)
            if max(np.mean(filled[:, 2] - filled[:, 0]), np.mean(filled[:, 3] - filled[:, 1])) > min_face_size:
                tracks.append(Track(frames, filled))


class S3FDTracks:
    """``frames RGB uint8 [T, H, W, 3] -> [Track]``: shots, S3FD detections, IoU tracks (run_pipeline.py)."""

    def __init__(self, detect: Callable[[np.ndarray], np.ndarray], min_track: int = 100, num_failed_det: int = 25,
                 min_face_size: float = 100):
        self.detect, self.min_track, self.num_failed_det, self.min_face_size = (
            detect, min_track, num_failed_det, min_face_size)

    @classmethod
    def from_weights(cls, weights_cfg: dict | None = None, device: str = "cpu", facedet_scale: float = 0.25,
                     conf_th: float = 0.9, **track_options) -> S3FDTracks:
        """The S3FD of ``weights.s3fd`` (``sfd_face.pth``); a missing file raises naming the key."""
        from core.weights import resolve
        from metrics.landmarks.s3fd import S3FD, load_s3fd

        det = S3FD(load_s3fd(resolve("s3fd", weights_cfg, standin=False)), device, facedet_scale, conf_th)
        return cls(det.detect, **track_options)

    def __call__(self, frames: np.ndarray) -> list[Track]:
        dets = [[{"frame": n, "bbox": list(b[:4])} for b in self.detect(frame)] for n, frame in enumerate(frames)]
        tracks: list[Track] = []
        for start, end in shots(len(frames), content_cuts(frames)):
            if end - start >= self.min_track:
                tracks += track_shot(dets[start:end], self.min_track, self.num_failed_det, self.min_face_size)
        return tracks


__all__ = ["S3FDTracks", "Track", "content_cuts", "downscale_factor", "iou", "shots", "track_shot"]
