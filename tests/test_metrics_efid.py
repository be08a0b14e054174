"""E-FID: Deep3DFaceRecon checkpoint layout (net_recon, 257 coefficients), exp = coeffs[80:144]."""
import numpy as np
import pytest
import torch

from metrics.efid import EFIDScorer, ReconNetWrapper, expression_coeffs, load_deep3d_recon


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "epoch_20.pth"
    return path, _checkpoint(path)


def _checkpoint(path):
    g = torch.Generator().manual_seed(0)
    sd = {k: (torch.randn(v.shape, generator=g) * 0.02 if v.is_floating_point() else v)
          for k, v in ReconNetWrapper("resnet50").state_dict().items()}
    for k in sd:
        if k.endswith("running_var"):
            sd[k] = sd[k].abs() + 1
    torch.save({"net_recon": sd, "epoch": 20}, path)
    return sd


def test_checkpoint_keys_and_expression_slice(ckpt):
    path, sd = ckpt
    assert "backbone.layer4.2.conv3.weight" in sd and not any(k.startswith("backbone.fc") for k in sd)
    heads = [sd[f"final_layers.{i}.weight"].shape[0] for i in range(7)]
    assert heads == [80, 64, 80, 3, 27, 2, 1] and sum(heads) == 257
    model = load_deep3d_recon(str(path))
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        coeffs = model(x)
        exp_head = model.final_layers[1](model.backbone(x)[:, :, None, None]).flatten(1)
    assert coeffs.shape == (2, 257)
    torch.testing.assert_close(expression_coeffs(coeffs), exp_head)
    s = EFIDScorer({"deep3d_recon": str(path)}, standin=False, max_frames=2, size=64, landmarks="none")
    assert s.features(np.zeros((5, 48, 48, 3), np.uint8)).shape == (2, 64)


def test_key_mismatch_fails(ckpt, tmp_path):
    sd = dict(ckpt[1])
    sd["final_layers.1.w"] = sd.pop("final_layers.1.weight")
    torch.save({"net_recon": sd}, tmp_path / "bad.pth")
    with pytest.raises(RuntimeError, match="ReconNetWrapper"):
        load_deep3d_recon(str(tmp_path / "bad.pth"))


def test_standin_label():
    s = EFIDScorer(max_frames=3, landmarks="none")
    assert "no 5-point align_img" in s.deviations[0]
    assert s.backbone == "standin:deep3d-reconnet-resnet18-112px:seed0"
    assert s.features(np.zeros((10, 32, 32, 3), np.uint8)).shape == (3, 64)


def _face_points(scale: float, tx: float, ty_up: float, h: int) -> np.ndarray:
    """68 pixel landmarks (x, row) whose five alignment points are the standard 3D face seen by an
    orthographic camera of scale ``scale`` and translation (tx, ty) in Deep3DFaceRecon's y-up frame."""
    from metrics.face_align import LM3D_STD

    pts = np.zeros((68, 2))
    up = LM3D_STD[:, :2] * scale + [tx, ty_up]  # eye, eye, nose, mouth, mouth (y up)
    for i, j, p in ((36, 39, up[0]), (42, 45, up[1])):  # both corners of an eye at its centre
        pts[i] = pts[j] = p
    pts[30], pts[48], pts[54] = up[2], up[3], up[4]
    pts[:, 1] = h - 1 - pts[:, 1]  # back to image rows
    return pts


def test_align_img_geometry_hand_derived():
    # POS recovers the camera exactly (R1 = scale * e_x, R2 = scale * e_y), the image is resized by
    # 102 / scale, and the standard face lands at 102 * X + 112 (columns), 112 - 102 * Y (rows), to within
    # the int truncations of the size and offset (Deep3DFaceRecon resize_n_crop_img)
    from metrics.face_align import LM3D_STD, align_face, five_points, pos_fit

    h, w, scale, tx, ty = 300, 260, 150.0, 120.0, 170.0
    pts = _face_points(scale, tx, ty, h)
    up = pts.copy()
    up[:, 1] = h - 1 - up[:, 1]
    t, s = pos_fit(five_points(up))
    assert s == pytest.approx(scale, rel=1e-5) and t == pytest.approx([tx, ty], abs=1e-3)
    img = np.zeros((h, w, 3), np.uint8)
    nose = np.round(pts[30]).astype(int)
    img[nose[1] - 2:nose[1] + 3, nose[0] - 2:nose[0] + 3] = 255  # a 5x5 white dot on the nose tip
    out = align_face(img, pts)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    rows, cols = np.nonzero(out[..., 0] > 128)
    expect_col, expect_row = 102 * LM3D_STD[2, 0] + 112, 112 - 102 * LM3D_STD[2, 1]
    assert abs(cols.mean() - expect_col) < 2.5 and abs(rows.mean() - expect_row) < 2.5
    assert len(rows) == pytest.approx(25 * (102 / scale) ** 2, rel=0.5)  # the dot shrank by 102 / scale


def test_efid_aligns_with_a_pluggable_landmark_backend():
    from metrics.landmarks import FaceTrack

    h, w = 200, 180
    pts = _face_points(90.0, 90.0, 110.0, h)
    seen = []

    def backend(frames):  # any landmark source: frames [T,H,W,3] -> FaceTrack with iBUG-68 points in [0, 1]
        seen.append(len(frames))
        found = np.array([True, False, True])
        points = np.repeat((pts / [w, h])[None], 3, 0)
        points[1] = np.nan
        return FaceTrack(points=points, found=found, boxes=np.full((3, 4), np.nan))

    frames = np.random.default_rng(0).integers(0, 256, (3, h, w, 3), dtype=np.uint8)
    s = EFIDScorer(landmarks=backend)
    f = s.features(frames)
    assert seen == [3] and f.shape == (2, 64)  # the frame without a face is left out
    assert s.deviations == () and "align_img with 5 points from backend" in s.protocol
    x = s._inputs(frames)
    assert x.shape == (2, 112, 112, 3)  # the stand-in's 112 px input, after the 224 alignment
    with pytest.raises(Exception, match="no face in any"):
        EFIDScorer(landmarks=lambda fr: FaceTrack(np.full((len(fr), 68, 2), np.nan), np.zeros(len(fr), bool),
                                                  np.full((len(fr), 4), np.nan))).features(frames)
