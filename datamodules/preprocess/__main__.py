"""``python -m datamodules.preprocess data=<name> [data.root=...] [out_dir=...] [filters=loopy|mcdm] [size=512]
[features=[landmarks,audio,vae]] [vae_path=DIR] [shard_size=16] [progress=true] [syncnet=syncnet_v2.model]``

Reads the data set through its DataModule's index (``experiments/configs/data/<name>.yaml``),
writes the preprocessed clips and ``preprocess_report.json`` under ``out_dir`` (default
``<paths.data_dir>/processed/<name>``), then the optional sharded feature cache under
``out_dir/features``. The processed folder is read back with ``data=folder data.root=<out_dir>``.

A bad argument or folder prints one line and exits 2 (``--debug``: the traceback).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

CONFIGS = Path(__file__).resolve().parents[2] / "experiments" / "configs"
DEFAULTS = {"out_dir": None, "filters": "loopy", "size": 512, "crop_scale": 1.8, "detect_every": 5,
            "features": [], "vae_path": None, "shard_size": 16, "progress": True, "syncnet": None}


def sync_scorer(path: str | None):
    """SyncNet confidence ``f(frames, audio)`` for the sync filter, from the official ``syncnet_v2.model``.

    The file comes from ``syncnet=PATH`` or ``$SUITE_SYNCNET`` (core/weights.py). Without it the filter
    is reported as not run: a random stand-in network would drop videos at random.
    """
    from core.weights import resolve

    found = resolve("syncnet_v2", {"syncnet_v2": path} if path else None, standin=True)
    if found is None:
        return None
    from core.video_io import Video
    from metrics.sync import SyncScorer

    scorer = SyncScorer({"syncnet_v2": found}, standin=False)

    def confidence(frames: np.ndarray, audio: np.ndarray) -> float:
        return scorer.score_video(Video(frames, 25.0, audio, 16000))["Sync-C"]

    return confidence


def data_names() -> list[str]:
    return sorted(p.stem for p in (CONFIGS / "data").glob("*.yaml"))


def usage() -> str:
    return (__doc__ or "").strip() + "\n\ndata=<name>: one of " + ", ".join(data_names())


def load_config(argv: list[str]):
    from core.cli import ConfigError

    args = [a for a in argv if not a.startswith("data=")]
    names = [a.split("=", 1)[1] for a in argv if a.startswith("data=")]
    if not names:
        raise ConfigError("give data=<name>, one of: " + ", ".join(data_names()) + " (--help: every option)")
    path = CONFIGS / "data" / f"{names[-1]}.yaml"
    if not path.exists():
        raise ConfigError(f"data={names[-1]}: no config {path}; choose one of: {', '.join(data_names())}")
    bad = [a for a in args if "=" not in a]
    if bad:
        raise ConfigError(f"{' '.join(bad)}: expected KEY=VALUE arguments (--help: every option)")
    cfg = OmegaConf.create({"paths": OmegaConf.load(CONFIGS / "paths" / "default.yaml"), "data": OmegaConf.load(path),
                            **DEFAULTS})
    cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(args))
    cfg.scale = {"image_size": int(cfg.size)}
    if cfg.out_dir is None:
        cfg.out_dir = f"{cfg.paths.data_dir}/processed/{cfg.data.name}"
    return cfg


def vae_encoder(path: str):
    """Frames uint8 [T,H,W,3] -> scaled VAE latents [T,4,H/8,W/8] with a diffusers AutoencoderKL folder."""
    import torch
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(path).eval()

    @torch.no_grad()
    def encode(frames: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(frames), 8):
            x = torch.from_numpy(np.ascontiguousarray(frames[i:i + 8])).permute(0, 3, 1, 2).float() / 127.5 - 1
            out.append(vae.encode(x).latent_dist.mean * vae.config.scaling_factor)
        return torch.cat(out).numpy().astype(np.float16)

    return encode


def feature_fn(features: list[str], vae_path: str | None):
    from core.video_io import read_video
    from datamodules.clips import SAMPLES_PER_FRAME
    from datamodules.feature_cache import landmarks68

    unknown = set(features) - {"landmarks", "audio", "vae"}
    if unknown:
        raise ValueError(f"features: unknown {sorted(unknown)}; choose from landmarks, audio, vae")
    if "vae" in features and not vae_path:
        raise ValueError("features=[vae] needs vae_path=<diffusers AutoencoderKL folder> "
                         "(config.json + weights)")
    enc = vae_encoder(vae_path) if "vae" in features else None

    def compute(path: str) -> dict:
        v = read_video(path)
        out = {}
        if "landmarks" in features:
            out["landmarks"] = landmarks68(v.frames)
        if "audio" in features:  # the waveform cut per frame: [T, 640]
            a = np.zeros(v.num_frames * SAMPLES_PER_FRAME, np.float32)
            src = v.audio if v.audio is not None else a
            a[:min(len(a), len(src))] = src[:len(a)]
            out["audio"] = a.reshape(v.num_frames, SAMPLES_PER_FRAME)
        if enc is not None:
            out["latents"] = enc(v.frames)
        return out

    return compute


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(argv):
        print(usage())
        return {}
    cfg = load_config(argv)  # a refused argument answers before torch and Lightning load

    import hydra

    from datamodules.base import IndexedDataModule
    from datamodules.feature_cache import FeatureCache
    from datamodules.preprocess.pipeline import Preprocessor
    from datamodules.report import DataReport

    dm = hydra.utils.instantiate(cfg.data, _convert_="all")
    if isinstance(dm, IndexedDataModule):
        dm.check_root()
        index = DataReport(dm.name)
        records = dm.scan(index)
    else:
        index = None
        records = dm.records("train") + dm.records("test")
    pre = Preprocessor(cfg.out_dir, OmegaConf.to_container(cfg.filters) if not isinstance(cfg.filters, str) else cfg.filters,
                       cfg.size, cfg.crop_scale, cfg.detect_every, sync_scorer=sync_scorer(cfg.syncnet))
    report = pre.run(records, dm.name, cfg.progress, index)
    print(f"{dm.name}: {report.num_in} in, {report.num_out} clips out, {len(report.dropped)} dropped "
          f"-> {Path(cfg.out_dir) / 'preprocess_report.json'}")
    out = {"num_in": report.num_in, "num_out": report.num_out, "dropped": len(report.dropped)}
    if cfg.features:
        cache = FeatureCache(Path(cfg.out_dir) / "features", cfg.shard_size)
        items = [(Path(p).with_suffix("").as_posix().replace("/", "__"), str(Path(cfg.out_dir) / p)) for p in report.kept]
        out["cache"] = cache.build(items, feature_fn(list(cfg.features), cfg.vae_path), cfg.progress)
        print(f"feature cache: {out['cache']}")
    return out


if __name__ == "__main__":
    from core.cli import run_cli

    run_cli(main, "datamodules.preprocess")
