"""HDTF (Zhang et al. 2021): the public annotation files plus the user's downloaded videos.

The annotation folder (``HDTF_dataset`` of the official repository) holds, per subset
``RD``, ``WDA``, ``WRA``: ``xx_video_url.txt`` (name, url), ``xx_annotion_time.txt``
(name, then one ``mm:ss-mm:ss`` interval per talking clip), ``xx_crop_wh.txt``
(``name_k``, min_width, width, min_height, height: the fixed face window of clip k) and
``xx_resolution.txt`` (name, the frame height those windows refer to). Clip ``k`` of
video ``name`` is ``name_k``. A clip is read from ``videos/name_k.mp4`` when the user has
already cut it, else cut from ``videos/name.mp4`` by the annotation; it is cropped by
its window (scaled when the download's height differs from the reference height).

Without annotation files every mp4 under ``videos/`` is taken as an already cropped clip.

Splits: ``split=mcdm`` is MCDM's 9:1 train/test (Sec. 4.1), ``split=loopy`` Loopy's 100
random test videos (Sec. 4); both by seed, written to ``hdtf_<split>_{train,test}.txt``.
"""

from __future__ import annotations

import re
from pathlib import Path

from datamodules.base import IndexedDataModule
from datamodules.clips import VideoRecord

SUBSETS = ("RD", "WDA", "WRA")
SPLITS = {"mcdm": {"test_fraction": 0.1, "test_count": None}, "loopy": {"test_fraction": None, "test_count": 100}}
_TIME = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$")


def parse_time(text: str) -> float:
    """``mm:ss``, ``hh:mm:ss`` or ``mm:ss.s`` -> seconds; ValueError otherwise."""
    m = _TIME.match(text.strip())
    if not m:
        raise ValueError(f"bad time {text!r} (expected mm:ss or hh:mm:ss)")
    h, mi, se = m.groups()
    return int(h or 0) * 3600 + int(mi) * 60 + float(se)


def parse_intervals(fields: list[str]) -> list[tuple[float, float]]:
    out = []
    for f in fields:
        a, sep, b = f.partition("-")
        if not sep:
            raise ValueError(f"bad interval {f!r} (expected start-end)")
        t0, t1 = parse_time(a), parse_time(b)
        if t1 <= t0:
            raise ValueError(f"interval {f!r} ends before it starts")
        out.append((t0, t1))
    return out


def _stem(name: str) -> str:
    return name[:-4] if name.lower().endswith(".mp4") else name


def _rows(path: Path):
    if path.exists():
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                yield n, line.split()


class HDTFDataModule(IndexedDataModule):
    """Config keys: ``root`` (holding the annotation files, directly or in ``HDTF_dataset/``),
    ``video_dir`` (default ``<root>/videos``), ``split`` (``mcdm`` | ``loopy``), ``seed``, plus loader keys."""

    name = "hdtf"
    LAYOUT = ("  <root>/HDTF_dataset/{RD,WDA,WRA}_{video_url,annotion_time,crop_wh,resolution}.txt (or directly in <root>)\n"
              "  <root>/videos/<name>.mp4 (raw download) or <root>/videos/<name>_<k>.mp4 (clips already cut)")

    def __init__(self, root: str, video_dir: str | None = None, split: str = "mcdm", **kw):
        if split not in SPLITS:
            raise ValueError(f"data.split={split!r}: choose 'mcdm' (9:1) or 'loopy' (100 random test videos)")
        for k, v in SPLITS[split].items():
            kw.setdefault(k, v)
        kw.setdefault("split_name", f"hdtf_{split}")
        super().__init__(root, **kw)
        self.video_dir = Path(video_dir) if video_dir else self.root / "videos"

    def annotation_dir(self) -> Path | None:
        for d in (self.root / "HDTF_dataset", self.root):
            if any((d / f"{s}_annotion_time.txt").exists() for s in SUBSETS):
                return d
        return None

    def scan(self, report) -> list[VideoRecord]:
        ann = self.annotation_dir()
        if ann is None:
            if not self.video_dir.is_dir():
                raise FileNotFoundError(f"data.root={self.root}: neither annotation files nor {self.video_dir}. "
                                        f"Expected layout:\n{self.LAYOUT}")
            return [VideoRecord(video_id=p.stem, path=str(p), dataset=self.name, identity=re.sub(r"_\d+$", "", p.stem))
                    for p in sorted(self.video_dir.glob("*.mp4"))]
        out = []
        for s in SUBSETS:
            crops, res = {}, {}
            for n, f in _rows(ann / f"{s}_crop_wh.txt"):
                try:
                    x0, w, y0, h = (float(v) for v in f[1:5])
                    crops[_stem(f[0])] = (x0, y0, x0 + w, y0 + h)
                except (ValueError, IndexError):
                    report.drop(f"{s}_crop_wh.txt:{n}", f"bad crop row {' '.join(f)!r}", "annotation")
            for _, f in _rows(ann / f"{s}_resolution.txt"):
                if len(f) >= 2 and f[1].isdigit():
                    res[_stem(f[0])] = float(f[1])
            for n, f in _rows(ann / f"{s}_annotion_time.txt"):
                name = _stem(f[0])
                try:
                    intervals = parse_intervals(f[1:])
                except ValueError as e:
                    report.num_in += 1
                    report.drop(f"{s}_annotion_time.txt:{n} ({name})", str(e), "annotation")
                    continue
                for k, (t0, t1) in enumerate(intervals):
                    cid = f"{name}_{k}"
                    cut = self.video_dir / f"{cid}.mp4"
                    rec = VideoRecord(video_id=cid, path=str(cut if cut.exists() else self.video_dir / f"{name}.mp4"),
                                      dataset=self.name, identity=re.sub(r"_\d+$", "", name),
                                      start_s=None if cut.exists() else t0, end_s=None if cut.exists() else t1,
                                      bbox=crops.get(cid), bbox_ref_height=res.get(name),
                                      meta={"subset": s, "source": name, "clip_index": k, "interval_s": [t0, t1]})
                    out.append(rec)
        return out
