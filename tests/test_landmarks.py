"""Landmark backends (MediaPipe, DWPose ONNX), SyncNet face crops, the motion scorer on frames."""
import io
import warnings

import cv2
import numpy as np
import pytest
import torch
from skimage.data import astronaut

from core.video_io import Video
from metrics.landmarks import IBUG_NOSE_TIP, VideoSkipped
from metrics.landmarks.dwpose import DWPose, bbox_xyxy2cs, fix_aspect, letterbox, simcc_decode, warp_matrix
from metrics.landmarks.face_crop import crop_faces, interpolate_boxes
from metrics.landmarks.mediapipe_backend import MediaPipeFaceMesh, detect_face_boxes
from metrics.motion import MotionScorer

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- MediaPipe
def test_mediapipe_finds_astronaut_face_and_nothing_on_blank():
    img = astronaut()
    frames = np.stack([img, np.zeros_like(img)])
    track = MediaPipeFaceMesh(static_image_mode=True)(frames)
    assert track.found.tolist() == [True, False]
    assert np.isnan(track.points[1]).all()
    box = detect_face_boxes(frames[:1])[0]
    nose = track.points[0, IBUG_NOSE_TIP] * [img.shape[1], img.shape[0]]
    assert box[0] < nose[0] < box[2] and box[1] < nose[1] < box[3]
    assert ((track.points[0] >= 0) & (track.points[0] <= 1)).all()


# ----------------------------------------------------------------------------- face crops
def test_crop_geometry_inside_and_padding():
    img = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    frames = np.repeat(img[None], 3, 0)
    box = np.array([[80.0, 80.0, 120.0, 120.0]] * 3)
    # s = 20 -> rows [cy - s, cy + 1.8 s) = [80, 136), cols [cx - 1.4 s, cx + 1.4 s) = [72, 128)
    expected = cv2.resize(img[80:136, 72:128], (224, 224))
    np.testing.assert_array_equal(crop_faces(frames, box)[0], expected)
    edge = crop_faces(frames, np.array([[0.0, 0.0, 40.0, 40.0]] * 3))
    assert (edge[0, 0, 0] == 110).all()  # outside the frame: pad value 110
    filled = interpolate_boxes(np.array([[0, 0, 10, 10], [np.nan] * 4, [10, 10, 20, 20]], float))
    np.testing.assert_allclose(filled[1], [5, 5, 15, 15])


# ----------------------------------------------------------------------------- DWPose
class _Const(torch.nn.Module):
    """ONNX graph whose outputs are fixed tensors (input kept in the graph)."""

    def __init__(self, *outs):
        super().__init__()
        for i, o in enumerate(outs):
            self.register_buffer(f"o{i}", o)
        self.n = len(outs)

    def forward(self, x):
        z = x.mean() * 0
        return tuple(getattr(self, f"o{i}") + z for i in range(self.n))


def _export(module, shape, in_name, out_names, path):
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, torch.zeros(shape), buf, input_names=[in_name],
                          output_names=out_names, dynamo=False)
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture(scope="module")
def tiny_dwpose(tmp_path_factory):
    """yolox_l.onnx / dw-ll_ucoco_384.onnx stand-ins with the official input/output names
    and shapes and known outputs."""
    tmp_path = tmp_path_factory.mktemp("dwpose")
    # detector: one person at stride-8 cell (40, 30), 100 x 160 letterbox pixels
    det = torch.zeros(1, 8400, 85)
    idx = 30 * 80 + 40
    det[0, idx, :4] = torch.tensor([0.5, 0.5, np.log(100 / 8), np.log(160 / 8)])
    det[0, idx, 4], det[0, idx, 5] = 0.9, 0.9
    det[0, idx + 1, :6] = det[0, idx, :6]  # duplicate box, removed by NMS
    det[0, idx + 1, 4] = 0.8
    # pose: every point peaks at (x 300, y 400); the nose tip (id 53) at (x 100, y 600)
    sx, sy = torch.zeros(1, 133, 576), torch.zeros(1, 133, 768)
    sx[0, :, 300], sy[0, :, 400] = 0.9, 0.9
    sx[0, 53], sy[0, 53] = 0, 0
    sx[0, 53, 100], sy[0, 53, 600] = 0.7, 0.8
    dp = _export(_Const(det), (1, 3, 640, 640), "images", ["output"], tmp_path / "yolox_l.onnx")
    pp = _export(_Const(sx, sy), (1, 3, 384, 288), "input", ["simcc_x", "simcc_y"], tmp_path / "dw-ll_ucoco_384.onnx")
    return dp, pp


def test_dwpose_pipeline_on_tiny_onnx(tiny_dwpose):
    dp, pp = tiny_dwpose
    model = DWPose(dp, pp)
    assert model.in_wh == (288, 384)

    H, W = 320, 480
    img = np.zeros((H, W, 3), np.uint8)
    r = 640 / 480
    boxes, scores = model.detect(img)
    assert len(boxes) == 1 and scores[0] == pytest.approx(0.81)
    np.testing.assert_allclose(boxes[0], np.array([324 - 50, 244 - 80, 324 + 50, 244 + 80]) / r, rtol=1e-5)

    kp, sc = model.keypoints(img, boxes[0])
    c, s = bbox_xyxy2cs(boxes[0])
    s = fix_aspect(s, 288 / 384)
    assert s[0] / s[1] == pytest.approx(0.75)
    nose = np.array([100 / 2, 600 / 2]) / [288, 384] * s + c - s / 2  # SimCC / 2 -> input px -> image px
    np.testing.assert_allclose(kp[53], nose, rtol=1e-6)
    assert sc[53] == pytest.approx(0.7)

    track = model(np.stack([img, img]))
    assert track.found.all()
    np.testing.assert_allclose(track.points[0, IBUG_NOSE_TIP], nose / [W, H], rtol=1e-6)


def test_simcc_negative_score_gives_minus_one_and_warp_centre():
    sx, sy = -np.ones((1, 2, 8)), -np.ones((1, 2, 8))
    kp, vals = simcc_decode(sx, sy, center=np.array([0.0, 0.0]), scale=np.array([4.0, 4.0]), in_wh=(4, 4))
    np.testing.assert_allclose(kp[0, 0], np.array([-0.5, -0.5]) / 4 * 4 - 2)  # loc -1 before mapping
    m = warp_matrix(np.array([50.0, 60.0]), np.array([30.0, 40.0]), (288, 384))
    assert m @ [50, 60, 1] == pytest.approx([144, 192])
    x, ratio = letterbox(np.full((100, 50, 3), 7, np.uint8))
    assert ratio == pytest.approx(6.4) and x.shape == (3, 640, 640)
    assert x[0, 0, 0] == 7 and x[0, 0, 639] == 114  # top-left placement, pad 114


def test_dwpose_missing_files_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="dwpose_det"):
        DWPose(tmp_path / "nope.onnx", tmp_path / "nope2.onnx")


def test_motion_scorer_uses_dwpose_files_from_weights_cfg(tiny_dwpose):
    dp, pp = tiny_dwpose
    sc = MotionScorer(weights_cfg={"dwpose_det": str(dp), "dwpose_pose": str(pp)})  # auto -> DWPose
    assert str(dp) in sc.backbone and str(pp) in sc.backbone
    still = Video(frames=np.zeros((3, 320, 480, 3), np.uint8), fps=25.0)
    r = sc.score_video(still, still)  # fixed outputs: no motion at all
    assert r == {"Glo": 0.0, "Exp": 0.0, "DGlo": 0.0, "DExp": 0.0}


# ----------------------------------------------------------------------------- motion scorer
def _face_video(T, dx_per_frame, size=128):
    img = astronaut()
    frames = [cv2.resize(img[0:256, 100 + dx_per_frame * t:356 + dx_per_frame * t], (size, size)) for t in range(T)]
    return Video(frames=np.stack(frames), fps=25.0)


def test_motion_scorer_on_frames_and_statuses():
    sc = MotionScorer(weights_cfg={}, backend="mediapipe")
    assert sc.backbone.startswith("mediapipe") and sc.kind == "per_video"
    moving, still = _face_video(6, 6), _face_video(6, 0)
    r = sc.score_video(moving, still)
    assert set(r) == {"Glo", "Exp", "DGlo", "DExp"}
    s = sc.score_video(still)
    assert r["Glo"] > 10 * max(s["Glo"], 1e-6)  # a panning face moves the nose, a still one barely
    assert r["DGlo"] == pytest.approx(abs(r["Glo"] - s["Glo"]), rel=1e-6, abs=1e-9)
    with pytest.raises(VideoSkipped, match="6 frames, gt has 5"):
        sc.score_video(moving, _face_video(5, 0))
    with pytest.raises(VideoSkipped, match="1 frame"):
        sc.score_video(_face_video(1, 0))
    blank = Video(frames=np.zeros((4, 64, 64, 3), np.uint8), fps=25.0)
    with pytest.raises(VideoSkipped, match="face found in 0/4"):
        sc.score_video(blank)


def test_partial_face_videos_are_scored_not_skipped():
    from metrics.sync import SyncScorer

    video = _face_video(12, 3)
    video.frames[[2, 7]] = 0  # two frames without a face
    track = MediaPipeFaceMesh()(video.frames)
    assert track.found.tolist() == [i not in (2, 7) for i in range(12)]
    r = MotionScorer(weights_cfg={}, backend="mediapipe").score_video(video)
    assert np.isfinite(r["Glo"]) and np.isfinite(r["Exp"]) and r["Glo"] > 0
    video.audio = 0.1 * np.random.RandomState(0).randn(12 * 640).astype(np.float32)  # silent audio is skipped
    s = SyncScorer(weights_cfg={}).score_video(video)  # boxes of the two frames interpolated
    assert np.isfinite(s["Sync-C"]) and np.isfinite(s["Sync-D"])
