"""Measured skill of the SynthTalk evaluators, on the held-out test split (never trained on).

* Face network: NME (mean point error over the ground-truth outer-eye-corner distance 36-45) for
  trained and held-out identities; the slope of the tracked nose's displacement on the true one
  (1: motion kept, below 1: shrunk toward the clip mean); Glo and Exp (Loopy eqs. 3, 5) from its
  keypoints against the same metrics from the generator's keypoints, per clip and over the split
  (relative errors, and the rank correlation over clips: does it order clips as the ground truth
  does); the share of frames found as faces in clean test frames, in moderately blurred ones, and
  in non-faces of each kind.
* SyncNet: every test clip with its audio delayed by k = -8..8 frames (reported offset should be
  -k, metrics/sync.py's sign); the share of (clip, k) pairs within one frame. Sync-C of each clip
  with its own audio against the audio of another test item, with 95% bootstrap intervals.
* Features: FID of a test clip against the other clip of the same identity vs against a clip of
  another identity; FVD and E-FID of the first test clips of all identities against the second ones,
  as they are, and with the second ones frozen (first frame repeated) or shuffled in time.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import spearmanr
from tqdm import tqdm

from metrics.bootstrap import bootstrap_ci
from metrics.frechet import frechet_from_features
from metrics.landmarks import IBUG_NOSE_TIP, VideoSkipped
from metrics.motion import glo_exp
from metrics.sync import mfcc_features, sync_from_features
from metrics.synthtalk.face_train import MODERATE_BLUR, NEGATIVE_KINDS, gaussian_blur, make_negatives
from metrics.synthtalk.syncnet import MFCC_PER_FRAME, MFCC_WINDOW, lip_crops, window_count

SHIFTS = tuple(range(-8, 9))
SAMPLES_PER_FRAME = 640


def nme(points: np.ndarray, truth: np.ndarray) -> float:
    """Mean over frames of the mean point error divided by the true outer-eye-corner distance (36-45)."""
    iod = np.linalg.norm(truth[:, 36] - truth[:, 45], axis=-1)
    return float(np.nanmean(np.linalg.norm(points - truth, axis=-1).mean(1) / iod))


def motion_slope(points: np.ndarray, truth: np.ndarray, point: int = IBUG_NOSE_TIP) -> float:
    """Least-squares slope of a point's tracked displacement from its clip mean on the true one.

    ``points``, ``truth`` [T,68,2] (NaN rows of ``points``: no face, left out). 1: the track moves as
    the face does; below 1: motion shrunk toward the clip mean (Glo then reads about slope^2 of the
    truth), as a regressor does when it reads a subtle cue, here the nose's parallax, partly from
    the identity's average pose."""
    ok = np.isfinite(points[:, point]).all(-1)
    if ok.sum() < 2:
        return float("nan")
    p, t = points[ok, point], truth[ok, point]
    dp, dt = p - p.mean(0), t - t.mean(0)
    return float((dp * dt).sum() / (dt * dt).sum())


def _relative(pred: np.ndarray, true: np.ndarray) -> dict:
    """Agreement over the clips where the face network found a face (NaN elsewhere; ``n`` counts them)."""
    ok = np.isfinite(pred)
    pred, true = pred[ok], true[ok]
    if not ok.any():
        return {"n": 0}
    rel = pred / true - 1
    return {
        "median_abs_rel_err": float(np.median(np.abs(rel))),
        "max_abs_rel_err": float(np.abs(rel).max()),
        "mean_pred": float(pred.mean()),
        "mean_true": float(true.mean()),
        "rel_err_of_mean": float(pred.mean() / true.mean() - 1),
        "share_within_10pct": float((np.abs(rel) <= 0.10).mean()),
        "n": int(ok.sum()),
        "rank_correlation": float(spearmanr(pred, true)[0]) if len(pred) > 2 else None,
    }


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


def _of_finite(values: list[float], reduce=np.mean) -> float | None:
    """``reduce`` (the mean unless given) of the finite values; None when there are none."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(reduce(v)) if len(v) else None


def face_skill(lab, clips) -> dict:
    tracker = lab.tracker()
    per_clip, nmes = [], {"trained": [], "held_out": []}
    for c in clips:
        track = tracker(c.frames)
        truth = glo_exp(c.keypoints)
        try:
            got = glo_exp(track.points)
        except VideoSkipped:  # no face found in enough frames: the clip counts as missed
            got = {"Glo": float("nan"), "Exp": float("nan")}
        e = nme(track.points, c.keypoints) if track.found.any() else float("nan")
        nmes["held_out" if c.held_out else "trained"].append(e)
        per_clip.append(
            {
                "video": c.video_id,
                "held_out": c.held_out,
                "nme": e,
                "found": track.found_fraction,
                "nose_motion_slope": motion_slope(track.points, c.keypoints),
                "Glo_true": truth["Glo"],
                "Glo": got["Glo"],
                "Exp_true": truth["Exp"],
                "Exp": got["Exp"],
            }
        )
    col = {
        k: np.array([r[k] for r in per_clip], dtype=np.float64)
        for k in ("Glo", "Glo_true", "Exp", "Exp_true")
    }
    frames = (
        torch.from_numpy(np.concatenate([c.frames for c in clips]))
        .permute(0, 3, 1, 2)
        .float()
        .div(127.5)
        .sub(1)
    )
    S = frames.shape[-1]
    found = {
        "clean": float(tracker(_to_uint8(frames)).found.mean()),
        "moderate_blur": float(
            tracker(
                _to_uint8(gaussian_blur(frames, torch.full((len(frames),), S * MODERATE_BLUR)))
            ).found.mean()
        ),
    }
    gen = torch.Generator().manual_seed(0)
    kinds = torch.randint(0, len(NEGATIVE_KINDS), (len(frames),), generator=gen)
    garbage = make_negatives(frames, torch.Generator().manual_seed(0), kinds=kinds)
    hit = tracker(_to_uint8(garbage)).found
    found.update(
        {f"non_face_{k}": float(hit[(kinds == i).numpy()].mean()) for i, k in enumerate(NEGATIVE_KINDS)}
    )
    return {
        # None when no clip of the group had a face found (the miss shows in per_clip and `found`)
        "nme_trained_identities": _of_finite(nmes["trained"]),
        "nme_held_out_identities": _of_finite(nmes["held_out"]),
        "Glo": _relative(col["Glo"], col["Glo_true"]),
        "Exp": _relative(col["Exp"], col["Exp_true"]),
        "nose_motion_slope_median": _of_finite([r["nose_motion_slope"] for r in per_clip], np.median),
        "found": found,
        "per_clip": per_clip,
        "blur_sigma_px": S * MODERATE_BLUR,
    }


def delayed(audio: np.ndarray, frames: int) -> np.ndarray:
    """Audio delayed by ``frames`` video frames (advanced if negative), same length, zeros filled in."""
    s = SAMPLES_PER_FRAME * abs(frames)
    if s == 0:
        return audio
    pad = np.zeros(min(s, len(audio)), audio.dtype)
    return (
        np.concatenate([pad, audio[: len(audio) - len(pad)]])
        if frames > 0
        else np.concatenate([audio[len(pad) :], pad])
    )


@torch.no_grad()
def _audio_embeddings(model, audio: np.ndarray, n: int) -> torch.Tensor:
    mf = torch.from_numpy(mfcc_features(audio))
    cols = [mf[:, MFCC_PER_FRAME * k : MFCC_PER_FRAME * k + MFCC_WINDOW] for k in range(n)]
    return model.forward_aud(torch.stack(cols)[:, None])


def sync_skill(lab, clips, progress: bool = False) -> dict:
    """Offset recovery over delays -8..8; Sync-C own vs shuffled audio (lip embeddings once per clip)."""
    model, tracker = lab.syncnet(), lab.tracker()
    hits, per_clip, own, shuffled = [], [], [], []
    order = np.random.default_rng(0).permutation(len(clips))
    partner = {
        int(order[i]): int(order[(i + 1) % len(order)]) for i in range(len(order))
    }  # no item keeps its audio
    for i, c in enumerate(tqdm(clips, desc="SyncNet skill", disable=not progress)):
        track = tracker(c.frames)
        if not track.found.any():  # nothing to crop the lips from: every shift of this clip is a miss
            hits += [False] * len(SHIFTS)
            per_clip.append({"video": c.video_id, "offsets": None, "Sync-C": None, "Sync-C_shuffled": None})
            continue
        crops = lip_crops(c.frames, track.boxes)
        n = window_count(len(crops), mfcc_features(c.audio).shape[1])
        with torch.no_grad():
            video = model.forward_lip(torch.from_numpy(crops).permute(3, 0, 1, 2).float()[None])[0].T[:n]
        offsets = []
        for k in SHIFTS:
            r = sync_from_features(video, _audio_embeddings(model, delayed(c.audio, k), n))
            offsets.append(r["sync_offset"])
            hits.append(abs(r["sync_offset"] + k) <= 1)
            if k == 0:
                own.append(r["Sync-C"])
        other = clips[partner[i]].audio
        other = np.concatenate([other, np.zeros(max(0, len(c.audio) - len(other)), other.dtype)])[
            : len(c.audio)
        ]
        shuffled.append(sync_from_features(video, _audio_embeddings(model, other, n))["Sync-C"])
        per_clip.append(
            {"video": c.video_id, "offsets": offsets, "Sync-C": own[-1], "Sync-C_shuffled": shuffled[-1]}
        )
    ci_own, ci_shuf = bootstrap_ci(own), bootstrap_ci(shuffled)
    return {
        "offset_within_1_frame": float(np.mean(hits)),
        "shifts": list(SHIFTS),
        "n_pairs": len(hits),
        "sync_c_own_audio": ci_own,
        "sync_c_shuffled_audio": ci_shuf,
        "intervals_apart": bool(ci_own["ci_low"] > ci_shuf["ci_high"]),
        "per_clip": per_clip,
    }


def features_skill(lab, clips) -> dict:
    """FID same vs other identity; FVD-I/FVD-R/E-FID of test clips 0 vs 1: as is, frozen, time-shuffled."""
    from metrics.synthtalk.scorers import (
        SynthTalkEFIDScorer,
        SynthTalkFIDScorer,
        SynthTalkFVDIScorer,
        SynthTalkFVDRScorer,
    )

    by_identity: dict[str, list] = {}
    for c in clips:
        by_identity.setdefault(c.identity, []).append(c)
    pairs = [v[:2] for v in by_identity.values() if len(v) >= 2]
    if len(pairs) < 2:
        return {
            "note": "needs two test clips of each of two identities or more "
            "(data.test_clips_per_identity >= 2)"
        }
    fid = SynthTalkFIDScorer(lab)
    emb = [(fid.features(a.frames), fid.features(b.frames)) for a, b in pairs]
    same = [frechet_from_features(a, b) for a, b in emb]
    other = [frechet_from_features(emb[i][0], emb[(i + 1) % len(emb)][1]) for i in range(len(emb))]
    rng = np.random.default_rng(0)
    controls = {
        "as_is": lambda f: f,
        "frozen": lambda f: np.repeat(f[:1], len(f), 0),
        "time_shuffled": lambda f: f[rng.permutation(len(f))],
    }
    out = {
        "FID_same_identity": float(np.mean(same)),
        "FID_other_identity": float(np.mean(other)),
        "n_identities": len(pairs),
    }
    for scorer in (SynthTalkFVDIScorer(lab), SynthTalkFVDRScorer(lab), SynthTalkEFIDScorer(lab)):
        first = np.concatenate([scorer.features(a.frames) for a, _ in pairs])
        out[scorer.name] = {
            name: float(
                frechet_from_features(
                    first, np.concatenate([scorer.features(change(b.frames)) for _, b in pairs])
                )
            )
            for name, change in controls.items()
        }
    return out


def measure_skill(lab, data, progress: bool = False) -> dict:
    """All skill figures of the evaluators in ``lab`` on the test split of ``data`` (a SynthTalkFolder)."""
    clips = data.clips("test")
    if not clips:
        raise ValueError(
            f"{data.folder / 'splits' / 'test.txt'}: empty test split; the evaluators' skill is "
            f"measured on it (set data.test_clips_per_identity)"
        )
    return {
        "face": face_skill(lab, clips),
        "sync": sync_skill(lab, clips, progress),
        "features": features_skill(lab, clips),
        "test_clips": len(clips),
        "held_out_identities": sorted({c.identity for c in clips if c.held_out}),
    }


def flatten(skill: dict) -> dict[str, float]:
    """The headline figures of a skill report as ``{name: float}`` (what the runner logs to MLflow)."""
    f, s, x = skill["face"], skill["sync"], skill["features"]
    out = {
        "nme_trained": f["nme_trained_identities"],
        "nme_held_out": f["nme_held_out_identities"],
        "glo_rel_err_median": f["Glo"].get("median_abs_rel_err"),
        "glo_rel_err_of_mean": f["Glo"].get("rel_err_of_mean"),
        "exp_rel_err_median": f["Exp"].get("median_abs_rel_err"),
        "exp_rel_err_of_mean": f["Exp"].get("rel_err_of_mean"),
        "glo_share_within_10pct": f["Glo"].get("share_within_10pct"),
        "exp_share_within_10pct": f["Exp"].get("share_within_10pct"),
        "nose_motion_slope": f.get("nose_motion_slope_median"),
        **{f"found_{k}": v for k, v in f["found"].items()},
        "sync_offset_within_1": s["offset_within_1_frame"],
        "sync_c_own": s["sync_c_own_audio"]["mean"],
        "sync_c_shuffled": s["sync_c_shuffled_audio"]["mean"],
        "sync_intervals_apart": float(s["intervals_apart"]),
    }
    if "FID_same_identity" in x:
        out.update(
            {"fid_same_identity": x["FID_same_identity"], "fid_other_identity": x["FID_other_identity"]}
        )
        for name in ("FVD-I", "FVD-R", "E-FID"):
            out.update({f"{name.lower().replace('-', '')}_{k}": v for k, v in x[name].items()})
    return {f"evaluators/{k}": float(v) for k, v in out.items() if v is not None}


__all__ = [
    "SHIFTS",
    "delayed",
    "face_skill",
    "features_skill",
    "flatten",
    "measure_skill",
    "motion_slope",
    "nme",
    "sync_skill",
]
