"""RAVDESS (Livingstone & Russo 2018), one of Loopy's test sets (Sec. 4): emotional speech by 24 actors.

Layout: ``root/Actor_NN/MM-VV-EE-II-SS-RR-AA.mp4``. The seven fields of a file name are
modality (01 full-AV, 02 video-only, 03 audio-only), vocal channel (01 speech, 02 song),
emotion, intensity (01 normal, 02 strong), statement, repetition and actor (odd = male).
Full-AV speech is used by default; emotion and intensity go into ``meta``.
"""

from __future__ import annotations

import re

from datamodules.base import IndexedDataModule
from datamodules.clips import VideoRecord

EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
            "07": "disgust", "08": "surprised"}
MODALITIES = {"01": "full-AV", "02": "video-only", "03": "audio-only"}
CHANNELS = {"01": "speech", "02": "song"}
INTENSITIES = {"01": "normal", "02": "strong"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


def decode_name(stem: str) -> dict:
    """The seven fields of a RAVDESS file name; ValueError naming what is wrong."""
    m = NAME.match(stem)
    if not m:
        raise ValueError(f"{stem!r} is not MM-VV-EE-II-SS-RR-AA")
    mo, vc, em, it, st, rp, ac = m.groups()
    for val, table, what in ((mo, MODALITIES, "modality"), (vc, CHANNELS, "vocal channel"), (em, EMOTIONS, "emotion"),
                             (it, INTENSITIES, "intensity"), (st, STATEMENTS, "statement")):
        if val not in table:
            raise ValueError(f"{stem!r}: unknown {what} code {val}")
    if not 1 <= int(ac) <= 24 or rp not in ("01", "02"):
        raise ValueError(f"{stem!r}: actor must be 01-24 and repetition 01-02")
    return {"modality": MODALITIES[mo], "vocal_channel": CHANNELS[vc], "emotion": EMOTIONS[em],
            "intensity": INTENSITIES[it], "statement": STATEMENTS[st], "repetition": int(rp), "actor": int(ac),
            "gender": "male" if int(ac) % 2 else "female"}


class RAVDESSDataModule(IndexedDataModule):
    """Config keys: ``root``, ``modalities`` (default [full-AV]), ``vocal_channels`` (default [speech]),
    ``test_count`` (Loopy: 100 random test videos) or ``test_fraction``, ``split_by_identity``
    (keep each actor on one side), plus the loader keys."""

    name = "ravdess"
    LAYOUT = "  <root>/Actor_01/01-01-03-02-01-01-01.mp4 ... <root>/Actor_24/...   (MM-VV-EE-II-SS-RR-AA.mp4)"

    def __init__(self, root: str, modalities: list | None = None, vocal_channels: list | None = None, **kw):
        kw.setdefault("test_count", 100)
        super().__init__(root, **kw)
        self.modalities = list(modalities or ["full-AV"])
        self.vocal_channels = list(vocal_channels or ["speech"])

    def scan(self, report) -> list[VideoRecord]:
        out = []
        files = sorted(self.root.glob("Actor_*/*.mp4"))
        if not files:
            raise FileNotFoundError(f"data.root={self.root}: no Actor_NN/*.mp4 files. Expected layout:\n{self.LAYOUT}")
        for p in files:
            try:
                meta = decode_name(p.stem)
            except ValueError as e:
                report.num_in += 1
                report.drop(str(p), f"bad file name: {e}", "annotation")
                continue
            folder = p.parent.name.split("_")[-1]
            if not folder.isdigit() or meta["actor"] != int(folder):
                report.num_in += 1
                report.drop(str(p), f"actor {meta['actor']:02d} in the name but folder {p.parent.name}", "annotation")
                continue
            if meta["modality"] not in self.modalities:  # a selection, not a fault: counted, not warned about
                report.num_in += 1
                report.exclude(str(p), f"{meta['modality']} (data.modalities={self.modalities})")
                continue
            if meta["vocal_channel"] not in self.vocal_channels:
                report.num_in += 1
                report.exclude(str(p), f"{meta['vocal_channel']} (data.vocal_channels={self.vocal_channels})")
                continue
            out.append(VideoRecord(video_id=p.stem, path=str(p), dataset=self.name, identity=f"actor{meta['actor']:02d}",
                                   meta=meta))
        return out
