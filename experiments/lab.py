"""What a run prepares before its variants train: networks trained once on the data set and reused.

- ``model.latent.autoencoder`` (the CPU presets): a small ``AutoencoderKL`` trained on the training
  frames in the role of SD 1.5's VAE (``lightning_modules/autoencoder.py``). Cached beside the data,
  keyed by the training videos, the frame size and its own config; its reconstruction PSNR on the
  test frames is measured once and kept in the cache's ``meta.json``. The variant's config gets its
  folder as ``model.latent.vae_path``, so the saved ``config.yaml`` of a run loads it again.
- ``eval.lab`` (SynthTalk): the evaluators of ``metrics/synthtalk`` (face network, SyncNet, set-metric
  features), trained once on the training split's ground truth and cached beside the data with their
  measured skill. ``auto`` uses them whenever the data set is SynthTalk; the variant's config gets
  their folder as ``eval.lab``, and metrics whose official files are given still use those.

Everything here runs under its own seed with the caller's random state restored afterwards, so a run
draws the same noise whether the cache was warm or cold.
"""

from __future__ import annotations

import logging
import platform
import random
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict

from core.train_once import get_or_build, key_of, read_meta

log = logging.getLogger(__name__)

#: Bump when the autoencoder's training code changes what it learns (old caches are then not reused).
AUTOENCODER_VERSION = 1


@contextmanager
def isolated_rng(seed: int):
    """Seed torch, numpy and random for the block; restore the caller's states after it."""
    import torch

    states = (random.getstate(), np.random.get_state())
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])


def data_identity(datamodule) -> dict:
    """What a network trained on ``datamodule``'s training split depends on: its name, frame size and
    the training videos (paths and cuts), so two roots or two splits never share a cache entry."""
    recs = datamodule.records("train")
    videos = sorted((r.video_id, str(r.path), r.start_s, r.end_s, r.bbox) for r in recs)
    return {"data": getattr(datamodule, "name", type(datamodule).__name__), "image_size": datamodule.image_size,
            "videos": key_of({"v": videos}, 16), "params": getattr(getattr(datamodule, "gen", None), "params", None)}


def cache_root(datamodule, cfg: DictConfig) -> Path:
    """Beside the data: the data module's cache folder, else ``paths.data_dir``."""
    return Path(getattr(datamodule, "cache_dir", None) or cfg.paths.data_dir)


def _frames(datamodule, split: str, stride: int = 1) -> np.ndarray:
    """uint8 [N, H, W, 3]: every ``stride``-th frame of the split's videos."""
    return np.concatenate([np.asarray(datamodule.store.get(r)[0][::stride]) for r in datamodule.records(split)])


def train_autoencoder(ae_cfg: dict, datamodule, out: Path, accelerator: str = "cpu") -> dict:
    """Train the autoencoder of ``ae_cfg`` on the training frames and save it as a diffusers folder."""
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader

    from lightning_modules.autoencoder import AutoencoderModule, FrameDataset

    train = _frames(datamodule, "train")
    test = _frames(datamodule, "test", stride=5)
    module = AutoencoderModule(ae_cfg["vae"], lr=ae_cfg.get("lr", 1e-3), kl_weight=ae_cfg.get("kl_weight", 1e-6),
                               deterministic=ae_cfg.get("deterministic", True))
    loader = DataLoader(FrameDataset(train), batch_size=int(ae_cfg.get("batch_size", 32)), shuffle=True,
                        drop_last=len(train) >= int(ae_cfg.get("batch_size", 32)))
    trainer = pl.Trainer(accelerator=accelerator, devices=1, max_steps=int(ae_cfg["steps"]), logger=False,
                         enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0,
                         limit_val_batches=0)
    t0 = time.time()
    trainer.fit(module, loader)
    seconds = time.time() - t0
    module = module.cpu().eval()
    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)  # noqa: E731
    std = module.latent_std(to_t(train[:: max(1, len(train) // 512)]))
    module.vae.register_to_config(scaling_factor=1.0 / max(std, 1e-6))
    psnr = module.psnr(to_t(test))
    module.vae.save_pretrained(out)
    return {"what": "autoencoder", "version": AUTOENCODER_VERSION, "config": ae_cfg, "factor": module.factor,
            "train_frames": int(len(train)), "test_frames": int(len(test)), "test_psnr_db": psnr,
            "latent_std_before_scaling": std, "train_seconds": seconds, "machine": platform.processor() or
            platform.machine(), "date": time.strftime("%Y-%m-%d")}


def _check_autoencoder(folder: Path) -> None:
    from diffusers import AutoencoderKL

    AutoencoderKL.from_pretrained(folder)


def ensure_autoencoder(cfg: DictConfig, datamodule) -> Path | None:
    """The folder of the autoencoder ``cfg.model.latent.autoencoder`` asks for (trained once), or None."""
    ae = (cfg.model.get("latent") or {}).get("autoencoder")
    if not ae or cfg.model.get("pretrained", {}).get("path"):
        return None
    ae_cfg = OmegaConf.to_container(ae, resolve=True)
    datamodule.prepare_data()
    key = key_of({"version": AUTOENCODER_VERSION, "config": ae_cfg, "data": data_identity(datamodule)})
    folder = cache_root(datamodule, cfg) / "autoencoder" / key
    accelerator = str(cfg.trainer.get("accelerator", "cpu"))

    def build(tmp: Path) -> dict:
        log.info("training the data set's autoencoder (model.latent.autoencoder) once; cached in %s", folder)
        with isolated_rng(int(ae_cfg.get("seed", 0))):
            return train_autoencoder(ae_cfg, datamodule, tmp, accelerator)

    folder = get_or_build(folder, build, _check_autoencoder, "the data set's autoencoder")
    meta = read_meta(folder)
    log.info("autoencoder %s: test PSNR %.2f dB (trained in %.0f s)", folder.name, meta["test_psnr_db"],
             meta["train_seconds"])
    return folder


def ensure_lab(cfg: DictConfig, datamodule) -> Path | None:
    """The SynthTalk evaluator folder ``eval.lab`` asks for: ``auto`` trains them once when the data set is
    SynthTalk (else None), a path is used as it is, null/false means none."""
    lab = cfg.eval.get("lab")
    if lab in (None, False, "none", "off"):
        return None
    if str(lab) != "auto":
        folder = Path(str(lab))
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"eval.lab={lab!r} is not a SynthTalk evaluator folder (no config.json); give "
                                    f"the folder `python -m metrics.synthtalk <SynthTalk folder>` printed, or auto")
        return folder
    from datamodules.synthtalk import SynthTalk

    if not isinstance(getattr(datamodule, "gen", None), SynthTalk):
        return None
    from metrics.synthtalk import ensure_evaluators

    datamodule.prepare_data()
    evaluators = cfg.eval.get("evaluators")
    evaluators = OmegaConf.to_container(evaluators, resolve=True) if OmegaConf.is_config(evaluators) else evaluators
    with isolated_rng(0):  # a warm or a cold cache leaves the run's random draws alike
        return ensure_evaluators(datamodule.folder, evaluators or None)


def prepare_variant(cfg: DictConfig, datamodule) -> DictConfig:
    """Fill in the folders of what the variant's config asks to be trained once (``model.latent.vae_path``,
    ``eval.lab``)."""
    folder = ensure_autoencoder(cfg, datamodule)
    if folder is not None:
        with open_dict(cfg):
            cfg.model.latent.vae_path = str(folder.resolve())
    if "eval" in cfg and cfg.get("evaluate", True):
        lab = ensure_lab(cfg, datamodule)
        with open_dict(cfg):
            cfg.eval.lab = str(lab.resolve()) if lab is not None else None
    return cfg


__all__ = ["AUTOENCODER_VERSION", "data_identity", "ensure_autoencoder", "ensure_lab", "isolated_rng",
           "prepare_variant", "train_autoencoder"]
