"""evaluate_folders / the CLI on a folder with every kind of bad input; registry names."""
import json

import numpy as np
import pandas as pd
import pytest

from core.video_io import write_video
from metrics import registry
from metrics.evaluate import evaluate_folders, main

METRICS = ["SSIM", "IQA", "FID", "FVD-I"]


def _clip(n, size, seed):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    return np.stack([np.roll(base, i, axis=1) for i in range(n)])


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    pred, gt = root / "pred", root / "gt"
    pred.mkdir()
    gt.mkdir()
    for name, (n_pred, n_gt, s_pred, s_gt) in {"ok": (20, 20, 48, 48), "longer_gt": (18, 20, 48, 48),
                                              "single": (1, 1, 48, 48), "size": (20, 20, 48, 64)}.items():
        write_video(gt / f"{name}.mp4", _clip(n_gt, s_gt, 1), 25)
        write_video(pred / f"{name}.mp4", _clip(n_pred, s_pred, 2), 25)
    (pred / "broken.mp4").write_bytes(b"\x00not an mp4")
    (gt / "broken.mp4").write_bytes(b"\x00not an mp4")
    write_video(gt / "only_gt.mp4", _clip(20, 48, 3), 25)
    write_video(pred / "only_pred.mp4", _clip(20, 48, 4), 25)
    return pred, gt


def test_bad_inputs_become_statuses(folders):
    pred, gt = folders
    r = evaluate_folders(pred, gt, metrics=METRICS, n_boot=50, progress=False)
    df = r.per_video.set_index("video")
    assert df.loc["ok", "status"] == "ok" and 0 < df.loc["ok", "SSIM"] < 1
    assert "truncated to 18" in df.loc["longer_gt", "note"]
    assert df.loc["broken", "status"].startswith("skipped: unreadable")
    # DisCo's FVD-3DInception takes the whole video as one clip, whatever its length
    assert df.loc["single", "status"] == "ok" and np.isfinite(df.loc["single", "SSIM"])
    assert "frame size mismatch" in df.loc["size", "status"]
    assert "no ground-truth video" in df.loc["only_pred", "status"] and np.isfinite(df.loc["only_pred", "IQA"])
    s = r.summary
    assert s["missing_pred"] == ["only_gt"] and s["extra_pred"] == ["only_pred"]
    assert s["status_counts"] == {"ok": 3, "skipped": 3}
    assert s["SSIM"]["n"] == 3 and s["SSIM"]["ci_low"] <= s["SSIM"]["mean"] <= s["SSIM"]["ci_high"]
    assert s["FVD-I"]["n"] == 4  # ok, longer_gt, single, size (frame size does not matter to I3D)
    assert s["FID"]["backbone"].startswith("standin:") and s["FID"]["comparable_to_paper"] is False
    ssim_mean = pd.to_numeric(df["SSIM"], errors="coerce").mean()
    assert s["SSIM"]["mean"] == pytest.approx(ssim_mean)


def test_cli_writes_csv_and_json(folders, tmp_path, capsys):
    pred, gt = folders
    main(["--pred", str(pred), "--gt", str(gt), "--metrics", "SSIM", "IQA", "SSIM@1", "--out", str(tmp_path),
          "--n-boot", "20"])
    printed = capsys.readouterr().out
    assert all(f"{m}:" in printed for m in ("SSIM", "IQA", "SSIM@1"))
    df = pd.read_csv(tmp_path / "per_video.csv")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(df["video"]) == {"ok", "longer_gt", "single", "size", "broken", "only_pred"}
    assert set(summary) >= {"SSIM", "IQA", "SSIM@1", "missing_pred", "extra_pred", "status_counts"}
    assert not list(tmp_path.glob(".*.tmp"))


def test_without_gt_drops_gt_metrics(folders):
    pred, _ = folders
    r = evaluate_folders(pred, None, metrics=["SSIM", "IQA"], n_boot=10, progress=False)
    assert r.summary["dropped_without_gt"] == ["SSIM"] and "IQA" in r.summary


def test_registry_names():
    assert set(registry.METRIC_TO_SCORER) == set(registry.METRIC_NAMES)
    assert registry.scorer_groups(["Sync-D", "FID", "Glo"]) == ["FID", "Sync", "Motion"]
    assert registry.SCORERS["Sync"].target == "metrics.sync:SyncScorer"
    with pytest.raises(ValueError, match="--metrics"):
        registry.scorer_groups(["FVD"])


def test_subset_metrics_equal_scoring_the_subset_alone(folders, tmp_path):
    """``open:SSIM`` / ``open:FID`` over the videos matching the subset's regex are what scoring a folder
    of only those videos gives (per-video metrics: the same rows; set metrics: re-pooled features)."""
    import shutil

    pred, gt = folders
    sub_pred, sub_gt = tmp_path / "pred", tmp_path / "gt"
    sub_pred.mkdir()
    sub_gt.mkdir()
    for name in ("ok", "longer_gt"):
        shutil.copy(pred / f"{name}.mp4", sub_pred)
        shutil.copy(gt / f"{name}.mp4", sub_gt)
    both = evaluate_folders(pred, gt, metrics=["SSIM", "FID", "open:SSIM", "open:FID"], n_boot=50, progress=False,
                            subsets={"open": "^(ok|longer_gt)$"}).summary
    alone = evaluate_folders(sub_pred, sub_gt, metrics=["SSIM", "FID"], n_boot=50, progress=False).summary
    for m in ("SSIM", "FID"):
        assert both[f"open:{m}"]["n"] == alone[m]["n"] == 2
        assert both[f"open:{m}"]["mean"] == pytest.approx(alone[m]["mean"], rel=1e-6)
    assert both["SSIM"]["n"] == 3 and both["SSIM"]["mean"] != pytest.approx(both["open:SSIM"]["mean"])


def test_subset_metric_without_a_subset_names_what_to_define(folders):
    pred, gt = folders
    with pytest.raises(ValueError, match=r"name subset\(s\) \['open'\].*eval\.subsets\.NAME.*--subset NAME=REGEX"):
        evaluate_folders(pred, gt, metrics=["SSIM", "open:SSIM"], n_boot=10, progress=False)


def test_one_frame_video_set_metric_is_refused_fast(tmp_path):
    # issue 18 item 8: a one-frame video used to sit in a 2048x2048 sqrtm per resample for many minutes
    import time

    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    write_video(pred / "one.mp4", _clip(1, 48, 1), 25)
    write_video(gt / "one.mp4", _clip(1, 48, 2), 25)
    t0 = time.perf_counter()
    r = evaluate_folders(pred, gt, metrics=["SSIM", "FID"], n_boot=100, progress=False)
    assert time.perf_counter() - t0 < 60
    s = r.summary["FID"]
    assert np.isnan(s["mean"]) and "at least 2 per side" in s["error"] and "1 video(s)" in s["error"]
    status = r.per_video.set_index("video").loc["one", "status"]
    assert status.startswith("skipped: FID: the pooled set has 1 generated / 1 ground-truth feature row(s)")
    assert np.isfinite(r.per_video.set_index("video").loc["one", "SSIM"])


def test_summary_says_which_protocol_and_where_it_deviates(folders):
    pred, gt = folders
    s = evaluate_folders(pred, gt, metrics=["SSIM", "IQA"], n_boot=20, progress=False).summary
    # IQA's offline default is a blur measure: official in the sense of no network, but not Q-Align
    assert s["IQA"]["comparable_to_paper"] is False and "not Q-Align" in s["IQA"]["deviations"][0]
    assert s["SSIM"]["comparable_to_paper"] is True and s["SSIM"]["deviations"] == []
    assert "common_metrics_on_video_quality" in s["SSIM"]["protocol"]
    from metrics.base import comparable

    assert not comparable("synthtalk:syncnet-w0.25") and not comparable("standin:x:seed0")
    assert comparable("/w/syncnet_v2.model") and not comparable("/w/syncnet_v2.model", ["mediapipe boxes"])


def test_a_scorer_bug_is_told_apart_from_a_bad_video(folders, monkeypatch):
    from metrics.ssim import SSIMScorer

    def broken(self, pred, gt=None):
        raise RuntimeError("Tensors must have same number of dimensions")

    monkeypatch.setattr(SSIMScorer, "score_video", broken)
    pred, gt = folders
    df = evaluate_folders(pred, gt, metrics=["SSIM"], n_boot=10, progress=False).per_video.set_index("video")
    assert "SSIM: internal error RuntimeError: Tensors must have same number" in df.loc["ok", "status"]
    assert "a bug in the SSIM scorer, not a problem of this video" in df.loc["ok", "status"]


def test_cli_prints_what_it_scored_skipped_missed_and_why(folders, tmp_path, capsys):
    """Issue 19, item 3: the console says how many videos were scored, skipped, missing and extra."""
    pred, gt = folders
    assert main(["--pred", str(pred), "--gt", str(gt), "--metrics", "SSIM", "--out", str(tmp_path),
                 "--n-boot", "20"]) == 0
    out = capsys.readouterr().out
    status = pd.read_csv(tmp_path / "per_video.csv")["status"]
    ok, skipped = int((status == "ok").sum()), int((status != "ok").sum())
    assert ok and skipped  # the fixture holds both kinds
    assert f"videos: {ok} scored, {skipped} skipped (of {ok + skipped} in {pred}), 1 missing" in out
    assert "1 extra" in out and "missing: only_gt" in out and "extra: only_pred" in out
    assert "skipped 1x: unreadable" in out and "frame size mismatch" in out


def test_empty_prediction_folder_exits_nonzero_and_says_why(folders, tmp_path, capsys):
    _, gt = folders
    (tmp_path / "empty").mkdir()
    args = ["--pred", str(tmp_path / "empty"), "--gt", str(gt), "--metrics", "SSIM", "--n-boot", "10"]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "nothing was scored" in captured.err and "holds no video" in captured.err
    assert "videos: 0 scored, 0 skipped" in captured.out and "6 missing" in captured.out


def test_every_video_skipped_exits_nonzero_with_the_reasons(folders, tmp_path, capsys):
    pred, gt = folders
    for d in ("pred", "gt"):
        (tmp_path / d).mkdir()
        for name in ("broken", "size"):
            source = (pred if d == "pred" else gt) / f"{name}.mp4"
            (tmp_path / d / f"{name}.mp4").write_bytes(source.read_bytes())
    assert main(["--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--metrics", "SSIM",
                 "--n-boot", "10"]) == 1
    err = capsys.readouterr().err
    assert "nothing was scored: every video was skipped" in err
    assert "unreadable" in err and "frame size mismatch" in err
