"""Faces for SynthTalk: real photos shipped with scikit-image and procedurally drawn heads.

Each identity is a canonical image plus a face geometry, from which the 68 face
keypoints are built in the iBUG-300W layout (the layout of DWPose's face points):

====== =====================================
0-16   jaw, image left to right through the chin
17-26  brows (17-21 image-left brow, 22-26 image-right brow)
27-30  nose bridge, 30 = nose tip
31-35  nose base
36-41  image-left eye (36 outer corner, 37-38 upper lid, 39 inner corner, 40-41 lower lid)
42-47  image-right eye (42 inner corner, 43-44 upper lid, 45 outer corner, 46-47 lower lid)
       (both eyes run left to right in the image)
48-59  outer lips (48 left corner, 49-53 upper, 54 right corner, 55-59 lower)
60-67  inner lips (60 left corner, 61-63 upper, 64 right corner, 65-67 lower)
====== =====================================

A frame is rendered by opening the mouth (dark inner-mouth polygon between the inner
lips), closing the eyelids (skin over the eye up to the lid line), then one warp:
a pseudo-3D parallax (points on the face ellipsoid shift with yaw/pitch by their
depth, the nose most) followed by the similarity transform of roll, scale and
translation. The keypoints go through the same forward map, so they are exact up to
the interpolation of the image warp.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

NUM_KEYPOINTS = 68
NOSE_TIP = 30
UPPER_FACE = list(range(17, 48)) + [48, 54, 60, 64, 49, 53]  # brows, nose, eyes, mouth corners (37 points)
MAX_MOUTH_OPEN = 0.09   # inner-lip gap at full opening, fraction of the canonical frame
PARALLAX = 0.18         # shift of the nose tip per unit sin(yaw), fraction of the frame


@dataclass
class Geometry:
    """Canonical face geometry, every coordinate a fraction of the square frame (x right, y down)."""

    eye_left: tuple[float, float]    # image-left eye centre
    eye_right: tuple[float, float]
    eye_w: float
    eye_h: float
    brow_gap: float
    nose_tip: tuple[float, float]
    nose_w: float
    mouth: tuple[float, float]       # centre of the closed mouth
    mouth_w: float
    lip_h: float
    chin: tuple[float, float]
    jaw_w: float
    jaw_top: float
    depth_radius: tuple[float, float] = field(default=(0.25, 0.32))


def _arc(c, rx, ry, a0, a1, n):
    a = np.linspace(a0, a1, n)
    return np.stack([c[0] + rx * np.cos(a), c[1] + ry * np.sin(a)], -1)


def keypoints(g: Geometry, mouth_open: float = 0.0, blink: float = 0.0) -> np.ndarray:
    """The 68 keypoints ``[68, 2]`` in [0, 1] for a mouth opening and eyelid closure in [0, 1]."""
    k = np.zeros((NUM_KEYPOINTS, 2))
    cx = g.chin[0]
    k[0:17] = _arc((cx, g.jaw_top), g.jaw_w / 2, g.chin[1] - g.jaw_top, np.pi, 0.0, 17)
    for j, e in ((17, g.eye_left), (22, g.eye_right)):
        k[j:j + 5] = _arc((e[0], e[1] - g.brow_gap + 0.03), g.eye_w * 0.75, 0.03, np.pi * 1.15, np.pi * 1.85, 5)
    top = ((g.eye_left[0] + g.eye_right[0]) / 2, (g.eye_left[1] + g.eye_right[1]) / 2)
    k[27:31] = np.linspace(top, g.nose_tip, 4)
    k[31:36] = np.stack([np.linspace(g.nose_tip[0] - g.nose_w / 2, g.nose_tip[0] + g.nose_w / 2, 5),
                         g.nose_tip[1] + 0.02 + 0.01 * (1 - np.abs(np.linspace(-1, 1, 5)))], -1)
    for j, e in ((36, g.eye_left), (42, g.eye_right)):
        # both eyes run left to right in the image: 36 outer -> 39 inner, 42 inner -> 45 outer
        ex, ey = e
        w, h = g.eye_w / 2, g.eye_h / 2
        lid = h * (1 - 2 * blink)  # upper lid comes down to the lower lid at blink = 1
        xs = ex + np.array([-w, -w / 3, w / 3, w, w / 3, -w / 3])
        ys = ey + np.array([0, -lid, -lid, 0, h, h])
        k[j:j + 6] = np.stack([xs, ys], -1)
    mx, my = g.mouth
    mw, gap = g.mouth_w / 2, MAX_MOUTH_OPEN * mouth_open
    u = np.linspace(-1, 1, 7)
    k[48:55] = np.stack([mx + mw * u, my - g.lip_h * (1 - u ** 2) - 0.002 * np.cos(3 * u)], -1)
    k[55:60] = np.stack([mx + mw * u[5:0:-1], my + gap + g.lip_h * (1 - u[5:0:-1] ** 2)], -1)
    ui = np.array([-1, -0.5, 0, 0.5, 1]) * 0.85
    k[60:65] = np.stack([mx + mw * ui, my + 0 * ui], -1)
    k[65:68] = np.stack([mx + mw * ui[3:0:-1], my + gap * (1 - ui[3:0:-1] ** 2) ** 0.5], -1)
    return k.astype(np.float32)


# ---------------------------------------------------------------------------- identities


@dataclass
class Identity:
    """A renderable face: canonical RGB image ``[S, S, 3]`` uint8, geometry and colours."""

    name: str
    kind: str  # "human", "animal" or "drawn"
    image: np.ndarray
    geometry: Geometry
    skin: tuple[int, int, int]
    lip: tuple[int, int, int]
    inner: tuple[int, int, int] = (45, 18, 22)


# Facial points of the bundled photos, measured once with MediaPipe Face Mesh on
# skimage.data.astronaut() (eyes, nose tip, mouth, chin, jaw) and by eye for
# skimage.data.chelsea(); given in the crop below as fractions of its side.
_ASTRONAUT_CROP = (114, 20, 220)  # x0, y0, side in the 512 x 512 photo
_ASTRONAUT = Geometry(eye_left=(0.410, 0.374), eye_right=(0.602, 0.385), eye_w=0.085, eye_h=0.030, brow_gap=0.085,
                      nose_tip=(0.497, 0.500), nose_w=0.09, mouth=(0.497, 0.560), mouth_w=0.196, lip_h=0.012,
                      chin=(0.488, 0.716), jaw_w=0.413, jaw_top=0.42, depth_radius=(0.24, 0.3))
_CHELSEA_CROP = (95, 0, 300)
_CHELSEA = Geometry(eye_left=(0.250, 0.383), eye_right=(0.750, 0.450), eye_w=0.20, eye_h=0.14, brow_gap=0.13,
                    nose_tip=(0.567, 0.800), nose_w=0.12, mouth=(0.557, 0.880), mouth_w=0.12, lip_h=0.008,
                    chin=(0.550, 0.960), jaw_w=0.95, jaw_top=0.45, depth_radius=(0.45, 0.5))

SKIN_TONES = [(255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 58, 36)]


def _photo(name: str, size: int) -> Identity:
    import skimage.data

    if name == "astronaut":
        img, (x0, y0, s), g, kind = skimage.data.astronaut(), _ASTRONAUT_CROP, _ASTRONAUT, "human"
    else:
        img, (x0, y0, s), g, kind = skimage.data.chelsea(), _CHELSEA_CROP, _CHELSEA, "animal"
    crop = cv2.resize(np.ascontiguousarray(img[y0:y0 + s, x0:x0 + s, :3]), (size, size), interpolation=cv2.INTER_AREA)

    def colour(p):  # mean colour of a small patch at a normalised point
        x, y = int(p[0] * size), int(p[1] * size)
        r = max(1, size // 64)
        return tuple(int(c) for c in crop[y - r:y + r + 1, x - r:x + r + 1].reshape(-1, 3).mean(0))

    skin = colour((g.eye_left[0], g.eye_left[1] + g.eye_h * 1.6))
    lip = colour((g.mouth[0], g.mouth[1] + g.lip_h * 0.6))
    return Identity(name, kind, crop, g, skin, lip)


def drawn_face(index: int, size: int, rng: np.random.Generator) -> Identity:
    """A procedurally drawn head (ellipse head, hair, eyes, brows, nose, lips) of a random skin tone."""
    g = Geometry(eye_left=(0.5 - rng.uniform(0.09, 0.12), rng.uniform(0.40, 0.44)), eye_right=(0, 0),
                 eye_w=rng.uniform(0.07, 0.09), eye_h=rng.uniform(0.03, 0.04), brow_gap=rng.uniform(0.06, 0.08),
                 nose_tip=(0.5, rng.uniform(0.53, 0.57)), nose_w=rng.uniform(0.07, 0.1), mouth=(0.5, 0.0),
                 mouth_w=rng.uniform(0.13, 0.19), lip_h=rng.uniform(0.01, 0.016), chin=(0.5, rng.uniform(0.78, 0.82)),
                 jaw_w=rng.uniform(0.40, 0.48), jaw_top=0.45)
    g.eye_right = (1.0 - g.eye_left[0], g.eye_left[1])
    g.mouth = (0.5, g.nose_tip[1] + rng.uniform(0.09, 0.11))
    g.depth_radius = (g.jaw_w / 2 + 0.02, 0.3)
    skin = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
    lip = tuple(int(c * 0.75) for c in (skin[0], skin[1] * 0.7, skin[2] * 0.7))
    bg = tuple(int(c) for c in rng.integers(60, 200, 3))
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = bg
    img = (img * np.linspace(0.8, 1.1, size)[:, None, None]).clip(0, 255).astype(np.uint8)  # soft vertical light
    S = size

    def P(p):
        return int(round(p[0] * S)), int(round(p[1] * S))

    hair = tuple(int(c) for c in rng.integers(10, 120, 3))
    cv2.ellipse(img, P((0.5, 1.05)), (int(0.42 * S), int(0.22 * S)), 0, 0, 360, tuple(int(c) for c in rng.integers(30, 220, 3)), -1, cv2.LINE_AA)
    cv2.ellipse(img, P((0.5, 0.45)), (int((g.jaw_w / 2 + 0.05) * S), int(0.36 * S)), 0, 0, 360, hair, -1, cv2.LINE_AA)
    cv2.ellipse(img, P((0.5, 0.5)), (int((g.jaw_w / 2 + 0.02) * S), int((g.chin[1] - 0.5) * S)), 0, 0, 360, skin, -1, cv2.LINE_AA)
    k = keypoints(g)
    px = (k * S).astype(np.int32)
    brow = tuple(int(c * 0.6) for c in hair)
    for a, b in ((17, 22), (22, 27)):
        cv2.polylines(img, [px[a:b]], False, brow, max(1, S // 60), cv2.LINE_AA)
    iris = tuple(int(c) for c in rng.integers(30, 140, 3))
    for e in (g.eye_left, g.eye_right):
        cv2.ellipse(img, P(e), (int(g.eye_w / 2 * S), int(g.eye_h / 2 * S)), 0, 0, 360, (245, 245, 240), -1, cv2.LINE_AA)
        cv2.circle(img, P(e), max(1, int(g.eye_h * 0.45 * S)), iris, -1, cv2.LINE_AA)
        cv2.circle(img, P(e), max(1, int(g.eye_h * 0.2 * S)), (10, 10, 10), -1, cv2.LINE_AA)
    shade = tuple(int(c * 0.7) for c in skin)
    cv2.polylines(img, [px[27:31]], False, shade, max(1, S // 90), cv2.LINE_AA)
    cv2.polylines(img, [px[31:36]], False, shade, max(1, S // 70), cv2.LINE_AA)
    cv2.fillPoly(img, [px[48:60]], lip, cv2.LINE_AA)
    cv2.polylines(img, [px[60:65]], False, tuple(int(c * 0.6) for c in lip), max(1, S // 120), cv2.LINE_AA)
    return Identity(f"face{index:02d}", "drawn", img, g, skin, lip)


def make_identity(index: int, size: int, seed: int) -> Identity:
    """Identity ``index``: 0 = astronaut (human photo), 1 = chelsea (cat photo), 2.. = drawn faces."""
    if index == 0:
        return _photo("astronaut", size)
    if index == 1:
        return _photo("chelsea", size)
    return drawn_face(index, size, np.random.default_rng([seed, 7919, index]))


# ---------------------------------------------------------------------------- rendering


def _depth(g: Geometry, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Height of the face surface at normalised points: an ellipsoid plus a nose bump, in [0, ~1.3]."""
    rx, ry = g.depth_radius
    cy = (g.jaw_top + g.chin[1]) / 2 - 0.05
    e = 1 - ((x - g.nose_tip[0]) / rx) ** 2 - ((y - cy) / ry) ** 2
    z = np.sqrt(np.clip(e, 0, None))
    nose = 0.3 * np.exp(-(((x - g.nose_tip[0]) / 0.05) ** 2 + ((y - g.nose_tip[1] + 0.04) / 0.08) ** 2))
    return z + nose


def _similarity(pose: dict, g: Geometry) -> np.ndarray:
    """2x3 map of normalised points: roll and scale about the nose tip, then translation."""
    a = np.deg2rad(pose["roll"])
    s = pose["scale"]
    c = np.array(g.nose_tip)
    R = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    t = c - R @ c + np.asarray(pose["translation"])
    return np.concatenate([R, t[:, None]], 1)


def project(points: np.ndarray, g: Geometry, pose: dict) -> np.ndarray:
    """Forward map of canonical normalised points ``[K, 2]`` through parallax and similarity."""
    z = _depth(g, points[:, 0], points[:, 1])
    d = PARALLAX * np.stack([np.sin(np.deg2rad(pose["yaw"])) * z, np.sin(np.deg2rad(pose["pitch"])) * z], -1)
    A = _similarity(pose, g)
    return ((points + d) @ A[:, :2].T + A[:, 2]).astype(np.float32)


def render_frame(ident: Identity, pose: dict, mouth_open: float, blink: float, out_size: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """One frame: RGB uint8 ``[out_size, out_size, 3]`` and its keypoints ``[68, 2]`` in [0, 1]."""
    g, S = ident.geometry, ident.image.shape[0]
    img = ident.image.copy()
    k = keypoints(g, mouth_open, blink)
    k_open = keypoints(g, mouth_open, 0.0)
    px = np.round(k * S).astype(np.int32)
    if mouth_open > 0.02:
        lower = np.concatenate([k[54:60], k[48:49], k[60:61], k[67:64:-1], k[64:65]])
        cv2.fillPoly(img, [np.round(lower * S).astype(np.int32)], ident.lip, cv2.LINE_AA)
        cv2.fillPoly(img, [px[60:68]], ident.inner, cv2.LINE_AA)
    if blink > 0.02:
        for j in (36, 42):
            # skin between the open lid line and the current one, then a dark lash line
            lid = np.concatenate([k_open[j:j + 4], k[j:j + 4][::-1]])
            cv2.fillPoly(img, [np.round(lid * S).astype(np.int32)], ident.skin, cv2.LINE_AA)
            cv2.polylines(img, [px[j:j + 4]], False, (40, 30, 30), max(1, S // 100), cv2.LINE_AA)
    # inverse warp: destination q -> source p with A(p + d(p)) = q, d evaluated at A^-1 q
    A = _similarity(pose, g)
    Ainv = cv2.invertAffineTransform(A.astype(np.float64))
    u = (np.arange(out_size) + 0.5) / out_size
    qx, qy = np.meshgrid(u, u)
    bx = Ainv[0, 0] * qx + Ainv[0, 1] * qy + Ainv[0, 2]
    by = Ainv[1, 0] * qx + Ainv[1, 1] * qy + Ainv[1, 2]
    z = _depth(g, bx, by)
    sx = bx - PARALLAX * np.sin(np.deg2rad(pose["yaw"])) * z
    sy = by - PARALLAX * np.sin(np.deg2rad(pose["pitch"])) * z
    # sample the canonical image (at S >= out_size) with area-like smoothing when shrinking
    src = img if S <= out_size * 1.5 else cv2.resize(img, (out_size * 2, out_size * 2), interpolation=cv2.INTER_AREA)
    Ss = src.shape[0]
    frame = cv2.remap(src, (sx * Ss - 0.5).astype(np.float32), (sy * Ss - 0.5).astype(np.float32),
                      cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    return frame, project(k, g, pose)
