"""Decode, resample to 25 fps / 16 kHz mono, filter, crop the face square and write clips.

Output layout is the folder data set's (``FolderDataModule`` reads it back)::

    <out_dir>/<identity>/<video_id>[_sK].mp4   25 fps, 16 kHz mono AAC, size x size
    <out_dir>/.done/<video_id>.json           per-input result; a rerun skips finished inputs
    <out_dir>/preprocess_report.json          videos in, clips out, each dropped one with step and reason
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from core.atomic import atomic_path
from core.video_io import VideoReadError, write_video
from datamodules.clips import FPS, SAMPLE_RATE, VideoRecord, decode_record
from datamodules.preprocess.face import detect_faces
from datamodules.preprocess.filters import SyncConfidence, Work, build_steps
from datamodules.report import DataReport, check_media

log = logging.getLogger(__name__)


def face_square(frames: np.ndarray, boxes: np.ndarray, size: int, scale: float = 1.8) -> np.ndarray:
    """Crop one fixed square around the median face box (grown by ``scale``) and resize to ``size``."""
    h, w = frames.shape[1:3]
    b = np.nanmedian(boxes, axis=0) * np.array([w, h, w, h])
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    side = int(min(max(b[2] - b[0], b[3] - b[1]) * scale, h, w))
    x0 = int(np.clip(cx - side / 2, 0, w - side))
    y0 = int(np.clip(cy - side / 2, 0, h - side))
    crop = frames[:, y0:y0 + side, x0:x0 + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in crop])


class Preprocessor:
    """Run ``steps`` over records and write the surviving clips.

    Args:
        out_dir: output root (see the module docstring).
        filters: preset name (``loopy`` | ``mcdm``) or a list of step dicts (``filters.build_steps``).
        size: output side (512 as in all three papers).
        crop_scale: face box growth for the square crop.
        detect_every: run the face detector on every n-th frame.
        sync_scorer: optional ``f(frames, audio) -> SyncNet confidence``.
    """

    def __init__(self, out_dir, filters="loopy", size: int = 512, crop_scale: float = 1.8, detect_every: int = 5,
                 sync_scorer=None, crf: int = 18):
        self.out_dir = Path(out_dir)
        self.steps = build_steps(filters, sync_scorer)
        self.size, self.crop_scale, self.detect_every, self.crf = int(size), float(crop_scale), int(detect_every), crf

    def _done_path(self, rec: VideoRecord) -> Path:
        return self.out_dir / ".done" / f"{rec.video_id.replace('/', '__')}.json"

    def process(self, rec: VideoRecord) -> dict:
        """One input -> ``{"kept": [paths], "dropped": {"step", "reason"} | None}``."""
        reason = check_media(rec.path, need_audio=rec.audio_path is None)
        if reason:
            return {"kept": [], "dropped": {"step": "media", "reason": reason}}
        try:
            frames, audio = decode_record(rec, None)
        except VideoReadError as e:
            return {"kept": [], "dropped": {"step": "decode", "reason": str(e)}}
        if len(frames) == 0:
            return {"kept": [], "dropped": {"step": "decode", "reason": "no frames in the annotated interval"}}
        work = Work(rec, frames, audio, detect_faces(frames, self.detect_every), [(0, len(frames))])
        for step in self.steps:
            if step.stage != "decoded":
                continue
            why = step(work)
            if why:
                return {"kept": [], "dropped": {"step": step.name, "reason": why}}
        kept, dropped = [], None
        for k, (a, b) in enumerate(work.segments):
            sel = (work.faces.frame_index >= a) & (work.faces.frame_index < b) & (work.faces.count > 0)
            boxes = work.faces.boxes[sel] if sel.any() else work.faces.boxes[work.faces.count > 0]
            clip = face_square(frames[a:b], boxes, self.size, self.crop_scale)
            wav = audio[a * SAMPLE_RATE // FPS:b * SAMPLE_RATE // FPS]
            stem = rec.video_id.removeprefix(f"{rec.identity}__")  # the identity is already the folder
            name = stem if len(work.segments) == 1 else f"{stem}_s{k}"
            path = self.out_dir / rec.identity / f"{name.replace('/', '__')}.mp4"
            write_video(path, clip, FPS, wav, SAMPLE_RATE, crf=self.crf)
            for step in self.steps:
                why = step.check(path) if step.stage == "output" else None
                if why:
                    path.unlink()
                    dropped = {"step": step.name, "reason": f"segment {k}: {why}"}
                    break
            else:
                kept.append(str(path.relative_to(self.out_dir)))
        if not kept and dropped is None:
            dropped = {"step": "segments", "reason": "no segment left"}
        return {"kept": kept, "dropped": dropped if not kept else None}

    def run(self, records: list[VideoRecord], dataset: str = "data", progress: bool = True,
            index_report: DataReport | None = None) -> DataReport:
        """Process every record (resuming finished ones) and write the report."""
        report = DataReport(dataset)
        if index_report is not None:  # rows already dropped while reading annotations
            report.num_in += index_report.num_in
            report.dropped += index_report.dropped
            report.excluded += index_report.excluded
        for rec in tqdm(records, desc=f"preprocess {dataset}", disable=not progress):
            done = self._done_path(rec)
            if done.exists():
                try:
                    res = json.loads(done.read_text())
                except json.JSONDecodeError:
                    res = None
            else:
                res = None
            if res is None:
                res = self.process(rec)
                with atomic_path(done) as tmp:
                    tmp.write_text(json.dumps(res))
            report.num_in += 1
            for p in res["kept"]:
                report.keep(p)
            if res["dropped"]:
                report.drop(rec.video_id, res["dropped"]["reason"], res["dropped"]["step"])
        info = report.to_dict()
        info["steps"] = [{"name": s.name, **{k: v for k, v in s.params().items()}} for s in self.steps]
        info["not_run"] = [s.name + " (no SyncNet scorer given)" for s in self.steps
                           if isinstance(s, SyncConfidence) and not s.available]
        with atomic_path(self.out_dir / "preprocess_report.json") as tmp:
            tmp.write_text(json.dumps(info, indent=1))
        return report
