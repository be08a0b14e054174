"""Score a folder of generated videos (ours or another system's) against ground truth.

    python -m metrics.evaluate --pred DIR [--gt DIR] [--metrics FID SSIM ...] [--out DIR]
        [--weights KEY=PATH ...] [--no-standin] [--preset tiny|paper] [--opt FID.max_frames=8 ...]
        [--system NAME --experiment TABLE]   # log another system's videos as a baseline row of TABLE
        [--lab FOLDER]                       # SynthTalk evaluators for metrics without official files

Videos are paired by file stem. Every pretrained file is checked before any video is decoded.
Each video gets a row in ``per_video.csv`` with its per-video metrics and a ``status``: ``ok`` or
``skipped: <scorer>: <reason>; ...`` (unreadable file, no face, too short, frame size mismatch, ...);
a pred/gt length difference truncates both to the shorter and is noted in ``note``.
A metric named ``SUBSET:METRIC`` (``--subset open=face03``) is METRIC over the videos whose name
matches SUBSET's regular expression, e.g. the open-set half of Loopy Table 3 (unseen identities):
videos are scored once, set metrics (FID, FVD) re-pooled over the subset's features.
``summary.json`` holds, per metric, ``{mean, ci_low, ci_high, n, backbone, comparable_to_paper,
protocol, deviations}`` (comparable only with official weights and no deviation from the paper's
protocol, :func:`metrics.base.comparable`; a set metric whose pooled set is too small also has
``error`` and every video of it says so in its status) with a 95% bootstrap interval (:mod:`metrics.bootstrap`), plus ``missing_pred`` (gt
without pred), ``extra_pred`` (pred without gt) and ``status_counts``. Both files are written
atomically. Nothing a single video does stops the run.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from core import weights as weights_table
from metrics import registry
from metrics.base import SET, VideoSkipped, comparable
from metrics.bootstrap import SET_BOOT_CAP, bootstrap_ci, bootstrap_set_metric
from metrics.frechet import MIN_ROWS, frechet_from_features

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm")

#: Per-scorer options of the presets. ``paper``: every frame (FID/E-FID), one 16-frame clip (FVD-I).
#: ``tiny``: at most 8 evenly spread frames per video for FID and E-FID, for CPU tests.
PRESETS: dict[str, dict[str, dict]] = {
    "paper": {},
    "tiny": {"FID": {"max_frames": 8}, "E-FID": {"max_frames": 8}},
}


@dataclass
class EvalResult:
    """``per_video``: one row per pred video; ``summary``: per-metric statistics and bookkeeping."""

    per_video: pd.DataFrame
    summary: dict


def list_videos(folder: str | os.PathLike | None) -> dict[str, Path]:
    """Video files of a folder by stem; raises a clear error when the folder does not exist."""
    if folder is None:
        return {}
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"video folder {str(folder)!r} does not exist (check --pred / --gt)")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in VIDEO_EXTS}


def _truncate(pred, gt):
    """Cut pred and gt to the shorter length; returns a note when they differed."""
    n_p, n_g = len(pred.frames), len(gt.frames)
    if n_p == n_g:
        return ""
    n = min(n_p, n_g)
    pred.frames, gt.frames = pred.frames[:n], gt.frames[:n]
    return f"length pred {n_p} vs gt {n_g}: truncated to {n}"


def _read(path):
    from core.video_io import read_video

    return read_video(path)


def split_subset(name: str) -> tuple[str | None, str]:
    """``"open:Sync-C"`` -> ``("open", "Sync-C")``; ``"FID"`` -> ``(None, "FID")``."""
    subset, _, metric = name.rpartition(":")
    return subset or None, metric


def evaluate_folders(pred_dir, gt_dir=None, metrics=None, weights: dict | None = None, n_boot: int = 1000,
                     seed: int = 0, progress: bool = True, standin: bool = True, options: dict | None = None,
                     device: str = "cpu", preset: str = "paper", subsets: dict | None = None,
                     lab=None) -> EvalResult:
    """Score every video of ``pred_dir`` (paired by stem with ``gt_dir``) with ``metrics``.

    Args:
        metrics: metric names (``registry.METRIC_NAMES``); default all, minus those needing gt without ``gt_dir``.
        weights: ``{weights key: local path}`` (``core/weights.py``); environment variables fill the rest.
        standin: allow labelled fixed-seed stand-ins for missing files; False raises before decoding.
        options: ``{scorer group: {option: value}}`` over the preset's options.
        subsets: ``{name: regex over video names}`` for metrics named ``name:METRIC``.
        lab: SynthTalk evaluator folder (``metrics.synthtalk.ensure_evaluators``): scores Sync, Motion, FID,
            FVD and E-FID where no official file is given (``metrics.registry.uses_lab``).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} (--preset); use one of {list(PRESETS)}")
    unknown = sorted(set(weights or {}) - set(weights_table.WEIGHTS))
    if unknown:
        raise ValueError(f"unknown weights key(s) {unknown} (--weights / weights.*); known: {', '.join(weights_table.WEIGHTS)}")
    preds, gts = list_videos(pred_dir), list_videos(gt_dir)
    requested = list(metrics or registry.METRIC_NAMES)
    undefined = sorted({sub for sub, _ in map(split_subset, requested) if sub and sub not in (subsets or {})})
    if undefined:
        raise ValueError(f"metrics {[m for m in requested if split_subset(m)[0] in undefined]} name subset(s) "
                         f"{undefined} that are not defined; define each as NAME=REGEX over test video names "
                         f"(eval.subsets.NAME in the experiment config, --subset NAME=REGEX here)")
    names = list(dict.fromkeys(split_subset(m)[1] for m in requested))  # what the scorers compute
    selects = {sub: re.compile(pattern).search for sub, pattern in (subsets or {}).items()}
    dropped = []
    if gt_dir is None:
        dropped = [m for m in names if m in registry.GT_ONLY_METRICS
                   or registry.SCORERS[registry.group_of(m)].needs_gt]
        names = [m for m in names if m not in dropped]
    groups = registry.scorer_groups(names) if names else []
    opts = {g: {**PRESETS[preset].get(g, {}), **(options or {}).get(g, {})} for g in groups}
    # Every weight file is checked here, before any video is decoded; one error lists all missing.
    weights_table.check(registry.required_weight_keys(groups, weights, lab, opts), weights, standin=standin)
    at_frames = sorted({k for k in map(registry.frame_of, names) if k is not None})
    if at_frames:  # SSIM@k asked for: the SSIM scorer adds those frames, and skips its mean unless SSIM is asked too
        opts["SSIM"] = {"at_frames": at_frames, "mean": "SSIM" in names, **opts["SSIM"]}
    scorers = {g: registry.build(g, weights, device=device, standin=standin, lab=lab, **opts[g])
               for g in groups}

    rows, feats = [], {g: ([], [], []) for g in groups if scorers[g].kind == SET}  # pred, gt, video name
    for stem, path in tqdm(preds.items(), desc="evaluate", unit="video", disable=not progress):
        row = {"video": stem, "pred_path": str(path), "gt_path": str(gts.get(stem, "")), "note": ""}
        problems = []
        try:
            pred = _read(path)
            gt = _read(gts[stem]) if stem in gts else None
        except (ValueError, OSError) as e:
            row["status"] = f"skipped: unreadable: {e}"
            rows.append(row)
            continue
        if gt is not None:
            row["note"] = _truncate(pred, gt)
        for g, scorer in scorers.items():
            if scorer.needs_gt and gt is None:
                problems.append(f"{g}: no ground-truth video named {stem}")
                continue
            try:
                if scorer.kind == SET:
                    fp, fg = scorer.features(pred), scorer.features(gt)
                    feats[g][0].append(fp)
                    feats[g][1].append(fg)
                    feats[g][2].append(stem)
                else:
                    row.update(scorer.score_video(pred, gt))
            except VideoSkipped as e:
                problems.append(f"{g}: {e.reason}")
            except Exception as e:  # one broken video or scorer bug must not stop the run, but must be told apart
                problems.append(f"{g}: internal error {type(e).__name__}: {e} (a bug in the {g} scorer, not a "
                                f"problem of this video: please report it)")
        row["status"] = "ok" if not problems else "skipped: " + "; ".join(problems)
        rows.append(row)

    for g, (fp, fg, stems) in feats.items():  # a set too small for a covariance: say so on every video of it
        problem = degenerate_set(g, fp, fg)
        if problem:
            for row in rows:
                if row["video"] in stems:
                    row["status"] = ("skipped: " if row["status"] == "ok" else row["status"] + "; ") + problem
    df = pd.DataFrame(rows, columns=None if rows else ["video", "pred_path", "gt_path", "note", "status"])
    summary = _summarise(df, names, scorers, feats, n_boot, seed, progress)
    for name in requested:
        subset, metric = split_subset(name)
        if subset and metric in names:
            summary[name] = _summarise(df, [metric], scorers, feats, n_boot, seed, progress,
                                       select=selects[subset])[metric]
    summary.update({
        "missing_pred": sorted(set(gts) - set(preds)),
        "extra_pred": sorted(set(preds) - set(gts)) if gt_dir is not None else [],
        "dropped_without_gt": dropped,
        "n_videos": int(len(df)),
        "status_counts": {"ok": int((df["status"] == "ok").sum()) if len(df) else 0,
                          "skipped": int((df["status"] != "ok").sum()) if len(df) else 0},
        "preset": preset, "options": opts, "n_boot": n_boot, "seed": seed,
    })
    return EvalResult(df, summary)


def degenerate_set(group: str, pred_feats, gt_feats) -> str | None:
    """Why the pooled feature sets of a set metric cannot give a Frechet distance, or None.

    A Gaussian fit needs at least two feature rows per side (FID: frames, FVD: clips or videos, E-FID:
    frames with a face); a one-frame video, or one video with one FVD clip, gives one row.
    """
    rows_p, rows_g = sum(len(f) for f in pred_feats), sum(len(f) for f in gt_feats)
    if not pred_feats or min(rows_p, rows_g) >= MIN_ROWS:
        return None
    return (f"{group}: the pooled set has {rows_p} generated / {rows_g} ground-truth feature row(s) over "
            f"{len(pred_feats)} video(s); a Frechet distance needs at least {MIN_ROWS} per side: score more "
            f"videos or longer ones")


def _summarise(df, names, scorers, feats, n_boot, seed, progress, select=None) -> dict:
    """Mean and 95% CI per metric, over the videos whose name ``select`` accepts (all by default)."""
    if select is not None:
        df = df[[bool(select(v)) for v in df["video"]]] if len(df) else df
    summary = {}
    for name in names:
        group = registry.group_of(name)
        scorer = scorers[group]
        if scorer.kind == SET:
            fp, fg, stems = feats[group]
            if select is not None:
                keep = [i for i, v in enumerate(stems) if select(v)]
                fp, fg = [fp[i] for i in keep], [fg[i] for i in keep]
            problem = degenerate_set(name, fp, fg)
            if problem:
                stats = {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n": len(fp),
                         "error": problem}
            else:
                distance = functools.partial(frechet_from_features, ddof=getattr(scorer, "ddof", 1))
                with tqdm(total=min(n_boot, SET_BOOT_CAP), desc=f"bootstrap {name}", disable=not progress,
                          leave=False) as bar:
                    stats = bootstrap_set_metric(fp, fg, distance, n_boot=n_boot, seed=seed, progress=bar.update)
        else:
            col = df[name] if name in df.columns else pd.Series(dtype=float)
            stats = bootstrap_ci(pd.to_numeric(col, errors="coerce").to_numpy(), n_boot=n_boot, seed=seed)
        backbone = str(getattr(scorer, "backbone", ""))
        deviations = list(getattr(scorer, "deviations", ()) or ())
        summary[name] = {**stats, "backbone": backbone, "comparable_to_paper": comparable(backbone, deviations),
                         "protocol": getattr(scorer, "protocol", ""), "deviations": deviations}
    return summary


def write_result(result: EvalResult, out_dir) -> tuple[Path, Path]:
    """Write ``per_video.csv`` and ``summary.json`` atomically into ``out_dir`` (mode as open() gives)."""
    from core.atomic import atomic_path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv, js = out / "per_video.csv", out / "summary.json"
    with atomic_path(csv) as tmp:
        result.per_video.to_csv(tmp, index=False)
    with atomic_path(js) as tmp, open(tmp, "w") as f:
        json.dump(result.summary, f, indent=2, default=lambda o: None if o is None else float(o))
    return csv, js


def _key_values(items, what: str) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"{what} expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k] = v
    return out


def _parse_options(items) -> dict:
    opts: dict[str, dict] = {}
    for k, v in _key_values(items, "--opt").items():
        group, _, key = k.partition(".")
        try:
            value = json.loads(v)
        except json.JSONDecodeError:
            value = v
        opts.setdefault(group, {})[key] = value
    return opts


def skip_reasons(per_video: pd.DataFrame, top: int = 3, scorer: str | None = None) -> list[tuple[int, str]]:
    """The ``top`` most common reasons in the videos' ``status`` (``skipped: Sync: ...; Motion: ...``), as
    (count, example); reasons that differ only in their numbers (``face found in 0/50 frames``) count as
    one. With ``scorer`` (a registry group, e.g. ``Sync``), only that scorer's reasons and unreadable
    files."""
    counts: dict[str, list] = {}
    # a status joins one "<scorer>: <reason>" per scorer with "; ", and a reason may hold "; " itself
    heads = "|".join(re.escape(g) for g in ("unreadable", *registry.SCORERS))
    for status in per_video.get("status", pd.Series(dtype=str)):
        if not isinstance(status, str) or status == "ok":
            continue
        for part in re.split(rf"; (?=(?:{heads}): )", status.removeprefix("skipped: ")):
            if scorer and not part.startswith((f"{scorer}: ", "unreadable: ")):
                continue
            entry = counts.setdefault(re.sub(r"\d+", "#", part), [0, part])
            entry[0] += 1
    ranked = sorted(counts.values(), key=lambda e: -e[0])
    return [(n, example) for n, example in ranked[:top]]


def scored_metrics(summary: dict) -> dict[str, int]:
    """Metric name -> number of videos it scored (``n``), for the metrics of a summary."""
    return {k: int(v.get("n") or 0) for k, v in summary.items() if isinstance(v, dict) and "mean" in v}


def report_lines(result: EvalResult, pred_dir) -> list[str]:
    """What the evaluator did, for the console: counts of scored, skipped, missing and extra videos and
    the most common skip reasons."""
    df, s = result.per_video, result.summary
    n_ok = int((df["status"] == "ok").sum()) if len(df) else 0
    missing, extra = s.get("missing_pred", []), s.get("extra_pred", [])
    lines = [f"videos: {n_ok} scored, {len(df) - n_ok} skipped (of {len(df)} in {pred_dir}), "
             f"{len(missing)} missing (ground truth without a prediction), "
             f"{len(extra)} extra (prediction without ground truth)"]
    for n, reason in skip_reasons(df):
        lines.append(f"  skipped {n}x: {reason}")
    for what, names in (("missing", missing), ("extra", extra)):
        if names:
            lines.append(f"  {what}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}")
    if s.get("dropped_without_gt"):
        lines.append(f"  not scored without --gt: {', '.join(s['dropped_without_gt'])}")
    return lines


def nothing_scored(result: EvalResult, pred_dir) -> str | None:
    """Why no metric has a value, or None when at least one has."""
    if any(n > 0 for n in scored_metrics(result.summary).values()):
        return None
    if not len(result.per_video):
        return (f"--pred {pred_dir} holds no video ({' '.join(VIDEO_EXTS)}); give the folder of generated "
                f"videos, named as their ground truth")
    if not scored_metrics(result.summary):
        return ("no metric to compute (without --gt only the metrics that need no ground truth run; "
                "give --gt DIR)")
    reasons = "; ".join(f"{n}x {r}" for n, r in skip_reasons(result.per_video, 2))
    return f"every video was skipped ({reasons}); per-video statuses are in per_video.csv"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m metrics.evaluate", description=__doc__.split("\n\n")[0],
                                 epilog="A bad argument or folder prints one line and exits 2 (--debug: "
                                        "the traceback); exit 1 when no video could be scored.")
    ap.add_argument("--pred", required=True, help="folder of generated videos")
    ap.add_argument("--gt", default=None, help="folder of ground-truth videos (same file stems)")
    ap.add_argument("--metrics", nargs="*", default=None, help=f"subset of {' '.join(registry.METRIC_NAMES)}")
    ap.add_argument("--out", default=None, help="output folder (default: --pred)")
    ap.add_argument("--weights", nargs="*", default=None, help="KEY=PATH for rows of core/weights.py")
    ap.add_argument("--no-standin", action="store_true", help="fail on a missing weight file instead of a stand-in")
    ap.add_argument("--preset", default="paper", choices=list(PRESETS))
    ap.add_argument("--opt", nargs="*", default=None, help="GROUP.OPTION=VALUE, e.g. FID.frame_stride=2")
    ap.add_argument("--subset", nargs="*", default=None,
                    help="NAME=REGEX over video names; score it with metrics named NAME:METRIC (e.g. open:Sync-C)")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--lab", default=None,
                    help="SynthTalk evaluator folder (python -m metrics.synthtalk FOLDER prints it): "
                         "scores Sync, Motion, FID, FVD and E-FID where no official file is given")
    ap.add_argument("--system", default=None,
                    help="log the scores to MLflow as a baseline row of this name (e.g. Hallo); needs --experiment")
    ap.add_argument("--experiment", default=None,
                    help="the ablation/table whose report shows the row (e.g. loopy_celebvhq)")
    ap.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or sqlite:///mlruns.db")
    ap.add_argument("--mlflow-experiment", default="talking-portrait-suite")
    ap.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = ap.parse_args(argv)
    if bool(args.system) != bool(args.experiment):
        ap.error("--system and --experiment go together: the system's name and the table it joins")
    result = evaluate_folders(args.pred, args.gt, args.metrics, _key_values(args.weights, "--weights"),
                              n_boot=args.n_boot, seed=args.seed, standin=not args.no_standin,
                              options=_parse_options(args.opt), device=args.device, preset=args.preset,
                              subsets=_key_values(args.subset, "--subset"), lab=args.lab)
    csv, js = write_result(result, args.out or args.pred)
    for name in [k for k, v in result.summary.items() if isinstance(v, dict) and "mean" in v]:
        s = result.summary[name]
        print(f"{name:>7}: {s['mean']:.4f} [{s['ci_low']:.4f}, {s['ci_high']:.4f}] n={s['n']} ({s['backbone']})")
    print("\n".join(report_lines(result, args.pred)))
    print(f"wrote {csv} and {js}")
    why = nothing_scored(result, args.pred)
    if why:
        print(f"metrics.evaluate: error: nothing was scored: {why}", file=sys.stderr)
        return 1
    if args.system:
        run_id = log_baseline(result, args.system, args.experiment, args.pred, (csv, js), args.tracking_uri,
                              args.mlflow_experiment)
        print(f"logged {args.system!r} as a baseline of {args.experiment!r}: MLflow run {run_id}")
    return 0


def log_baseline(result: EvalResult, system: str, experiment: str, pred_dir, files=(), tracking_uri: str | None = None,
                 mlflow_experiment: str = "talking-portrait-suite") -> str:
    """Log another system's scores as a baseline run; ``reports.build`` puts it in ``experiment``'s table.

    Tags: ``suite.kind=baseline``, ``suite.experiment``, ``suite.system``; metrics as a variant's
    (``test/<metric>`` with its CI). A newer baseline run of the same system replaces the older in the table.
    """
    from core.tracking import EXPERIMENT, KIND, Tracker

    tracker = Tracker(tracking_uri, mlflow_experiment)
    with tracker.run(f"{system} (baseline)", {KIND: "baseline", EXPERIMENT: experiment, "suite.system": system,
                                              "suite.pred_dir": str(Path(pred_dir).resolve()),
                                              "suite.preset": result.summary.get("preset")}) as run_id:
        tracker.log_summary(run_id, result.summary)
        for f in files:
            tracker.log_artifact(run_id, f, "eval")
    return run_id


if __name__ == "__main__":
    from core.cli import run_cli

    sys.exit(run_cli(main, "metrics.evaluate"))
