"""CelebV-HQ (Zhu et al. 2022): ``celebvhq_info.json`` plus the downloaded raw videos.

The json maps each clip id to its YouTube id (``ytb_id``), ``duration`` (``start_sec``,
``end_sec``), face ``bbox`` (``top``, ``bottom``, ``left``, ``right`` as fractions of the
frame) and ``attributes`` (``appearance`` and ``action`` 0/1 vectors named by
``meta_info.appearance_mapping`` / ``action_mapping``, and ``emotion.labels``). A clip is
read from ``<clips_dir>/<clip_id>.mp4`` when already cut (the official script's output,
folder ``35666``), else cut and cropped out of ``<raw_dir>/<ytb_id>.mp4`` by the json:
the box grown by ``bbox_expand`` on each side (as the official processing does) and
made square about its centre. Used as a test set by MCDM (Sec. 4.1), JoyVASA (Sec. 4.1)
and Loopy (100 random videos, Sec. 4).
"""

from __future__ import annotations

import json
from pathlib import Path

from datamodules.base import IndexedDataModule
from datamodules.clips import VideoRecord


class CelebVHQDataModule(IndexedDataModule):
    """Config keys: ``root`` (holding ``celebvhq_info.json``), ``raw_dir`` (default ``<root>/raw``),
    ``clips_dir`` (default ``<root>/35666``), ``bbox_expand``, ``test_count``/``test_fraction``,
    ``split_by_identity`` (one YouTube video on one side), plus loader keys."""

    name = "celebvhq"
    LAYOUT = ("  <root>/celebvhq_info.json\n"
              "  <root>/raw/<ytb_id>.mp4     (downloaded videos, cut and cropped by the json)\n"
              "  <root>/35666/<clip_id>.mp4  (optional: clips already cut by the official script)")

    def __init__(self, root: str, raw_dir: str | None = None, clips_dir: str | None = None,
                 bbox_expand: float = 0.02, info_json: str = "celebvhq_info.json", **kw):
        kw.setdefault("test_count", 100)
        kw.setdefault("split_by_identity", True)
        super().__init__(root, **kw)
        self.raw_dir = Path(raw_dir) if raw_dir else self.root / "raw"
        self.clips_dir = Path(clips_dir) if clips_dir else self.root / "35666"
        self.bbox_expand, self.info_json = float(bbox_expand), info_json

    def scan(self, report) -> list[VideoRecord]:
        path = self.root / self.info_json
        if not path.exists():
            raise FileNotFoundError(f"data.root={self.root}: {self.info_json} not found. Expected layout:\n{self.LAYOUT}")
        try:
            info = json.loads(path.read_text())
            clips, meta_info = info["clips"], info.get("meta_info", {})
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: not a CelebV-HQ info json ({e}); expected {{'meta_info': ..., 'clips': ...}}") from e
        app_names, act_names = meta_info.get("appearance_mapping", []), meta_info.get("action_mapping", [])
        out = []
        for cid, c in clips.items():
            try:
                ytb = str(c["ytb_id"])
                t0, t1 = float(c["duration"]["start_sec"]), float(c["duration"]["end_sec"])
                b = c["bbox"]
                top, bottom, left, right = (float(b[k]) for k in ("top", "bottom", "left", "right"))
                if t1 <= t0 or not (0 <= top < bottom <= 1 and 0 <= left < right <= 1):
                    raise ValueError(f"times {t0}-{t1} or box {b} out of range")
            except (KeyError, TypeError, ValueError) as e:
                report.num_in += 1
                report.drop(cid, f"bad json entry: {e}", "annotation")
                continue
            attrs = c.get("attributes", {})
            meta = {"ytb_id": ytb, "interval_s": [t0, t1],
                    "emotion": (attrs.get("emotion") or {}).get("labels"),
                    "appearance": [n for n, v in zip(app_names, attrs.get("appearance", []), strict=False) if v],
                    "action": [n for n, v in zip(act_names, attrs.get("action", []), strict=False) if v]}
            cut = self.clips_dir / f"{cid}.mp4"
            if cut.exists():
                out.append(VideoRecord(video_id=cid, path=str(cut), dataset=self.name, identity=ytb, meta=meta))
                continue
            e = self.bbox_expand
            box = (max(left - e, 0.0), max(top - e, 0.0), min(right + e, 1.0), min(bottom + e, 1.0))
            out.append(VideoRecord(video_id=cid, path=str(self.raw_dir / f"{ytb}.mp4"), dataset=self.name,
                                   identity=ytb, start_s=t0, end_s=t1, bbox=box, bbox_normalized=True, meta=meta))
        return out
