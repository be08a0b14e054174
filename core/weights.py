"""The one table of pretrained files used by the metrics (and the README's copy of it).

Every row names the config key (``weights.<key>``), the environment variable, the file name the
official release uses, and its format. A component asks :func:`resolve` for its file: the config
value wins, then the environment variable. With ``standin=True`` a missing file returns ``None``
and the caller builds a labelled fixed-seed stand-in; with ``standin=False`` it raises
:class:`MissingWeightsError` naming all three. :func:`check` runs over all files a set of metrics
needs, before any video is decoded, and reports every missing one at once. A file that exists but
is not the expected model's (other keys or shapes, not a torch file) raises :class:`WeightsFormatError`
(:func:`load_torch`, :func:`wrong_file`), naming the file, the key and the official file to use.

Adding a file is one line in ``WEIGHTS``.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class WeightSpec:
    """One pretrained file: ``weights.<key>`` in config, ``env_var`` in the environment."""

    key: str
    env_var: str
    filename: str
    fmt: str
    description: str
    optional: bool = False


WEIGHTS: dict[str, WeightSpec] = {s.key: s for s in [
    WeightSpec("fid_inception", "SUITE_FID_INCEPTION", "pt_inception-2015-12-05-6726825d.pth",
               "torch state_dict of pytorch_fid.inception.fid_inception_v3()", "FID InceptionV3 (pytorch-fid 0.3.0)"),
    WeightSpec("i3d_inception", "SUITE_I3D_INCEPTION", "i3d_pretrained_400.pt",
               "torch state_dict of pytorch-i3d InceptionI3d(400)", "FVD-I (default, DisCo FVD-3DInception): I3D Kinetics-400"),
    WeightSpec("i3d", "SUITE_I3D", "i3d_torchscript.pt",
               "TorchScript, call (x uint8 BCTHW, rescale, resize, return_features)",
               "FVD-I with metrics.FVD-I.reference=styleganv: StyleGAN-V I3D (Kinetics-400)"),
    WeightSpec("resnet3d50", "SUITE_RESNET3D50", "resnet-50-kinetics.pth",
               "torch {'state_dict': {'module.conv1.weight', ...}}", "FVD-R: Hara 3D-ResNet-50 (Kinetics), DisCo"),
    WeightSpec("deep3d_recon", "SUITE_DEEP3D_RECON", "epoch_20.pth",
               "torch {'net_recon': ReconNetWrapper state_dict}", "E-FID: Deep3DFaceRecon_pytorch ResNet-50, 257 coeffs"),
    WeightSpec("qalign", "SUITE_QALIGN", "one-align",
               "Hugging Face model folder (q-future/one-align, trust_remote_code)", "IQA/VQA: Q-Align (mPLUG-Owl2, ~8B)",
               optional=True),
    WeightSpec("syncnet_v2", "SUITE_SYNCNET", "syncnet_v2.model",
               "torch state_dict of syncnet_python SyncNetModel.S", "Sync-C/D: SyncNet (joonson/syncnet_python)"),
    WeightSpec("s3fd", "SUITE_S3FD", "sfd_face.pth", "torch state_dict of S3FD",
               "Sync face detector (optional; MediaPipe is the offline default)", optional=True),
    WeightSpec("amt_s", "SUITE_AMT_S", "amt-s.pth", "torch {'state_dict': AMT-S}", "Smo: AMT-S frame interpolation (VBench)"),
    WeightSpec("dwpose_det", "SUITE_DWPOSE_DET", "yolox_l.onnx", "ONNX", "DWPose person detector (YOLOX-L)"),
    WeightSpec("dwpose_pose", "SUITE_DWPOSE_POSE", "dw-ll_ucoco_384.onnx", "ONNX", "DWPose whole-body pose 384x288"),
]}


#: Pretrained files of the models (read by each model's config; listed here so that one table names
#: every file the suite can use). ``key`` is the full config key; the paper presets read ``env_var``.
MODEL_WEIGHTS: dict[str, WeightSpec] = {s.key: s for s in [
    WeightSpec("model.pretrained.path (loopy)", "LOOPY_SD15_PATH", "stable-diffusion-v1-5/",
               "diffusers folder with unet/ and vae/", "Loopy: denoising U-Net and reference net (both from SD1.5)"),
    WeightSpec("model.audio.wav2vec_path (loopy)", "LOOPY_WAV2VEC2_PATH", "wav2vec2-base-960h/",
               "Hugging Face folder (config.json + model weights)", "Loopy: audio features (all hidden states)"),
    WeightSpec("model.pretrained.path (mcdm)", "MCDM_SD15_PATH", "stable-diffusion-v1-5/",
               "diffusers folder with unet/ and vae/", "MCDM: denoising U-Net, frozen VAE encoder"),
    WeightSpec("model.audio.wav2vec_path (mcdm)", "MCDM_WAV2VEC2_PATH", "wav2vec2-base-960h/",
               "Hugging Face folder", "MCDM: frozen audio tokens"),
    WeightSpec("model.image.clip_path (mcdm)", "MCDM_CLIP_PATH", "clip-vit-large-patch14/",
               "Hugging Face folder", "MCDM: frozen CLIP image tokens of the reference"),
    WeightSpec("model.audio.wav2vec_path (joyvasa)", "JOYVASA_WAV2VEC2_PATH", "wav2vec2-base-960h/",
               "Hugging Face folder", "JoyVASA: frozen audio features"),
    WeightSpec("model.liveportrait.path (joyvasa)", "JOYVASA_LIVEPORTRAIT_PATH", "liveportrait/",
               "folder with base_models/motion_extractor.pth", "JoyVASA: LivePortrait motion extractor"),
]}


class MissingWeightsError(FileNotFoundError):
    """One or more pretrained files are missing; the message names key, variable and file name."""


class WeightsFormatError(ValueError, RuntimeError):
    """A pretrained file exists but is not the expected model's (other keys or shapes, or not a torch file).

    The message names the file, the config key / environment variable and the file to use. It is a
    ``ValueError`` and, for callers of the strict loaders that caught ``RuntimeError``, also one of those.
    """


def wrong_file(key: str, path, problem: str) -> WeightsFormatError:
    """The error for file ``path`` given for ``key`` (a ``WEIGHTS`` or ``MODEL_WEIGHTS`` row)."""
    s = WEIGHTS.get(key) or MODEL_WEIGHTS[key]
    cfg = f"weights.{s.key}" if s.key in WEIGHTS else s.key.split(" (")[0]
    return WeightsFormatError(f"{path}: {problem}. {cfg} / ${s.env_var} must point to {s.filename} [{s.fmt}] for "
                              f"{s.description}; re-download that file or fix the path")


def load_torch(path, key: str, weights_only: bool = True):
    """``torch.load`` of the pretrained file for ``key``; a damaged or non-torch file raises :class:`WeightsFormatError`."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, OSError) as e:
        # torch's own text would suggest weights_only=False; the cause is a damaged or foreign file
        raise wrong_file(key, path, f"not a readable torch file ({type(e).__name__}: a truncated download, "
                                    f"an HTML error page or another format)") from e


@contextmanager
def fixed_seed_init(seed: int = 0):
    """Build a randomly initialised network (a stand-in backbone, or a model part built without its
    pretrained file) from a fixed seed, so that every run gets the same one, without touching the
    run's own random state.

    Only the CPU generator is forked and seeded: ``torch.manual_seed`` would also reseed every CUDA
    generator (or queue that reseed until CUDA starts), so every entry of ``seeds=[0,1,2]`` would
    draw the same noise on the GPU. Modules are built on the CPU, so the CPU generator is all that
    their initialisation reads."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


def _spec(key: str) -> WeightSpec:
    if key not in WEIGHTS:
        raise KeyError(f"unknown weights key {key!r}; known keys: {', '.join(WEIGHTS)} (core/weights.py)")
    return WEIGHTS[key]


def describe_missing(key: str, got: str | None = None) -> str:
    """One line naming the config key, the environment variable and the expected file."""
    s = _spec(key)
    where = f" (looked at {got!r})" if got else ""
    return (f"weights.{s.key} / ${s.env_var}: expected {s.filename} [{s.fmt}] for {s.description}{where}; "
            f"set the config key weights.{s.key} or the environment variable {s.env_var} to the local file")


def lookup(key: str, weights_cfg: dict | None = None) -> str | None:
    """The configured path for ``key`` (config first, then environment), or None if unset."""
    s = _spec(key)
    cfg = dict(weights_cfg or {})
    return cfg.get(key) or os.environ.get(s.env_var) or None


def resolve(key: str, weights_cfg: dict | None = None, standin: bool = False) -> str | None:
    """Local path of file ``key``; None when absent and ``standin`` allows a stand-in.

    Raises:
        MissingWeightsError: the file is absent and ``standin`` is False.
    """
    path = lookup(key, weights_cfg)
    if path and os.path.exists(path):
        return path
    if standin:
        return None
    raise MissingWeightsError(describe_missing(key, path))


def check(keys, weights_cfg: dict | None = None, standin: bool = False) -> dict[str, str | None]:
    """Resolve several files at once; raise one error listing every missing one."""
    found, missing = {}, []
    for key in keys:
        path = lookup(key, weights_cfg)
        if path and os.path.exists(path):
            found[key] = path
        elif standin or _spec(key).optional:
            found[key] = None
        else:
            missing.append(describe_missing(key, path))
    if missing:
        raise MissingWeightsError("missing pretrained files (nothing was decoded yet):\n  " + "\n  ".join(missing))
    return found


def table_markdown() -> str:
    """The weights table as Markdown (config key, environment variable, file, format, use)."""
    rows = ["| config key | environment variable | file | format | used by |", "|---|---|---|---|---|"]
    rows += [f"| weights.{s.key} | {s.env_var} | {s.filename} | {s.fmt} | {s.description} |" for s in WEIGHTS.values()]
    rows += [f"| {s.key} | {s.env_var} | {s.filename} | {s.fmt} | {s.description} |" for s in MODEL_WEIGHTS.values()]
    return "\n".join(rows)


__all__ = ["MODEL_WEIGHTS", "WEIGHTS", "MissingWeightsError", "WeightSpec", "WeightsFormatError", "check",
           "describe_missing", "fixed_seed_init", "load_torch", "lookup", "resolve", "table_markdown",
           "wrong_file"]
