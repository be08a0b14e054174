"""Deep3DFaceRecon's 5-landmark face alignment (``util/preprocess.py align_img``), the input step of E-FID.

sicxu/Deep3DFaceRecon_pytorch@9167c71 aligns every image before ``ReconNetWrapper`` (Deng et al. 2019,
section 3; metric_protocols.md section 5):

1. five points from 68 landmarks (``extract_5p``): the two eye centres (means of iBUG 36/39 and 42/45),
   the nose tip (30) and the mouth corners (48, 54), in that order, in image coordinates with the y axis
   pointing up (``test.py read_data``: y = H - 1 - row);
2. ``POS``: a least-squares fit of an affine camera ``x = R1 . X + tx, y = R2 . X + ty`` of the standard
   3D face's five points X (:data:`LM3D_STD`, from ``BFM/similarity_Lm3D_all.mat``), giving the scale
   s = (|R1| + |R2|) / 2 and the translation t = (tx, ty);
3. ``resize_n_crop_img``: the image is resized by s' = 102 / s (PIL bicubic, sizes truncated to int) and a
   224 x 224 window is cut so that the fitted face centre lands in the middle; outside the image is black.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from metrics.landmarks import IBUG_NOSE_TIP

TARGET_SIZE = 224
RESCALE_FACTOR = 102.0

#: iBUG-68 rows of ``similarity_Lm3D_all.mat`` that ``load_lm3d`` reads (1-based 31, 37, 40, 43, 46, 49, 55):
#: nose tip, outer/inner corner of one eye, inner/outer corner of the other, the two mouth corners.
_LM3D_ROWS = np.array([
    [0.0032534988, -0.046179324, 0.55244243],
    [-0.43097523, 0.29196575, 0.10403323],
    [-0.19199792, 0.2887558, 0.16352582],
    [0.1878507, 0.28873613, 0.16018015],
    [0.43174705, 0.2907046, 0.10341036],
    [-0.25216928, -0.38133916, 0.22405732],
    [0.2484662, -0.38128236, 0.22235769],
], dtype=np.float32)

#: The standard face's five points (left eye, right eye, nose, left mouth, right mouth), as ``load_lm3d``.
LM3D_STD = np.stack([_LM3D_ROWS[[1, 2]].mean(0), _LM3D_ROWS[[3, 4]].mean(0), _LM3D_ROWS[0], _LM3D_ROWS[5],
                     _LM3D_ROWS[6]]).astype(np.float32)

#: iBUG-68 indices (0-based) of the five points: eye corners averaged per eye, nose tip, mouth corners.
IBUG_EYES = ((36, 39), (42, 45))
IBUG_MOUTH_CORNERS = (48, 54)


def five_points(lm68: np.ndarray) -> np.ndarray:
    """``[68, 2]`` landmarks -> ``[5, 2]``: eye centre, eye centre, nose tip, mouth corner, mouth corner."""
    lm = np.asarray(lm68, dtype=np.float64)
    return np.stack([lm[list(IBUG_EYES[0])].mean(0), lm[list(IBUG_EYES[1])].mean(0), lm[IBUG_NOSE_TIP],
                     lm[IBUG_MOUTH_CORNERS[0]], lm[IBUG_MOUTH_CORNERS[1]]])


def pos_fit(lm5: np.ndarray, lm3d: np.ndarray = LM3D_STD) -> tuple[np.ndarray, float]:
    """Least-squares affine camera of the 3D points onto the 2D points: ``(t [2], s)`` (Deep3DFaceRecon POS)."""
    x3 = np.asarray(lm3d, dtype=np.float64)
    n = len(x3)
    design = np.zeros((2 * n, 8))
    design[0::2, :3], design[0::2, 3] = x3, 1.0  # x rows: R1 . X + tx
    design[1::2, 4:7], design[1::2, 7] = x3, 1.0  # y rows: R2 . X + ty
    k = np.linalg.lstsq(design, np.asarray(lm5, dtype=np.float64).reshape(-1), rcond=None)[0]
    return np.array([k[3], k[7]]), float((np.linalg.norm(k[:3]) + np.linalg.norm(k[4:7])) / 2)


def align_face(image: np.ndarray, lm68_rows: np.ndarray, target_size: int = TARGET_SIZE,
               rescale_factor: float = RESCALE_FACTOR) -> np.ndarray:
    """RGB uint8 ``[H, W, 3]`` and 68 landmarks in pixels ``(x, row)`` -> the aligned ``[224, 224, 3]`` crop."""
    h0, w0 = image.shape[:2]
    lm = np.asarray(lm68_rows, dtype=np.float64).copy()
    lm[:, 1] = h0 - 1 - lm[:, 1]  # Deep3DFaceRecon's landmarks have the y axis pointing up
    t, s = pos_fit(five_points(lm))
    scale = rescale_factor / s
    w, h = int(w0 * scale), int(h0 * scale)  # numpy astype(int32): truncation
    left = int(w / 2 - target_size / 2 + (t[0] - w0 / 2) * scale)
    up = int(h / 2 - target_size / 2 + (h0 / 2 - t[1]) * scale)
    img = Image.fromarray(np.ascontiguousarray(image)).resize((w, h), resample=Image.BICUBIC)
    return np.asarray(img.crop((left, up, left + target_size, up + target_size)))


__all__ = ["LM3D_STD", "RESCALE_FACTOR", "TARGET_SIZE", "align_face", "five_points", "pos_fit"]
