"""SynthTalk evaluators: metric networks the suite trains itself on SynthTalk's ground truth.

At SynthTalk's 32-64 px the official metric networks find no face (MediaPipe, DWPose, S3FD) or
need files we cannot download (SyncNet, Inception, I3D, Deep3DFaceRecon). These evaluators are
trained once on the training split (never on the test split), cached beside the data and scored
for skill on the test split, so that SynthTalk numbers mean something; their labels start with
``synthtalk:`` and they are never ranked against a paper's numbers.

Modules, one concept each:

* ``data``       read a built SynthTalk folder by its documented layout;
* ``facenet``    the face network (68 keypoints by integral heatmaps, presence, mouth, blink, embedding);
* ``face_train`` its training, with augmentations and the non-face negatives of the presence head;
* ``tracker``    the face network as a landmark backend (``FaceTrack``) for Glo/Exp and lip crops;
* ``syncnet``    a SyncNet in the syncnet_v2 layout, trained contrastively;
* ``features``   FID / FVD / E-FID features from the face network;
* ``scorers``    scorers with the suite's protocol (``metrics/base.py``) built from the evaluators;
* ``skill``      the skill figures measured on the test split (``skill.json``);
* ``config``, ``lab``, ``cache``  config and cache key, the evaluator folder, :func:`ensure_evaluators`.

Usage::

    lab = ensure_evaluators(SynthTalk(root, ...).build())      # trains once, then reuses
    evaluate_folders(pred_dir, gt_dir, lab=lab)                # or: python -m metrics.evaluate ... --lab DIR
"""

from metrics.synthtalk.cache import ensure_evaluators, evaluator_folder
from metrics.synthtalk.config import EvaluatorConfig

__all__ = ["EvaluatorConfig", "ensure_evaluators", "evaluator_folder"]
