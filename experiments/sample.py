"""Make a talking-portrait video from your own portrait and speech.

    python -m experiments.sample ckpt=runs/tsm_stride/<time>/Loopy_Full/seed0/last.ckpt \\
        reference=me.png audio=speech.wav out=me_talking.mp4

The model and its sizes come from the ``config.yaml`` saved beside the checkpoint by
``experiments.run`` (or from ``model=... scale=...`` when you give a bare checkpoint).
Any audio length works: the model generates clip after clip; the audio is muxed in.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:  # torch, PyAV and the models load when a video is made, not for --help or a bad argument
    import numpy as np
    import torch

log = logging.getLogger("experiments.sample")


def load_portrait(path: str | Path, size: int) -> torch.Tensor:
    """RGB portrait -> ``(1, 3, size, size)`` in [-1, 1]: centre square crop, then resize.

    Grayscale (8- or 16-bit), palette, CMYK and RGBA images are converted to RGB (alpha dropped over
    white); an image smaller than ``size`` is upscaled with a warning; one over PIL's
    decompression-bomb limit raises ValueError naming the file.
    """
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"reference image {p} not found; give reference=PATH to a portrait photo")
    try:
        img = Image.open(p)
        img.load()
    except Image.DecompressionBombError as e:
        raise ValueError(f"reference image {p} is too large to read safely ({e}); downscale it to about "
                         f"{max(size, 1024)} px first") from e
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"reference image {p} cannot be read ({e}); give a PNG or JPEG portrait") from e
    if img.mode.startswith("I;16") or img.mode == "I":  # 16-bit grayscale: convert("RGB") would clip it to white
        a = np.asarray(img, np.float64)
        if img.mode != "I" or a.max() > 255:
            a = a / 257.0
        img = Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8))
    if min(img.size) < size:
        log.warning("reference image %s is only %dx%d px, upscaled to %d px: expect a blurry result; give a "
                    "portrait of at least %d px", p, img.size[0], img.size[1], size, size)
    if img.mode in ("RGBA", "LA"):
        bg = Image.new("RGB", img.size, (255, 255, 255))
        bg.paste(img, mask=img.getchannel("A"))
        img = bg
    img = img.convert("RGB")
    w, h = img.size
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)).resize((size, size), Image.BICUBIC)
    x = torch.from_numpy(np.asarray(img, np.float32) / 127.5 - 1).permute(2, 0, 1)
    return x[None]


def make_item(reference: torch.Tensor, audio: np.ndarray, fps: float, name: str) -> dict:
    import numpy as np
    import torch

    n = int(len(audio) / 16000 * fps)
    if n < 1:
        raise ValueError(f"audio is {len(audio) / 16000:.3f} s long: too short for one frame at {fps} fps")
    return {"reference": reference, "audio": torch.from_numpy(audio[None].astype(np.float32)),
            "num_frames": torch.tensor([n]), "fps": float(fps),
            "meta": [{"video_id": name, "dataset": "user", "split": "sample", "identity": name}]}


#: model keys renamed when the three models' names were aligned (issue 20): old -> new
RENAMED_MODEL_KEYS = {"cfg": "guidance", "schedule": "noise_schedule", "sampling.steps": "sampling.num_steps",
                      "sampling.guidance_scale": "guidance.scale", "train.cfg_drop": "guidance.present_drop"}
#: keys every model config has since then, with the value the code used when a config left them out
ADDED_MODEL_KEYS = {"latent.vae_path": None, "latent.autoencoder": None,
                    "liveportrait.depths": [3, 3, 9, 3], "liveportrait.dims": [96, 192, 384, 768]}


def upgrade_model_config(model: DictConfig, source: str | Path) -> DictConfig:
    """A model config saved by an older run, in today's key names (``RENAMED_MODEL_KEYS``) and with the
    keys added since (``ADDED_MODEL_KEYS``, where the config has that group); each rename is logged."""
    model = OmegaConf.create(OmegaConf.to_container(model, resolve=True))
    for old, new in RENAMED_MODEL_KEYS.items():
        value = OmegaConf.select(model, old, default="__absent__")
        if isinstance(value, str) and value == "__absent__":
            continue
        if OmegaConf.select(model, new, default="__absent__") != "__absent__":
            raise ValueError(f"{source}: model.{old} and model.{new} are both set; model.{old} is the old "
                             f"name of model.{new}: delete model.{old}")
        log.warning("%s: model.%s is now model.%s (read as such)", source, old, new)
        OmegaConf.update(model, new, value, force_add=True)
        parent, _, leaf = old.rpartition(".")
        node = OmegaConf.select(model, parent) if parent else model
        del node[leaf]
        if parent and not node:
            del model[parent]
    for key, value in ADDED_MODEL_KEYS.items():
        group = key.split(".")[0]
        if group in model and OmegaConf.select(model, key, default="__absent__") == "__absent__":
            OmegaConf.update(model, key, value, force_add=True)
    return model


def load_config(cfg: DictConfig) -> DictConfig:
    saved = Path(cfg.ckpt).parent / "config.yaml"
    if saved.exists():
        run_cfg = OmegaConf.load(saved)
        log.info("model config from %s", saved)
        run_cfg.model = upgrade_model_config(run_cfg.model, saved)
        return run_cfg
    return cfg


def sample_video(run_cfg: DictConfig, ckpt: str | Path, reference: str | Path, audio: str | Path,
                 out: str | Path, fps: float = 25.0, device: str = "cpu") -> Path:
    """Generate ``out`` (mp4 with the audio muxed in) from a portrait and a speech file."""
    import torch

    from core.video_io import read_audio, write_video
    from experiments.prediction_writer import to_uint8_frames
    from lightning_modules.build import build_model

    portrait = load_portrait(reference, int(run_cfg.scale.image_size))
    wav = read_audio(audio, 16000)
    module = build_model(run_cfg.model)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    module.load_state_dict(state.get("state_dict", state))
    if hasattr(module, "set_stage") and run_cfg.model.get("stages"):
        module.set_stage(run_cfg.model.stages[-1].name)
    module.eval().to(device)
    item = make_item(portrait, wav, float(fps), Path(out).stem)
    item = {k: v.to(device) if torch.is_tensor(v) else v for k, v in item.items()}
    with torch.no_grad():
        video = module.predict_step(item, 0)["video"][0]
    frames = to_uint8_frames(video)
    path = write_video(out, frames, float(fps), wav[: int(len(frames) / fps * 16000)])
    log.info("wrote %s (%d frames, %.1f s)", path, len(frames), len(frames) / fps)
    return path


@hydra.main(version_base="1.3", config_path="configs", config_name="sample")
def main(cfg: DictConfig) -> None:
    from core.cli import user_errors

    with user_errors("experiments.sample", log):
        if not cfg.ckpt or not Path(cfg.ckpt).exists():
            raise FileNotFoundError(f"checkpoint {cfg.ckpt!r} not found; give ckpt=PATH (experiments.run "
                                    f"writes last.ckpt in each variant folder)")
        sample_video(load_config(cfg), cfg.ckpt, cfg.reference, cfg.audio, cfg.out, float(cfg.fps), cfg.device)


if __name__ == "__main__":
    from core.cli import run_hydra

    run_hydra(main)
