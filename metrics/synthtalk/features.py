"""FID / FVD / E-FID features of SynthTalk frames from the suite's face network.

* FID: each frame's embedding (the face network's globally pooled deepest stage, 4 x width dims),
  in the role of Inception's pool-3 feature.
* FVD: a 16-frame clip becomes the mean, the standard deviation and the mean absolute
  frame-to-frame difference of its frame embeddings over time (3 x embedding dims): what the
  frames show, how much it varies and how fast it moves, in the role of I3D's / 3D-ResNet's clip feature.
* E-FID: per frame the expression outputs, in the role of Deep3DFaceRecon's expression
  coefficients: the regressed mouth opening and blink, and from the keypoints the inner-lip gap
  (62-66) and the mean eyelid gap (37-41, 38-40, 43-47, 44-46), both over the inter-ocular
  distance (36-45) so that face size and identity scale drop out.
"""

from __future__ import annotations

import numpy as np

FVD_CLIP_LEN = 16
EXPRESSION_NAMES = ("mouth_open", "blink", "lip_gap", "eye_gap")


def clip_feature(embeddings: np.ndarray) -> np.ndarray:
    """Frame embeddings [T,D] of one clip -> [3D]: mean, std and mean |difference| over time."""
    e = np.asarray(embeddings, dtype=np.float64)
    return np.concatenate([e.mean(0), e.std(0), np.abs(np.diff(e, axis=0)).mean(0)])


def expression_features(outputs: dict) -> np.ndarray:
    """Face network outputs of T frames -> [T,4]: mouth opening, blink, lip gap / IOD, eyelid gap / IOD."""
    p = np.asarray(outputs["points"], dtype=np.float64)
    iod = np.linalg.norm(p[:, 36] - p[:, 45], axis=-1).clip(min=1e-6)
    lip = np.linalg.norm(p[:, 62] - p[:, 66], axis=-1)
    eye = np.mean(
        [np.linalg.norm(p[:, a] - p[:, b], axis=-1) for a, b in ((37, 41), (38, 40), (43, 47), (44, 46))],
        axis=0,
    )
    return np.stack([outputs["mouth"], outputs["blink"], lip / iod, eye / iod], -1)


__all__ = ["EXPRESSION_NAMES", "FVD_CLIP_LEN", "clip_feature", "expression_features"]
