"""Control rows: the test set's own ground truth, scored by the same metric code as every variant.

Each control is a system whose videos are made from the ground truth, so the table shows what each
metric gives a perfect model and a broken one, and where every variant sits between them:

- ``ground_truth``: the ground-truth video itself (its frames and its audio);
- ``audio_shuffled``: the ground-truth frames with the audio of another test item (lip sync broken,
  everything else perfect: Sync-C must drop, image metrics must not);
- ``reference_swapped``: the ground-truth video of a test item of another identity, with this item's
  audio (identity broken: paired identity metrics such as SSIM must drop);
- ``reference_still``: the reference frame repeated for the whole clip, with this item's audio (a
  model that learned nothing: no lip or head motion);
- ``own_clock`` (SynthTalk only, from its generator): the clip rendered again with the same identity,
  speech, mouth and first pose, but head sway and blinks from another point of the identity's clock. A
  perfect generator that starts from the reference cannot know the clip's motion phase, so this row is
  the best such a generator can score on paired metrics (SSIM) and what its motion scores against the
  ground truth's (DGlo, DExp);
- ``at_rest`` (SynthTalk only): the clip rendered with the head at the identity's mean pose and no
  blinks, the mouth and the nods on phrase onsets as in the ground truth: only what the audio determines,
  the best a motionless-but-talking generator can score.

On data without a generator the last two rows are left out, with a log line.

Control videos are encoded like the variants' samples (``experiments/prediction_writer.py``), scored
with the experiment's metrics, logged as MLflow runs tagged ``suite.kind=control`` under the parent
run, and shown by ``reports.build`` in a block of their own.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: control name -> row label in the tables
CONTROLS = {
    "ground_truth": "Ground truth",
    "audio_shuffled": "Ground truth, audio shuffled",
    "reference_swapped": "Ground truth, reference swapped",
    "reference_still": "Reference still",
    "own_clock": "Generator, own motion clock",
    "at_rest": "Generator, head at rest",
}
#: controls rendered by the data set's generator: name -> the data module's method that renders a test item
GENERATED = {"own_clock": "own_clock_frames", "at_rest": "at_rest_frames"}
SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = SAMPLE_RATE // 25


def _fit_length(frames: np.ndarray, n: int) -> np.ndarray:
    """Cut or loop ``frames`` [T, ...] to ``n`` frames."""
    return frames[np.arange(n) % len(frames)]


def _fit_audio(audio: np.ndarray, n_samples: int) -> np.ndarray:
    out = np.zeros(n_samples, np.float32)
    out[:min(n_samples, len(audio))] = audio[:n_samples]
    return out


def test_set(datamodule, seed: int = 0, controls=tuple(GENERATED)) -> list[dict]:
    """Each test item as ``{video_id, identity, gt_path, frames [T,H,W,3] uint8, audio [S]}``, from the data
    module's ``predict_dataloader`` (the items every variant generated and is scored against), plus the
    frames of the ``GENERATED`` controls among ``controls`` where the data module renders them (SynthTalk)."""
    from core.video_io import read_video

    out = []
    renders = {name: getattr(datamodule, method) for name, method in GENERATED.items()
               if name in controls and hasattr(datamodule, method)}
    for batch in datamodule.predict_dataloader():
        for i, meta in enumerate(batch["meta"]):
            n = int(batch["num_frames"].reshape(-1)[i])
            item = {"video_id": str(meta["video_id"]), "identity": str(meta.get("identity", "")),
                    "gt_path": str(meta["gt_path"]), "frames": read_video(meta["gt_path"]).frames[:n],
                    "audio": batch["audio"][i, :n * SAMPLES_PER_FRAME].numpy().astype(np.float32)}
            for name, render in renders.items():
                item[name] = _fit_length(render(item["video_id"], seed), n)
            out.append(item)
    return out


def available(name: str, items: list[dict]) -> bool:
    """Whether control ``name`` can be made for these items (the ``GENERATED`` ones need a generator)."""
    return name not in GENERATED or all(name in it for it in items)


def control_videos(name: str, items: list[dict]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(frames, audio) of every test item for control ``name``."""
    n_items = len(items)
    out = []
    for i, it in enumerate(items):
        frames, audio = it["frames"], it["audio"]
        if name == "ground_truth":
            pass
        elif name == "audio_shuffled":  # the next item's audio: a derangement whenever there are 2+ items
            audio = _fit_audio(items[(i + 1) % n_items]["audio"], len(audio))
        elif name == "reference_swapped":  # the next item of another identity (any other item if none)
            others = [items[(i + k) % n_items] for k in range(1, n_items)]
            other = next((o for o in others if o["identity"] != it["identity"]), others[0] if others else it)
            frames = _fit_length(other["frames"], len(frames))
        elif name == "reference_still":
            frames = np.repeat(frames[:1], len(frames), 0)
        elif name in GENERATED:
            if name not in it:
                raise ValueError(f"eval.controls: {name} re-renders the test clips with SynthTalk's generator; "
                                 f"item {it['video_id']!r} comes from data without one: remove {name}")
            frames = it[name]
        else:
            raise ValueError(f"eval.controls: unknown control {name!r}; use {sorted(CONTROLS)}")
        out.append((frames, audio))
    return out


def write_control(name: str, items: list[dict], folder: Path, crf: int = 0) -> tuple[Path, Path]:
    """Write control ``name``'s videos into ``folder/pred`` and link the ground truth into ``folder/gt``,
    the layout a variant's samples have (so ``metrics.evaluate`` pairs them by name)."""
    from core.video_io import write_video

    pred_dir, gt_dir = folder / "pred", folder / "gt"
    gt_dir.mkdir(parents=True, exist_ok=True)
    for it, (frames, audio) in zip(items, control_videos(name, items), strict=True):
        write_video(pred_dir / f"{it['video_id']}.mp4", frames, 25.0, audio, SAMPLE_RATE, crf=crf)
        link = gt_dir / f"{it['video_id']}{Path(it['gt_path']).suffix}"
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(os.path.abspath(it["gt_path"]), link)
    return pred_dir, gt_dir


def validate(names) -> list[str]:
    """The control names of ``eval.controls``; an unknown one is refused before anything runs."""
    names = list(names or [])
    unknown = [n for n in names if n not in CONTROLS]
    if unknown:
        raise ValueError(f"eval.controls: unknown control(s) {unknown}; use any of {list(CONTROLS)} (or [] for none)")
    return names


__all__ = ["CONTROLS", "GENERATED", "available", "control_videos", "test_set", "validate", "write_control"]
