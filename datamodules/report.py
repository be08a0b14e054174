"""What went in, what came out and why: the report every indexing or preprocessing run writes."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from core.atomic import atomic_path
from core.video_io import VideoReadError, probe_video

log = logging.getLogger(__name__)


@dataclass
class DataReport:
    """Counts of inputs and outputs, and each dropped item with its reason (and the step that dropped it).

    ``excluded`` items are left out by the configured selection (e.g. RAVDESS's video-only and song
    files under ``data.modalities=[full-AV]``, ``data.vocal_channels=[speech]``), not for a fault: they
    are counted and listed with their reason, without a warning each. ``num_in`` counts every item
    seen: ``num_in = num_out + len(dropped) + len(excluded)`` for an index.
    """

    dataset: str
    num_in: int = 0
    kept: list[str] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)
    excluded: list[dict] = field(default_factory=list)

    def keep(self, item: str) -> None:
        self.kept.append(item)

    def drop(self, item: str, reason: str, step: str = "index") -> None:
        self.dropped.append({"item": str(item), "step": step, "reason": reason})
        log.warning("%s: dropped %s (%s: %s)", self.dataset, item, step, reason)

    def exclude(self, item: str, reason: str, step: str = "selection") -> None:
        self.excluded.append({"item": str(item), "step": step, "reason": reason})

    def excluded_by_reason(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.excluded:
            out[d["reason"]] = out.get(d["reason"], 0) + 1
        return out

    @property
    def num_out(self) -> int:
        return len(self.kept)

    def reasons(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.dropped:
            out[d["step"]] = out.get(d["step"], 0) + 1
        return out

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "num_in": self.num_in, "num_out": self.num_out,
                "dropped_by_step": self.reasons(), "excluded_by_reason": self.excluded_by_reason(),
                "dropped": self.dropped, "excluded": self.excluded, "kept": self.kept}

    def write(self, path: str | Path) -> Path:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1))
        if self.excluded:
            log.info("%s: %d of %d files left out by the selection (%s); listed in %s", self.dataset,
                     len(self.excluded), self.num_in,
                     ", ".join(f"{n} {why}" for why, n in self.excluded_by_reason().items()), path)
        return Path(path)


def check_media(path: str | Path, need_audio: bool = True, allow_vfr: bool = False) -> str | None:
    """Cheap checks without decoding; the reason a file is unusable, or None when it looks fine."""
    p = Path(path)
    if not p.exists():
        return "file not found (not downloaded?)"
    if p.stat().st_size == 0:
        return "zero-length file (re-download or re-render it)"
    try:
        info = probe_video(p)
    except VideoReadError as e:
        return f"unreadable: {e.reason} (re-download it)"
    if not info.get("has_video", True):
        if not info["has_audio"]:  # a truncated mp4 header keeps neither stream
            return "no video or audio stream: damaged header (truncated or corrupt file; re-download it)"
        return "audio-only file (no video stream; give the video file)"
    if info["num_frames"] <= 0 or info["duration_s"] <= 0:
        return "video stream has no frames (re-download or re-render it)"
    if info["variable_fps"] and not allow_vfr:
        # frames are picked by index at the average rate, which is wrong for VFR: refuse rather than mis-time
        return (f"variable frame rate (average {info['fps']:.2f} fps); convert it to constant 25 fps first "
                f"(ffmpeg -i IN -vsync cfr -r 25 OUT)")
    if need_audio and not info["has_audio"]:
        return "no audio stream"
    return None
