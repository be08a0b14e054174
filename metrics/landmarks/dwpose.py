"""DWPose whole-body keypoints from the official ONNX files (metric_protocols.md section 6).

The Loopy appendix B.1 detects the Glo/Exp landmarks with DWPose (Yang et al., 2023).
This runs the reference ONNX pair with onnxruntime from local files:
``yolox_l.onnx`` (person detector, letterbox 640, YOLOX grid decode, NMS) and
``dw-ll_ucoco_384.onnx`` (RTMPose-l, input 1x3x384x288, SimCC outputs with split
ratio 2). Of the 133 COCO-WholeBody points, ids 23..90 are the 68 iBUG face points.
Images are passed as given (RGB), as the reference annotator does.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from metrics.landmarks import WHOLEBODY_FACE_START, FaceTrack

MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)
DET_SIZE = 640
SIMCC_SPLIT_RATIO = 2.0
BBOX_PADDING = 1.25


# ----------------------------------------------------------------------------- detector
def letterbox(img: np.ndarray, size: int = DET_SIZE) -> tuple[np.ndarray, float]:
    """Top-left letterbox with pad 114, no normalisation. img [H,W,3] -> ([3,size,size] f32, ratio)."""
    h, w = img.shape[:2]
    r = min(size / h, size / w)
    out = np.full((size, size, 3), 114, dtype=np.uint8)
    nh, nw = int(h * r), int(w * r)
    out[:nh, :nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return out.transpose(2, 0, 1).astype(np.float32), r


def yolox_decode(pred: np.ndarray, size: int = DET_SIZE, strides=(8, 16, 32)) -> np.ndarray:
    """YOLOX grid decode. pred [N, 4+1+C] raw (cx, cy, log w, log h, obj, cls...) -> same
    shape with boxes in letterbox pixels (cx, cy, w, h)."""
    grids, expanded = [], []
    for s in strides:
        n = size // s
        xv, yv = np.meshgrid(np.arange(n), np.arange(n))
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        expanded.append(np.full((n * n, 1), s))
    grid, stride = np.concatenate(grids), np.concatenate(expanded)
    if len(pred) != len(grid):
        raise ValueError(f"detector output has {len(pred)} anchors, expected {len(grid)} for {size}x{size}")
    out = pred.astype(np.float64).copy()
    out[:, :2] = (out[:, :2] + grid) * stride
    out[:, 2:4] = np.exp(out[:, 2:4]) * stride
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    """Greedy IoU NMS on xyxy boxes; returns kept indices, best first."""
    order, keep = scores.argsort()[::-1], []
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    while order.size:
        i = order[0]
        keep.append(int(i))
        xx1 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx2 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.maximum(0, xx2 - xx1 + 1) * np.maximum(0, yy2 - yy1 + 1)
        iou = inter / (area[i] + area[order[1:]] - inter)
        order = order[1:][iou <= thr]
    return keep


def person_boxes(decoded: np.ndarray, ratio: float, nms_thr=0.45, score_thr=0.1, keep_thr=0.3):
    """Scores = obj x cls; class-wise NMS; keep class 0 (person) above ``keep_thr``.
    Returns (boxes xyxy in original pixels [M,4], scores [M]) sorted by score."""
    cxcywh, scores = decoded[:, :4], decoded[:, 4:5] * decoded[:, 5:]
    xyxy = np.stack([cxcywh[:, 0] - cxcywh[:, 2] / 2, cxcywh[:, 1] - cxcywh[:, 3] / 2,
                     cxcywh[:, 0] + cxcywh[:, 2] / 2, cxcywh[:, 1] + cxcywh[:, 3] / 2], 1) / ratio
    cls = scores.argmax(1)
    best = scores[np.arange(len(scores)), cls]
    sel = (cls == 0) & (best > score_thr)
    b, s = xyxy[sel], best[sel]
    keep = nms(b, s, nms_thr) if len(b) else []
    b, s = b[keep], s[keep]
    ok = s > keep_thr
    return b[ok], s[ok]


# ----------------------------------------------------------------------------- pose
def bbox_xyxy2cs(bbox: np.ndarray, padding: float = BBOX_PADDING) -> tuple[np.ndarray, np.ndarray]:
    """xyxy box -> (centre [2], scale [2] = padded box w, h)."""
    x0, y0, x1, y1 = bbox
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2]), np.array([x1 - x0, y1 - y0]) * padding


def fix_aspect(scale: np.ndarray, aspect: float) -> np.ndarray:
    """Grow the box so that w/h equals the model input aspect (w/h)."""
    w, h = scale
    return np.array([w, w / aspect]) if w > h * aspect else np.array([h * aspect, h])


def warp_matrix(center: np.ndarray, scale: np.ndarray, out_wh: tuple[int, int]) -> np.ndarray:
    """2x3 affine (rotation 0) mapping the box (centre, scale) onto the output image."""
    dst_w, dst_h = out_wh
    src_dir, dst_dir = np.array([0.0, -0.5 * scale[0]]), np.array([0.0, -0.5 * dst_w])
    src = np.stack([center, center + src_dir, center + src_dir + [src_dir[1], -src_dir[0]]])
    c = np.array([dst_w * 0.5, dst_h * 0.5])
    dst = np.stack([c, c + dst_dir, c + dst_dir + [dst_dir[1], -dst_dir[0]]])
    return cv2.getAffineTransform(src.astype(np.float32), dst.astype(np.float32))


def pose_preprocess(img: np.ndarray, bbox: np.ndarray, in_wh: tuple[int, int]):
    """Crop one person for RTMPose. -> (input [1,3,h,w] f32, centre, aspect-fixed scale)."""
    center, scale = bbox_xyxy2cs(bbox)
    scale = fix_aspect(scale, in_wh[0] / in_wh[1])
    crop = cv2.warpAffine(img, warp_matrix(center, scale, in_wh), in_wh, flags=cv2.INTER_LINEAR)
    x = (crop.astype(np.float32) - MEAN) / STD
    return x.transpose(2, 0, 1)[None], center, scale


def simcc_decode(simcc_x: np.ndarray, simcc_y: np.ndarray, center, scale, in_wh, split=SIMCC_SPLIT_RATIO):
    """SimCC argmax decode. simcc_x [N,K,W*split], simcc_y [N,K,H*split] ->
    (keypoints [N,K,2] in original pixels, scores [N,K]); score = min of the two maxima,
    location -1 (before the mapping back) where score <= 0."""
    locs = np.stack([simcc_x.argmax(-1), simcc_y.argmax(-1)], -1).astype(np.float64)
    vals = np.minimum(simcc_x.max(-1), simcc_y.max(-1))
    locs[vals <= 0] = -1
    kp = locs / split
    kp = kp / np.asarray(in_wh, dtype=np.float64) * np.asarray(scale) + np.asarray(center) - np.asarray(scale) / 2
    return kp, vals


class DWPose:
    """DWPose ONNX pair -> iBUG-68 :class:`FaceTrack` (face ids 23..90 of 133)."""

    name = "dwpose"

    def __init__(self, det_path: str | Path, pose_path: str | Path, providers=("CPUExecutionProvider",)):
        import onnxruntime as ort

        for key, p in (("dwpose_det", det_path), ("dwpose_pose", pose_path)):
            if not Path(p).is_file():
                raise FileNotFoundError(
                    f"DWPose weight file {p} (weights key {key}) not found; put yolox_l.onnx / "
                    "dw-ll_ucoco_384.onnx there or point the weights config / env variable at them"
                )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.det = ort.InferenceSession(str(det_path), opts, providers=list(providers))
        self.pose = ort.InferenceSession(str(pose_path), opts, providers=list(providers))
        h, w = self.pose.get_inputs()[0].shape[2:]  # read from the session, as the reference does
        self.in_wh = (int(w), int(h))
        self.label = f"{det_path}+{pose_path}"  # official files, as the weights table names them

    @classmethod
    def from_weights(cls, weights_cfg: dict | None = None) -> DWPose:
        """Both files through ``core/weights.py`` (raises MissingWeightsError naming them)."""
        from core.weights import resolve

        return cls(resolve("dwpose_det", weights_cfg), resolve("dwpose_pose", weights_cfg))

    def detect(self, img: np.ndarray):
        """img [H,W,3] -> person boxes xyxy [M,4] and scores [M]."""
        x, r = letterbox(img)
        out = self.det.run(None, {self.det.get_inputs()[0].name: x[None]})[0][0]
        return person_boxes(yolox_decode(out), r)

    def keypoints(self, img: np.ndarray, bbox: np.ndarray):
        """133 whole-body keypoints of one person box -> ([133,2] pixels, scores [133])."""
        x, c, s = pose_preprocess(img, bbox, self.in_wh)
        names = [o.name for o in self.pose.get_outputs()]
        sx, sy = self.pose.run(names, {self.pose.get_inputs()[0].name: x})[:2]
        kp, sc = simcc_decode(sx, sy, c, s, self.in_wh)
        return kp[0], sc[0]

    def __call__(self, frames: np.ndarray, min_face_score: float = 0.3) -> FaceTrack:
        """frames uint8 [T,H,W,3] -> FaceTrack; the best-scoring person per frame; a frame
        counts as face-found when its mean face keypoint score exceeds ``min_face_score``."""
        frames = np.asarray(frames)
        T, h, w = frames.shape[:3]
        pts, found, boxes = np.full((T, 68, 2), np.nan), np.zeros(T, bool), np.full((T, 4), np.nan)
        for t, img in enumerate(frames):
            b, _ = self.detect(img)
            if not len(b):
                continue
            kp, sc = self.keypoints(img, b[0])
            face, fs = kp[WHOLEBODY_FACE_START:WHOLEBODY_FACE_START + 68], sc[WHOLEBODY_FACE_START:WHOLEBODY_FACE_START + 68]
            if fs.mean() <= min_face_score:
                continue
            pts[t] = face / np.array([w, h])
            boxes[t] = [*face.min(0), *face.max(0)]
            found[t] = True
        return FaceTrack(points=pts, found=found, boxes=boxes, backend=self.label)
