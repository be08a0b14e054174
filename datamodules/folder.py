"""Any folder of talking videos (TalkingFace-Wild style, MCDM Sec. 4.1, or a user's own set).

Every ``*.mp4`` (also ``.mov``, ``.mkv``, ``.avi``) with an audio stream under ``root`` is a
clip; a sub-folder names the identity (``root/<identity>/<clip>.mp4``), a file directly
under ``root`` is its own identity. A ``<clip>.wav`` beside a video replaces its audio
track. Split files ``root/splits/{train,test}.txt`` (video ids, i.e. paths relative to
root without extension) are used when present; otherwise a seeded split is written.
"""

from __future__ import annotations

from datamodules.base import IndexedDataModule
from datamodules.clips import VideoRecord
from datamodules.splits import split_files
from datamodules.video_io import atomic_path

VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".avi")


class FolderDataModule(IndexedDataModule):
    """Config keys: ``root``, ``split_dir``, ``seed``, ``test_fraction``, ``test_count``,
    ``split_by_identity`` plus the loader keys of ``ClipDataModule``."""

    name = "folder"
    LAYOUT = ("  <root>/<identity>/<clip>.mp4   (audio muxed; optional <clip>.wav beside it)\n"
              "  <root>/<clip>.mp4              (identity = clip)\n"
              "  <root>/splits/{train,test}.txt (optional: video ids, one a line)")

    def __init__(self, root: str, **kw):
        super().__init__(root, **kw)
        own = self.root / "splits"
        if (own / "train.txt").exists() and (own / "test.txt").exists():
            # the data set ships its split: use it as is (copied under our split name)
            files = split_files(self.split_dir, self.split_name)
            self.split_dir.mkdir(parents=True, exist_ok=True)
            for s, p in files.items():
                if not p.exists():
                    with atomic_path(p) as tmp:
                        tmp.write_text((own / f"{s}.txt").read_text())

    def scan(self, report) -> list[VideoRecord]:
        out = []
        for p in sorted(q for q in self.root.rglob("*") if q.suffix.lower() in VIDEO_EXTS and q.is_file()):
            rel = p.relative_to(self.root)
            if rel.parts[0] in ("splits", "cache") or any(part.startswith(".") for part in rel.parts):
                continue
            vid = rel.with_suffix("").as_posix()
            wav = p.with_suffix(".wav")
            out.append(VideoRecord(video_id=vid.replace("/", "__"), path=str(p), dataset=self.name,
                                   identity=rel.parts[0] if len(rel.parts) > 1 else p.stem,
                                   audio_path=str(wav) if wav.exists() else None, meta={"source": str(rel)}))
        return out
