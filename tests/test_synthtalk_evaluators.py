"""SynthTalk evaluators: the train-once cache, its damage and concurrency handling, the scorers'
protocol and labels, the resolution order official > synthtalk > stand-in, the SyncNet key layout,
and that a trained SyncNet's reported offset follows the audio shift."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from metrics import registry
from metrics.base import comparable
from metrics.sync import S
from metrics.synthtalk import cache as cache_mod
from metrics.synthtalk import ensure_evaluators
from metrics.synthtalk.config import EvaluatorConfig, cache_key
from metrics.synthtalk.lab import FILES, Lab, load_sync, open_lab

REPO = Path(__file__).resolve().parents[1]
# the photos' mouths are a few pixels wide at 32 px: train on the cat and a drawn face, hold the astronaut out
DATA = dict(
    image_size=32,
    num_identities=3,
    clips_per_identity=1,
    seconds_per_clip=2.0,
    test_identities=["astronaut"],
    test_clips_per_identity=1,
    test_seconds=2.0,
)
#: Few steps: enough to exercise every file of the cache, not to learn.
QUICK = {"face": {"steps": 3, "width": 8}, "sync": {"steps": 2, "batch": 4}, "skill": False}
#: A face network that tells the tiny set's faces from non-faces and follows their head motion (at 300
#: steps it took heavily blurred faces for faces at some seeds); a SyncNet that only has to load and run.
TRAINED = {
    "face": {"steps": 500, "width": 8, "pairs": 16, "negatives": 32},
    "sync": {"steps": 10, "batch": 4},
    "skill": True,
}


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    from datamodules.synthtalk import SynthTalk

    return SynthTalk(tmp_path_factory.mktemp("synthtalk_lab"), **DATA).build(progress=False)


@pytest.fixture(scope="module")
def trained(synth) -> Path:
    return ensure_evaluators(synth, TRAINED, progress=False)


def _video(synth: Path, video_id: str):
    from core.video_io import read_video

    return read_video(synth / "videos" / f"{video_id}.mp4")


def _weights(path: Path) -> dict:
    blob = torch.load(path, weights_only=True)
    return blob.get("state_dict", blob)


def _same(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- the cache
def test_cache_is_keyed_and_a_second_call_trains_nothing(synth, monkeypatch):
    first = ensure_evaluators(synth, QUICK, progress=False)
    assert first.parent == synth / "evaluators"
    assert {FILES[k] for k in ("config", "face", "sync", "timings")} <= {p.name for p in first.iterdir()}

    def no_training(*a, **k):
        raise AssertionError("trained although the cache holds this config")

    monkeypatch.setattr("metrics.synthtalk.face_train.train_facenet", no_training)
    monkeypatch.setattr("metrics.synthtalk.syncnet.train_syncnet", no_training)
    assert ensure_evaluators(synth, QUICK, progress=False) == first
    # another config, another folder (and it would have to train)
    other = dict(QUICK, seed=1)
    assert cache_mod.evaluator_folder(synth, other) != first
    with pytest.raises(AssertionError, match="trained although"):
        ensure_evaluators(synth, other, progress=False)


def test_cache_key_follows_generator_version_config_and_code(monkeypatch):
    params = {"version": 2, "image_size": 32}
    cfg = EvaluatorConfig.from_dict(QUICK)
    key = cache_key(params, cfg)
    assert cache_key(dict(params, version=3), cfg) != key
    assert cache_key(params, EvaluatorConfig.from_dict({**QUICK, "sync": {"steps": 3, "batch": 4}})) != key
    assert (
        cache_key(params, EvaluatorConfig.from_dict({**QUICK, "skill": True})) == key
    )  # skill changes no weight
    monkeypatch.setattr("metrics.synthtalk.config.CODE_VERSION", 999)
    assert cache_key(params, cfg) != key


@pytest.mark.parametrize("name", ["face", "sync"])
@pytest.mark.parametrize("damage", ["truncated", "not-torch", "wrong-keys"])
def test_damaged_cached_file_is_named_retrained_and_nothing_else_lost(synth, name, damage):
    folder = ensure_evaluators(synth, QUICK, progress=False)
    path, sibling = folder / FILES[name], folder / FILES["sync" if name == "face" else "face"]
    good, sibling_bytes = _weights(path), sibling.read_bytes()
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    elif damage == "not-torch":
        path.write_text("<html>404</html>")
    else:
        torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.warns(UserWarning, match=rf"{FILES[name]}.*damaged cached SynthTalk evaluator, retraining"):
        assert ensure_evaluators(synth, QUICK, progress=False) == folder
    assert _same(_weights(path), good)  # retrained: deterministic for the seed
    assert sibling.read_bytes() == sibling_bytes
    assert Lab(folder).face() is not None and Lab(folder).syncnet() is not None


def test_two_processes_at_once_build_one_intact_cache(synth, tmp_path):
    cfg = dict(QUICK, seed=7)  # a config nobody trained yet in this module
    script = (
        "import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stderr)\n"
        "from metrics.synthtalk import ensure_evaluators\n"
        f"print(ensure_evaluators({str(synth)!r}, {cfg!r}, progress=False))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=tmp_path,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    folders = {o[0].strip().splitlines()[-1] for o in outs}
    assert len(folders) == 1
    folder = Path(folders.pop())
    trained = sum(o[1].count("trained the SynthTalk") for o in outs)
    assert trained == 2, [o[1][-1500:] for o in outs]  # face + SyncNet, by one of the two
    lab = Lab(folder)
    assert lab.face() is not None and lab.syncnet() is not None
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary left


def test_atomic_write_keeps_the_mode_open_would_give(tmp_path):
    old = os.umask(0o027)
    try:
        cache_mod.atomic_write(tmp_path / "a.json", lambda t: Path(t).write_text("{}"))
        with open(tmp_path / "b.json", "w") as f:
            f.write("{}")
    finally:
        os.umask(old)
    assert (
        (tmp_path / "a.json").stat().st_mode & 0o777 == (tmp_path / "b.json").stat().st_mode & 0o777 == 0o640
    )


def test_bad_inputs_name_the_file_or_key(tmp_path, synth):
    with pytest.raises(FileNotFoundError, match=r"params\.json: missing; .* not a built SynthTalk folder"):
        ensure_evaluators(tmp_path)
    with pytest.raises(ValueError, match=r"evaluators\.face: unknown keys \['stepz'\]"):
        ensure_evaluators(synth, {"face": {"stepz": 3}})
    with pytest.raises(FileNotFoundError, match=r"config\.json: missing; .*ensure_evaluators"):
        Lab(tmp_path)
    from metrics.landmarks import get_backend

    with pytest.raises(ValueError, match="the SynthTalk face network: eval.lab / --lab"):
        get_backend("synthtalk")


# ----------------------------------------------------------------------------- SyncNet layout
def test_syncnet_file_has_the_syncnet_v2_key_layout_at_its_width(trained):
    lab = Lab(trained)
    state = torch.load(trained / FILES["sync"], weights_only=True)
    official = S().state_dict()
    assert list(state) == list(official)  # same module and key names, same order
    reduced = S(width=lab.config.sync.width).state_dict()
    assert all(state[k].shape == reduced[k].shape for k in state)
    assert load_sync(trained / FILES["sync"], lab.config.sync.width) is not None
    with pytest.raises(RuntimeError, match="size mismatch"):
        S().load_state_dict(state)  # a reduced network: the official S cannot take it


# ----------------------------------------------------------------------------- scorers
GROUPS = ("Sync", "Motion", "FID", "FVD-I", "FVD-R", "E-FID")


def test_scorers_follow_the_protocol_and_label_synthtalk(trained, synth):
    gt = _video(synth, "face02_test0")
    for group in GROUPS:
        scorer = registry.build(group, None, lab=trained)
        entry = registry.SCORERS[group]
        assert (scorer.kind, scorer.needs_gt) == (entry.kind, entry.needs_gt)
        assert scorer.backbone.startswith("synthtalk:") and open_lab(trained).key in scorer.backbone
        assert not comparable(scorer.backbone, getattr(scorer, "deviations", ()))
        assert "SynthTalk" in scorer.protocol
        if scorer.kind == "set":
            f = scorer.features(gt)
            assert f.ndim == 2 and np.isfinite(f).all()
        else:
            out = scorer.score_video(gt, gt)
            assert set(entry.metrics) <= set(out) and all(np.isfinite(out[m]) for m in entry.metrics)
    assert registry.build("Sync", None, lab=trained).backbone.startswith("synthtalk:syncnet-w0.0625:")


def test_evaluate_marks_synthtalk_numbers_not_comparable(trained, synth):
    from metrics.evaluate import evaluate_folders

    res = evaluate_folders(
        synth / "videos",
        synth / "videos",
        metrics=["Sync-C", "Glo", "FID", "E-FID"],
        n_boot=10,
        progress=False,
        lab=trained,
        standin=False,
    )
    for m in ("Sync-C", "Glo", "FID", "E-FID"):
        s = res.summary[m]
        assert s["backbone"].startswith("synthtalk:") and s["comparable_to_paper"] is False
        assert np.isfinite(s["mean"])


def test_resolution_order_official_then_synthtalk_then_standin(trained, tmp_path):
    official = tmp_path / "syncnet_v2.model"
    torch.save(S().state_dict(), official)
    assert registry.build("Sync", {"syncnet_v2": str(official)}, lab=trained).backbone == str(official)
    assert registry.build("Sync", None, lab=trained).backbone.startswith("synthtalk:")
    assert registry.build("Sync", None, lab=None).backbone.startswith("standin:")
    # every group of the lab: any given official file wins
    for group, (_, keys) in registry.LAB_SCORERS.items():
        files = {k: str(official) for k in keys}  # resolve() only asks that the file exists
        assert registry.uses_lab(group, None, trained) and not registry.uses_lab(group, files, trained)
        assert not registry.uses_lab(group, None, None)
    # no official file and no stand-in allowed: the lab covers the groups it scores, nothing else
    assert registry.required_weight_keys(["FID", "SSIM", "Smo"], None, trained) == ["amt_s"]


# ----------------------------------------------------------------------------- behaviour
CARTOON_BOX = np.array([8.0, 6.0, 24.0, 26.0])


def _cartoon(mouth_open: np.ndarray) -> np.ndarray:
    """32 px frames of a flat face whose dark mouth bar is as tall as SynthTalk's ground-truth opening."""
    frames = np.full((len(mouth_open), 32, 32, 3), 200, np.uint8)
    for t, m in enumerate(mouth_open):
        frames[t, 20 : 21 + int(round(9 * m)), 10:22] = 20
    return frames


def _offsets(model, clip, shifts):
    from metrics.sync import embed, mfcc_features, sync_from_features
    from metrics.synthtalk.skill import delayed
    from metrics.synthtalk.syncnet import lip_crops

    frames = _cartoon(clip.gt["mouth_open"])
    crops = lip_crops(frames, np.repeat(CARTOON_BOX[None], len(frames), 0))
    audios = [delayed(clip.audio, k) for k in shifts]
    return [sync_from_features(*embed(model, crops, mfcc_features(a), len(a)))["sync_offset"] for a in audios]


def test_trained_syncnet_reports_an_offset_that_follows_the_audio_shift(synth):
    """SynthTalk speech and its ground-truth mouth opening (drawn as a cartoon mouth, which 40 steps
    learn; the real 32 px faces need the default run, whose skill.json measures the same thing):
    audio delayed by k frames must read as offset -k (metrics/sync.py: positive = audio ahead) on
    held-out test clips; the untrained network does not."""
    from metrics.sync import mfcc_features
    from metrics.synthtalk.data import SynthTalkFolder
    from metrics.synthtalk.syncnet import SyncTrainSet, train_syncnet

    data = SynthTalkFolder(synth)
    train, test = data.clips("train"), data.clips("test")
    frames = [_cartoon(c.gt["mouth_open"]) for c in train]
    boxes = [np.repeat(CARTOON_BOX[None], len(f), 0) for f in frames]
    sync = EvaluatorConfig().sync
    args = dict(
        width=sync.width,
        batch=8,
        lr=sync.lr,
        margin=sync.margin,
        shift_negatives=sync.shift_negatives,
        other_negatives=sync.other_negatives,
        min_shift=sync.min_shift,
        seed=0,
        progress=False,
    )
    train_set = SyncTrainSet(frames, boxes, [mfcc_features(c.audio) for c in train])
    shifts = (-8, 0, 8)
    untrained = train_syncnet(train_set, steps=0, **args)
    trained = train_syncnet(train_set, steps=40, **args)
    for clip in test:
        assert _offsets(trained, clip, shifts) == pytest.approx([8, 0, -8], abs=1), clip.video_id
    assert any(_offsets(untrained, c, shifts) != pytest.approx([8, 0, -8], abs=1) for c in test)


def test_syncnet_training_pushes_lips_away_from_the_zero_padding(synth, monkeypatch):
    """calc_pdist pads the audio features with zero vectors beyond the clip; every lip window meets the
    zero vector as a negative, so that a lip embedding near the origin cannot make offset +-15 win."""
    from metrics.sync import mfcc_features
    from metrics.synthtalk import syncnet
    from metrics.synthtalk.data import SynthTalkFolder

    train = SynthTalkFolder(synth).clips("train")
    frames = [_cartoon(c.gt["mouth_open"]) for c in train]
    train_set = syncnet.SyncTrainSet(
        frames,
        [np.repeat(CARTOON_BOX[None], len(f), 0) for f in frames],
        [mfcc_features(c.audio) for c in train],
    )
    seen = []
    real_loss = syncnet.contrastive_loss
    monkeypatch.setattr(
        syncnet, "contrastive_loss", lambda d, p, m: seen.append((d, p)) or real_loss(d, p, m)
    )
    batch, shifts, others = 3, 2, 1
    lips = {}
    real_forward = syncnet.S.forward_lip
    monkeypatch.setattr(syncnet.S, "forward_lip", lambda self, x: lips.setdefault("v", real_forward(self, x)))
    syncnet.train_syncnet(
        train_set,
        width=0.0625,
        steps=1,
        batch=batch,
        lr=1e-3,
        margin=30.0,
        shift_negatives=shifts,
        other_negatives=others,
        min_shift=2,
        seed=0,
        progress=False,
    )
    dist, positive = seen[0]
    assert len(dist) == batch * (1 + shifts + others) + batch and int(positive.sum()) == batch
    assert not positive[-batch:].any()
    assert torch.allclose(dist[-batch:], lips["v"].norm(dim=1), atol=1e-4)


def test_skill_report_is_written_and_flattens_for_mlflow(trained):
    from metrics.synthtalk.skill import flatten

    skill = json.loads((trained / FILES["skill"]).read_text())
    assert {"face", "sync", "features", "machine", "date", "train_time"} <= set(skill)
    assert skill["sync"]["n_pairs"] == 17 * len(skill["face"]["per_clip"])
    flat = flatten(skill)
    assert all(k.startswith("evaluators/") and np.isfinite(v) for k, v in flat.items())
    assert "evaluators/sync_offset_within_1" in flat and "evaluators/nme_trained" in flat
    # the held-out error is measured when the network found the face in a held-out clip; a tiny network may
    # miss them all (it depends on the CPU's arithmetic), and then there is no error to log
    held_out_found = any(c["held_out"] and np.isfinite(c["nme"]) for c in skill["face"]["per_clip"])
    assert ("evaluators/nme_held_out" in flat) == held_out_found


def test_skill_of_a_face_network_that_finds_no_face_is_measured_not_crashed(trained, synth, monkeypatch):
    from metrics.synthtalk.data import SynthTalkFolder
    from metrics.synthtalk.skill import face_skill, sync_skill

    monkeypatch.setattr("metrics.synthtalk.tracker.PRESENCE_THRESHOLD", 1.1)  # no frame is a face
    clips = SynthTalkFolder(synth).clips("test")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean over no found frame
        face = face_skill(Lab(trained), clips)
    assert face["Glo"] == {"n": 0} and face["Exp"] == {"n": 0} and face["found"]["clean"] == 0.0
    sync = sync_skill(Lab(trained), clips)
    assert sync["offset_within_1_frame"] == 0.0 and sync["n_pairs"] == 17 * len(clips)


def test_face_training_pairs_stay_in_one_clip_and_half_reach_across_it():
    """Half the pairs are consecutive frames (Exp's differences), half a frame and any frame of its
    clip (Glo's whole-clip variance); no pair crosses a clip boundary."""
    from metrics.synthtalk.face_train import FAR_SHARE, clip_bounds, pair_starts, sample_pairs

    clip_ids = np.repeat([7, 3, 5], [50, 3, 40])  # contiguous clips, ids in any order
    first_of, last_of = (torch.from_numpy(b) for b in clip_bounds(clip_ids))
    assert (int(first_of[0]), int(last_of[0]), int(first_of[52]), int(last_of[52])) == (0, 49, 50, 52)
    assert (int(first_of[92]), int(last_of[92])) == (53, 92)
    starts = torch.from_numpy(pair_starts(clip_ids))
    gen = torch.Generator().manual_seed(0)
    first, second, far = sample_pairs(starts, torch.ones(len(starts)), first_of, last_of, 4000, FAR_SHARE, gen)
    ids = torch.from_numpy(clip_ids)
    assert torch.equal(ids[first], ids[second])
    assert torch.equal(second[~far], first[~far] + 1)
    assert abs(float(far.float().mean()) - FAR_SHARE) < 0.03
    in_long = far & (ids[first] == 7)
    # any frame of the 50-frame clip: |i - j| of two uniform frames averages (50^2 - 1) / 150 ~ 16.7
    assert 14 < float((second[in_long] - first[in_long]).abs().float().mean()) < 19
    assert (int(second[in_long].min()), int(second[in_long].max())) == (0, 49)


def test_motion_slope_reads_a_shrunk_track():
    from metrics.synthtalk.skill import motion_slope

    rng = np.random.default_rng(0)
    truth = rng.random((40, 68, 2))
    shrunk = truth.mean(0) + 0.7 * (truth - truth.mean(0)) + 0.3  # shrunk toward the mean, then shifted
    shrunk[5] = np.nan  # a frame without a face is left out
    assert motion_slope(truth, truth) == pytest.approx(1.0)
    assert motion_slope(shrunk, truth) == pytest.approx(0.7, abs=0.02)


def test_trained_face_network_keeps_the_nose_motion_of_its_training_clips(trained, synth):
    """SynthTalk's head sway moves the nose by parallax, a sub-pixel shift against the face. Trained
    on consecutive frames only (``far_weight=0``), the tiny network shrinks that motion toward the
    clip mean in one of its two training clips (slope 0.68 at seeds 0 and 1, measured); the pairs that
    reach across the clip keep it (0.97-1.02)."""
    from metrics.synthtalk.data import SynthTalkFolder
    from metrics.synthtalk.skill import motion_slope

    tracker = Lab(trained).tracker()
    slopes = [motion_slope(tracker.outputs(c.frames)["points"], c.keypoints)
              for c in SynthTalkFolder(synth).clips("train")]
    assert min(slopes) > 0.85, slopes


def test_presence_head_rejects_non_faces_and_keeps_blurred_faces(trained, synth):
    from metrics.synthtalk.face_train import NEGATIVE_KINDS, gaussian_blur, make_negatives

    tracker = Lab(trained).tracker()
    frames = _video(synth, "face02_test0").frames
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(127.5).sub(1)

    def u8(t):
        return ((t.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()

    assert tracker(frames).found.mean() > 0.9
    assert tracker(u8(gaussian_blur(x, torch.full((len(x),), 1.0)))).found.mean() > 0.9
    for kind in range(4):
        garbage = make_negatives(x, torch.Generator().manual_seed(kind), kinds=torch.full((len(x),), kind))
        assert tracker(u8(garbage)).found.mean() < 0.1, NEGATIVE_KINDS[kind]
