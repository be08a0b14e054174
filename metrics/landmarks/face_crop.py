"""SyncNet face crops in the geometry of syncnet_python ``run_pipeline.crop_video``.

metric_protocols.md section 1: box half-size s = max(w, h) / 2; centre and s
median-filtered (kernel 13); the frame is padded with value 110; rows
[cy - s, cy + s(1 + 2*0.4)], cols [cx - s(1.4), cx + s(1.4)]; resized to 224x224.
Boxes come from the offline MediaPipe face detector instead of S3FD.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.signal import medfilt

CROP_SIZE = 224
PAD_VALUE = 110
CROP_SCALE = 0.4
MEDIAN_KERNEL = 13


def interpolate_boxes(boxes: np.ndarray) -> np.ndarray:
    """Fill NaN rows of boxes [T,4] by linear interpolation over time (the reference
    tracker interpolates box tracks between detections the same way)."""
    boxes = np.asarray(boxes, dtype=np.float64).copy()
    ok = ~np.isnan(boxes).any(1)
    if not ok.any():
        raise ValueError("no face box in any frame")
    t = np.arange(len(boxes))
    for j in range(4):
        boxes[:, j] = np.interp(t, t[ok], boxes[ok, j])
    return boxes


def crop_faces(frames: np.ndarray, boxes: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """frames uint8 [T,H,W,3], boxes [T,4] xyxy pixels (no NaN) -> crops uint8 [T,size,size,3]."""
    boxes = np.asarray(boxes, dtype=np.float64)
    s = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) / 2
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    k = min(MEDIAN_KERNEL, len(boxes) if len(boxes) % 2 else len(boxes) - 1)
    if k >= 3:  # smooth the track like the reference; shorter tracks stay as they are
        s, cx, cy = medfilt(s, k), medfilt(cx, k), medfilt(cy, k)
    out = np.empty((len(frames), size, size, 3), dtype=np.uint8)
    for t, img in enumerate(frames):
        bs = s[t]
        bsi = int(bs * (1 + 2 * CROP_SCALE))
        pad = np.pad(img, ((bsi, bsi), (bsi, bsi), (0, 0)), "constant", constant_values=PAD_VALUE)
        my, mx = cy[t] + bsi, cx[t] + bsi
        face = pad[int(my - bs): int(my + bs * (1 + 2 * CROP_SCALE)),
                   int(mx - bs * (1 + CROP_SCALE)): int(mx + bs * (1 + CROP_SCALE))]
        out[t] = cv2.resize(face, (size, size))
    return out
