"""Any folder of talking videos (TalkingFace-Wild style, MCDM Sec. 4.1, or a user's own set).

Every ``*.mp4`` (also ``.mov``, ``.mkv``, ``.avi``) with an audio stream under ``root`` is a
clip; a sub-folder names the identity (``root/<identity>/<clip>.mp4``), a file directly
under ``root`` is its own identity. A ``<clip>.wav`` beside a video replaces its audio
track. Split files ``root/splits/{train,test}.txt`` (video ids, i.e. paths relative to
root without extension) are used as is when present; otherwise a seeded split is written.
"""

from __future__ import annotations

from pathlib import Path

from datamodules.base import IndexedDataModule
from datamodules.clips import VideoRecord

VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".avi")


class FolderDataModule(IndexedDataModule):
    """Config keys: ``root``, ``split_dir``, ``seed``, ``test_fraction``, ``test_count``,
    ``split_by_identity`` plus the loader keys of ``ClipDataModule``."""

    name = "folder"
    LAYOUT = ("  <root>/<identity>/<clip>.mp4   (audio muxed; optional <clip>.wav beside it)\n"
              "  <root>/<clip>.mp4              (identity = clip)\n"
              "  <root>/splits/{train,test}.txt (optional: video ids, one a line)")

    def given_split(self) -> tuple[dict[str, list[str]], dict[str, Path]] | None:
        """``<root>/splits/{train,test}.txt`` when the data set ships them: used as is, read from the root
        (never copied into a cache, where another root's copy could stand in for them)."""
        own = self.root / "splits"
        files = {s: own / f"{s}.txt" for s in ("train", "test")}
        if not all(p.exists() for p in files.values()):
            return None
        # ids as scan() names them: "alice/clip1" and "alice__clip1" are the same video
        return {s: [i.replace("/", "__") for i in p.read_text().split()] for s, p in files.items()}, files

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
