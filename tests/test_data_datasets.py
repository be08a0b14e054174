# ruff: noqa: F811  (pytest fixtures imported from tests.data_fixtures)
"""Real-dataset DataModules on small fixtures in each data set's exact on-disk layout (built from SynthTalk)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from core.video_io import read_video
from datamodules.celebvhq import CelebVHQDataModule
from datamodules.clips import decode_record
from datamodules.folder import FolderDataModule
from datamodules.hdtf import HDTFDataModule, parse_intervals
from datamodules.ravdess import RAVDESSDataModule, decode_name
from datamodules.splits import make_split
from tests.data_fixtures import TINY, bad_files, synth_root, synth_video  # noqa: F401  (fixture)

LOADER = dict(image_size=32, clip=dict(num_frames=5, num_motion_frames=3), batch_size=2, samples_per_video=1)


def _dropped(dm):
    return {d["item"].split("/")[-1]: d["reason"] for d in dm.report.dropped}


def _truncate(src, dst):
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])


# ---------------------------------------------------------------------------- RAVDESS


def test_ravdess_name_decoding():
    m = decode_name("01-01-05-02-02-01-12")
    assert m == {"modality": "full-AV", "vocal_channel": "speech", "emotion": "angry", "intensity": "strong",
                 "statement": "Dogs are sitting by the door", "repetition": 1, "actor": 12, "gender": "female"}
    for bad in ("01-01-09-01-01-01-01", "1-01-01-01-01-01-01", "01-01-01-01-01-01-25"):
        with pytest.raises(ValueError):
            decode_name(bad)


def test_ravdess_index_filter_report_and_batches(synth_root, tmp_path):
    root = tmp_path / "RAVDESS"
    a1, a2, a3 = root / "Actor_01", root / "Actor_02", root / "Actor_03"
    for d in (a1, a2, a3):
        d.mkdir(parents=True)
    shutil.copy(synth_video(synth_root, "astronaut_00"), a1 / "01-01-03-02-01-01-01.mp4")
    shutil.copy(synth_video(synth_root, "chelsea_00"), a2 / "01-01-05-01-02-02-02.mp4")
    shutil.copy(synth_video(synth_root, "chelsea_00"), a2 / "02-01-05-01-02-02-02.mp4")  # video-only: not selected
    shutil.copy(synth_video(synth_root, "chelsea_00"), a2 / "01-02-05-01-02-02-02.mp4")  # song: not selected
    shutil.copy(synth_video(synth_root, "chelsea_00"), a2 / "notes.mp4")                 # bad name
    shutil.copy(synth_video(synth_root, "chelsea_00"), a3 / "01-01-01-01-01-01-04.mp4")  # actor 04 in Actor_03
    bad = bad_files(tmp_path / "bad")
    shutil.copy(bad / "silent.mp4", a3 / "01-01-01-01-01-02-03.mp4")
    shutil.copy(bad / "empty.mp4", a3 / "01-01-02-01-01-02-03.mp4")
    _truncate(synth_video(synth_root, "astronaut_00"), a3 / "01-01-04-01-01-02-03.mp4")
    dm = RAVDESSDataModule(str(root), cache_dir=str(tmp_path / "cache"), test_count=1, **LOADER)
    dm.prepare_data()
    dropped = _dropped(dm)
    # every file is accounted for: 2 kept, 5 dropped (faults), 2 left out by the selection (issue 19, item 14)
    assert dm.report.num_in == 9 and dm.report.num_out == 2
    excluded = {e["item"].split("/")[-1]: e["reason"] for e in dm.report.excluded}
    assert excluded == {"02-01-05-01-02-02-02.mp4": "video-only (data.modalities=['full-AV'])",
                        "01-02-05-01-02-02-02.mp4": "song (data.vocal_channels=['speech'])"}
    assert "bad file name" in dropped["notes.mp4"]
    assert "Actor_03" in dropped["01-01-01-01-01-01-04.mp4"]
    assert "no audio stream" in dropped["01-01-01-01-01-02-03"]
    assert "zero-length" in dropped["01-01-02-01-01-02-03"]
    assert "unreadable" in dropped["01-01-04-01-01-02-03"]
    report = json.loads(dm.report_path.read_text())
    assert report["num_out"] == 2 and report["dropped_by_step"] == {"annotation": 2, "media": 3}
    assert report["excluded_by_reason"] == {"video-only (data.modalities=['full-AV'])": 1,
                                            "song (data.vocal_channels=['speech'])": 1}
    assert report["num_in"] == report["num_out"] + len(report["dropped"]) + len(report["excluded"])
    train, test = dm.records("train"), dm.records("test")
    assert len(train) == 1 and len(test) == 1 and {r.video_id for r in train + test} == {
        "01-01-03-02-01-01-01", "01-01-05-01-02-02-02"}
    torch.manual_seed(0)
    b = next(iter(dm.train_dataloader()))
    assert b["frames"].shape == (1, 5, 3, 32, 32) and b["motion_frames"].shape == (1, 3, 3, 32, 32)
    assert b["meta"][0]["emotion"] in ("happy", "angry") and b["landmark_mask"].sum() == 0
    item = next(iter(dm.predict_dataloader()))
    gt = read_video(item["meta"][0]["gt_path"])
    assert gt.frames.shape == (50, 32, 32, 3) and int(item["num_frames"][0]) == 50


def test_wrong_root_names_path_and_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="Expected layout"):
        RAVDESSDataModule(str(tmp_path / "nope"), **LOADER).prepare_data()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "empty")):
        RAVDESSDataModule(str(tmp_path / "empty"), **LOADER).prepare_data()


# ---------------------------------------------------------------------------- HDTF


def test_hdtf_time_parsing():
    assert parse_intervals(["00:30-01:00", "1:02:03-1:02:04.5"]) == [(30.0, 60.0), (3723.0, 3724.5)]
    for bad in (["00:30"], ["01:00-00:30"], ["aa:bb-00:10"]):
        with pytest.raises(ValueError):
            parse_intervals(bad)


def _hdtf(root, synth_root):
    ann, vids = root / "HDTF_dataset", root / "videos"
    ann.mkdir(parents=True)
    vids.mkdir()
    shutil.copy(synth_video(synth_root, "astronaut_00"), vids / "RD_Radio1_000.mp4")       # raw, 2 s
    shutil.copy(synth_video(synth_root, "chelsea_00"), vids / "WDA_Cat_000_0.mp4")          # already cut
    (ann / "RD_video_url.txt").write_text("RD_Radio1_000.mp4 https://www.youtube.com/watch?v=x\n")
    (ann / "RD_annotion_time.txt").write_text("RD_Radio1_000.mp4 00:00-00:01 00:01-00:02\n")
    (ann / "RD_crop_wh.txt").write_text("RD_Radio1_000_0.mp4 16 64 16 64\nRD_Radio1_000_1.mp4 x y\n")
    (ann / "RD_resolution.txt").write_text("RD_Radio1_000.mp4 128\n")  # windows given for 128 px: halved here
    (ann / "WDA_annotion_time.txt").write_text("WDA_Cat_000.mp4 00:03-00:05\nWDA_Bad_000.mp4 00:05-00:01\n")
    (ann / "WRA_annotion_time.txt").write_text("WRA_Gone_000.mp4 00:00-00:01\n")


def test_hdtf_annotations_cut_crop_and_splits(synth_root, tmp_path):
    root = tmp_path / "HDTF"
    _hdtf(root, synth_root)
    dm = HDTFDataModule(str(root), split="mcdm", cache_dir=str(tmp_path / "cache"), test_fraction=0.34, **LOADER)
    dm.prepare_data()
    kept = set(dm.report.kept)
    assert kept == {"RD_Radio1_000_0", "RD_Radio1_000_1", "WDA_Cat_000_0"}
    dropped = _dropped(dm)
    assert "ends before it starts" in dropped["WDA_annotion_time.txt:2 (WDA_Bad_000)"]
    assert "not found" in dropped["WRA_Gone_000_0"]
    assert "bad crop row" in dropped["RD_crop_wh.txt:2"]
    train, test = dm.records("train"), dm.records("test")
    assert len(test) == 1 and {r.video_id for r in train} | {r.video_id for r in test} == kept
    files = [dm.split_paths[s] for s in ("train", "test")]
    assert [f.read_text().split() for f in files] == [[r.video_id for r in train], [r.video_id for r in test]]
    rec = {r.video_id: r for r in train + test}
    frames, audio = decode_record(rec["RD_Radio1_000_1"], 32)
    src = read_video(rec["RD_Radio1_000_1"].path)
    assert frames.shape == (25, 32, 32, 3) and len(audio) == 16000
    # clip 1 starts at 1 s; crop rows of clip 1 are bad, so it is the full (square) frame
    import cv2

    want = cv2.resize(src.frames[25], (32, 32), interpolation=cv2.INTER_AREA)
    assert np.abs(frames[0].astype(int) - want.astype(int)).mean() < 1.0
    f0, _ = decode_record(rec["RD_Radio1_000_0"], 32)
    want0 = cv2.resize(src.frames[0][8:40, 8:40], (32, 32))  # window 16..80 of 128 px -> 8..40 of 64 px
    assert np.abs(f0[0].astype(int) - want0.astype(int)).mean() < 1.0
    # the Loopy split reuses nothing of MCDM's files and draws its own (all 3 when fewer than 100)
    loopy = HDTFDataModule(str(root), split="loopy", cache_dir=str(tmp_path / "cache"), **LOADER)
    assert len(loopy.records("test")) == 3 and loopy.records("train") == []


def test_split_is_reproducible_and_grouped():
    ids = [f"v{i:03d}" for i in range(50)]
    tr, te = make_split(ids, seed=1, test_fraction=0.1)
    assert len(te) == 5 and make_split(ids, seed=1, test_fraction=0.1) == (tr, te)
    assert make_split(ids, seed=2, test_fraction=0.1)[1] != te
    groups = [f"g{i // 5}" for i in range(50)]
    tr, te = make_split(ids, seed=0, test_count=7, groups=groups)
    g_te = {groups[ids.index(i)] for i in te}
    assert not g_te & {groups[ids.index(i)] for i in tr} and len(te) == 10


# ---------------------------------------------------------------------------- CelebV-HQ


def test_celebvhq_json_cut_crop_and_attributes(synth_root, tmp_path):
    root = tmp_path / "CelebV-HQ"
    (root / "raw").mkdir(parents=True)
    (root / "35666").mkdir()
    shutil.copy(synth_video(synth_root, "astronaut_00"), root / "raw/ytbA.mp4")
    shutil.copy(synth_video(synth_root, "chelsea_00"), root / "35666/ytbB_0.mp4")
    info = {"meta_info": {"appearance_mapping": ["blurry", "smiling"], "action_mapping": ["talk", "blink"]},
            "clips": {
                "ytbA_0": {"ytb_id": "ytbA", "duration": {"start_sec": 0.4, "end_sec": 1.6},
                           "bbox": {"top": 0.25, "bottom": 0.75, "left": 0.25, "right": 0.75},
                           "attributes": {"appearance": [0, 1], "action": [1, 0],
                                          "emotion": {"sep_flag": False, "labels": "happy"}}},
                "ytbB_0": {"ytb_id": "ytbB", "duration": {"start_sec": 3.0, "end_sec": 5.0},
                           "bbox": {"top": 0.1, "bottom": 0.9, "left": 0.1, "right": 0.9}, "attributes": {}},
                "ytbC_0": {"ytb_id": "ytbC", "duration": {"start_sec": 2.0, "end_sec": 1.0},
                           "bbox": {"top": 0.1, "bottom": 0.9, "left": 0.1, "right": 0.9}},
                "ytbD_0": {"ytb_id": "ytbD", "duration": {"start_sec": 0.0, "end_sec": 1.0},
                           "bbox": {"top": 0.1, "bottom": 0.9, "left": 0.1, "right": 0.9}},
            }}
    (root / "celebvhq_info.json").write_text(json.dumps(info))
    dm = CelebVHQDataModule(str(root), cache_dir=str(tmp_path / "cache"), bbox_expand=0.0, **LOADER)
    dm.prepare_data()
    assert set(dm.report.kept) == {"ytbA_0", "ytbB_0"}
    dropped = _dropped(dm)
    assert "bad json entry" in dropped["ytbC_0"] and "not found" in dropped["ytbD_0"]
    rec = {r.video_id: r for r in dm.records("train") + dm.records("test")}
    a = rec["ytbA_0"]
    assert a.meta["appearance"] == ["smiling"] and a.meta["action"] == ["talk"] and a.meta["emotion"] == "happy"
    frames, audio = decode_record(a, 32)
    assert frames.shape == (30, 32, 32, 3) and len(audio) == int(1.2 * 16000)
    import cv2

    src = read_video(a.path).frames
    want = cv2.resize(src[10][16:48, 16:48], (32, 32))  # 0.4 s = frame 10; box 0.25..0.75 of 64 px
    assert np.abs(frames[0].astype(int) - want.astype(int)).mean() < 1.0
    assert decode_record(rec["ytbB_0"], 32)[0].shape[0] == 50  # pre-cut clip: used whole


# ---------------------------------------------------------------------------- folder


def test_folder_identities_bad_files_and_own_split(synth_root, tmp_path):
    root = tmp_path / "wild"
    for ident, vid in (("alice", "astronaut_00"), ("bob", "chelsea_00")):
        (root / ident).mkdir(parents=True)
        shutil.copy(synth_video(synth_root, vid), root / ident / "clip1.mp4")
    bad = bad_files(root / "broken")
    _truncate(synth_video(synth_root, "chelsea_00"), bad / "truncated.mp4")
    dm = FolderDataModule(str(root), cache_dir=str(tmp_path / "cache"), test_fraction=0.5, **LOADER)
    dm.prepare_data()
    assert dm.report.num_in == 7 and set(dm.report.kept) == {"alice__clip1", "bob__clip1"}
    reasons = _dropped(dm)
    assert "variable frame rate" in reasons["broken__vfr"]
    assert "audio-only" in reasons["broken__audio_only"] and "no audio stream" in reasons["broken__silent"]
    assert "zero-length" in reasons["broken__empty"] and "unreadable" in reasons["broken__truncated"]
    ids = {r.identity for r in dm.records("train") + dm.records("test")}
    assert ids == {"alice", "bob"} and len(dm.records("test")) == 1
    # a data set that ships its split files is used as given
    (root / "splits").mkdir()
    (root / "splits/train.txt").write_text("alice__clip1\n")
    (root / "splits/test.txt").write_text("bob__clip1\n")
    dm2 = FolderDataModule(str(root), cache_dir=str(tmp_path / "cache2"), **LOADER)
    assert [r.video_id for r in dm2.records("test")] == ["bob__clip1"]
