"""What a run trains once and shares (the data set's autoencoder, shared stages), control rows, sample
sheets and batched sampling (experiments/lab.py, train_once.py, stage_cache.py, controls.py,
reports/sample_sheet.py)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from core.train_once import get_or_build, read_meta
from tests.conftest import REPO
from tests.data_fixtures import synth_dm, synth_root  # noqa: F401  (fixtures)

# ------------------------------------------------------------------------------------- train once


def _builder(log: Path):
    def build(tmp: Path) -> dict:
        with open(log, "a") as f:
            f.write("built\n")
        (tmp / "w.txt").write_text("weights")
        return {"what": "test"}

    return build


def _check(folder: Path) -> None:
    if (folder / "w.txt").read_text() != "weights":
        raise ValueError(f"{folder / 'w.txt'}: damaged")


def test_a_folder_is_built_once_and_then_reused(tmp_path):
    log = tmp_path / "log.txt"
    (tmp_path / "cache" / ".k1.partial-999").mkdir(parents=True)  # a killed build's leftover
    a = get_or_build(tmp_path / "cache" / "k1", _builder(log), _check, "test entry")
    b = get_or_build(tmp_path / "cache" / "k1", _builder(log), _check, "test entry")
    assert a == b and log.read_text().count("built") == 1
    assert read_meta(a)["what"] == "test"
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_damaged_entry_is_moved_aside_with_a_warning_and_rebuilt(tmp_path, caplog):
    log = tmp_path / "log.txt"
    folder = get_or_build(tmp_path / "cache" / "k1", _builder(log), _check, "test entry")
    other = get_or_build(tmp_path / "cache" / "k2", _builder(log), _check, "test entry")
    (folder / "w.txt").write_text("garbage")
    with caplog.at_level(logging.WARNING):
        get_or_build(folder, _builder(log), _check, "test entry")
    assert "w.txt: damaged" in caplog.text and "training it again" in caplog.text
    assert (folder / "w.txt").read_text() == "weights" and log.read_text().count("built") == 3
    assert len(list((tmp_path / "cache").glob("k1.damaged-*"))) == 1
    assert (other / "w.txt").read_text() == "weights"  # nothing else is touched


def test_two_processes_started_at_once_build_one_intact_entry(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from core.train_once import get_or_build
        def build(tmp):
            with open({str(tmp_path / 'log.txt')!r}, 'a') as f:
                f.write('built\\n')
            time.sleep(1.0)
            (tmp / 'w.txt').write_text('weights')
            return {{'what': 'test'}}
        def check(folder):
            assert (folder / 'w.txt').read_text() == 'weights'
        print(get_or_build(Path({str(tmp_path / 'cache' / 'k')!r}), build, check, 'test entry'))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert (tmp_path / "log.txt").read_text().count("built") == 1
    assert len(set(outs)) == 1 and (tmp_path / "cache" / "k" / "w.txt").read_text() == "weights"


# ------------------------------------------------------------------------------- shared stages


def test_stage1_key_ignores_what_stage1_does_not_read(compose):
    from experiments.stage_cache import stage_signature
    from experiments.variants import expand

    cfg = compose(["ablation=loopy_components"], with_test_configs=False)
    by = {v.label: v.cfg for v in expand(cfg)}
    s1 = {label: json.dumps(stage_signature(c, 0), sort_keys=True) for label, c in by.items()}
    assert len(set(s1.values())) == 1  # every Table 3 row starts stage 2 from one stage 1
    assert all(stage_signature(c, 1) is None for c in by.values())  # and trains a stage 2 of its own
    c = by["Loopy (Full)"].copy()
    c.model.optim.lr = 0.5  # stage 1 reads the learning rate: another stage 1
    assert json.dumps(stage_signature(c, 0), sort_keys=True) != s1["Loopy (Full)"]
    c = by["Loopy (Full)"].copy()
    c.model.stages[1].max_steps = 7  # later stages' steps do not matter to stage 1
    assert json.dumps(stage_signature(c, 0), sort_keys=True) == s1["Loopy (Full)"]


def test_mcdm_and_joyvasa_rows_share_the_stages_they_do_not_ablate(compose):
    from experiments.stage_cache import stage_signature
    from experiments.variants import expand

    def keys(ablation, index):
        cfg = compose([f"ablation={ablation}"], with_test_configs=False)
        return {v.label: json.dumps(stage_signature(v.cfg, index), sort_keys=True) for v in expand(cfg)}

    s1, s2, s3 = keys("mcdm_components", 0), keys("mcdm_components", 1), keys("mcdm_components", 2)
    assert s1["w/o MTA"] == s1["MCDM"] and s2["w/o MTA"] == s2["MCDM"]  # the MTA trains in stage 3 only
    assert s3["MCDM"] == "null"  # stage 3 is every row's own
    assert s1["w/o F_a"] != s1["MCDM"] and s1["w/o F_pc"] != s1["MCDM"]
    render = keys("joyvasa_losses", 0)
    assert len(set(render.values())) == 1 and "null" not in render.values()


def test_runner_trains_a_shared_stage_once_and_later_runs_reuse_it(tmp_path, compose):
    from mlflow.tracking import MlflowClient

    from experiments.run import run

    uri = f"sqlite:///{tmp_path}/mlruns.db"
    for i in range(2):  # two calls, as two invocations of the same command
        cfg = compose(["ablation=toy_shared_stage", "trainer=cpu", "trainer.log_every_n_steps=1",
                       f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path}/out{i}", f"logger.tracking_uri={uri}",
                       "eval.n_boot=20", "build_reports=false", "eval.controls=[]"])
        results = run(cfg)
        assert not any("error" in r for r in results.values()), results
    c = MlflowClient(uri)
    runs = c.search_runs([c.get_experiment_by_name("talking-portrait-suite").experiment_id], max_results=50,
                         order_by=["attributes.start_time ASC"])
    kids = [r for r in runs if r.data.tags.get("suite.kind") == "variant"]
    stage1_trained = [bool(c.get_metric_history(r.info.run_id, "stage1-train/loss")) for r in kids]
    stage2_trained = [bool(c.get_metric_history(r.info.run_id, "stage2-train/loss")) for r in kids]
    assert stage1_trained == [True, False, False, False] and all(stage2_trained)
    assert all("stage1_from" in " ".join(r.data.tags) for r in kids[1:])
    first = torch.load(Path(kids[0].data.tags["suite.checkpoint"]), weights_only=True)["state_dict"]["offset"]
    second = torch.load(Path(kids[1].data.tags["suite.checkpoint"]), weights_only=True)["state_dict"]["offset"]
    assert not torch.equal(first, second)  # stage 2 (another learning rate) still trained apart


# ------------------------------------------------------------------------------------ controls


def _items():
    rng = np.random.default_rng(0)
    return [{"video_id": f"{ident}_test{i}", "identity": ident, "gt_path": f"/x/{ident}_{i}.mp4",
             "frames": rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8),
             "audio": rng.standard_normal(n * 640).astype(np.float32)}
            for ident, i, n in (("a", 0, 10), ("a", 1, 12), ("b", 0, 9))]


def test_control_videos_break_the_ground_truth_one_way_each():
    from experiments.controls import control_videos

    items = _items()
    gt = control_videos("ground_truth", items)
    shuffled = control_videos("audio_shuffled", items)
    swapped = control_videos("reference_swapped", items)
    still = control_videos("reference_still", items)
    for it, (f, a), (sf, sa), (wf, wa), (tf, _) in zip(items, gt, shuffled, swapped, still, strict=True):
        n = len(it["frames"])
        assert np.array_equal(f, it["frames"]) and np.array_equal(a, it["audio"])
        assert np.array_equal(sf, it["frames"]) and len(sa) == len(it["audio"])
        assert not np.array_equal(sa, it["audio"])  # every item hears another item
        others = [o for o in items if o["identity"] != it["identity"]]
        assert len(wf) == n and any(np.array_equal(wf[0], o["frames"][0]) for o in others)
        assert np.array_equal(wa, it["audio"])
        assert np.array_equal(tf, np.repeat(it["frames"][:1], n, 0))
    with pytest.raises(ValueError, match="eval.controls: unknown control"):
        control_videos("nope", items)


def test_own_clock_control_takes_the_generators_frames_and_needs_a_generator():
    from experiments.controls import available, control_videos

    items = _items()
    assert not available("own_clock", items) and available("reference_still", items)
    with pytest.raises(ValueError, match=r"own_clock re-renders the test clips.*'a_test0'.*remove own_clock"):
        control_videos("own_clock", items)
    for it in items:
        it["own_clock"] = 255 - it["frames"]
    assert available("own_clock", items)
    for it, (f, a) in zip(items, control_videos("own_clock", items), strict=True):
        assert np.array_equal(f, 255 - it["frames"]) and np.array_equal(a, it["audio"])


def test_synthtalk_test_set_carries_own_clock_frames(synth_dm):  # noqa: F811 (the fixture)
    from experiments.controls import test_set

    assert all("own_clock" not in it for it in test_set(synth_dm, seed=0, controls=["at_rest"]))  # not asked for
    items = test_set(synth_dm, seed=0)
    assert items and all(it["own_clock"].shape == it["frames"].shape == it["at_rest"].shape for it in items)
    assert all(np.abs(it["own_clock"][0].astype(int) - it["frames"][0]).mean() < 8 for it in items)  # frame 0


# ------------------------------------------------------------------------------- sample sheets


def test_sample_sheet_shows_ground_truth_and_every_variant(tmp_path):
    from PIL import Image

    from core.video_io import write_video
    from experiments.prediction_writer import load_frames, save_frames
    from reports.sample_sheet import compose

    rng = np.random.default_rng(0)
    for d in ("pred", "gt"):
        for i in range(3):
            write_video(tmp_path / d / f"item{i}.mp4", rng.integers(0, 255, (20, 16, 16, 3), dtype=np.uint8))
    frames = load_frames(save_frames(tmp_path / "pred", tmp_path / "gt", tmp_path / "f.npz", k=4))
    assert frames["pred"].shape == (3, 4, 16, 16, 3) and frames["index"][0].tolist() == [0, 6, 13, 19]
    png = compose({"A": frames, "B": frames}, "t", tmp_path / "t.samples.png")
    w, h = Image.open(png).size
    assert w > 4 * 16 and h > 3 * 16 * 3  # 3 items x (ground truth + 2 variants) rows of 4 frames


# ---------------------------------------------------------------------------- batched sampling


def test_test_items_generated_side_by_side_do_not_affect_each_other():
    from tests.loopy_tiny import tiny_module, wake_zero_inits

    m = tiny_module().eval()
    wake_zero_inits(m)
    g = torch.Generator()
    ref = torch.rand(3, 3, 32, 32) * 2 - 1
    audio = torch.randn(3, 10 * 640) * 0.1
    with torch.no_grad():
        ab = m.generate(ref[[0, 1]], audio[[0, 1]], 10, 25.0, generator=g.manual_seed(0))
        ac = m.generate(ref[[0, 2]], audio[[0, 2]], 10, 25.0, generator=g.manual_seed(0))
    assert ab.shape == (2, 10, 3, 32, 32)
    assert torch.allclose(ab[0], ac[0], atol=1e-5)
    assert not torch.allclose(ab[1], ac[1], atol=1e-3)


def test_test_items_of_other_lengths_are_padded_to_the_longest():
    from datamodules.clips import collate_test_items

    items = [{"audio": torch.ones(n * 640), "num_frames": torch.tensor(n), "meta": {"video_id": str(n)}}
             for n in (3, 5)]
    b = collate_test_items(items)
    assert b["audio"].shape == (2, 5 * 640) and b["audio"][0, 3 * 640:].abs().sum() == 0
    assert b["num_frames"].tolist() == [3, 5]


# -------------------------------------------------------------------- initialisation streams


def test_switching_a_module_off_leaves_the_other_modules_initial_weights_alone():
    from tests.loopy_tiny import tiny_module

    full = dict(tiny_module().named_parameters())
    for other in (tiny_module(a2l={"enabled": False}), tiny_module(temporal={"layout": "single"}),
                  tiny_module(temporal={"heads": 4})):
        other = dict(other.named_parameters())
        shared = [n for n in full if n in other and full[n].shape == other[n].shape and "temporal" not in n
                  and "audio_proj" not in n]
        assert any(n.startswith("a2l.") for n in shared) or "a2l.embeddings" not in other
        for name in shared:  # the U-Nets, the audio-to-latents module: untouched by the others' switches
            assert torch.equal(full[name], other[name]), name


# --------------------------------------------------------------------- the data set's autoencoder


AE = {"in_channels": 3, "out_channels": 3, "block_out_channels": [8, 16], "layers_per_block": 1,
      "latent_channels": 4, "norm_num_groups": 4, "down_block_types": ["DownEncoderBlock2D"] * 2,
      "up_block_types": ["UpDecoderBlock2D"] * 2, "sample_size": 16}


def test_autoencoder_learns_and_loads_as_a_vae_folder(tmp_path):
    import lightning.pytorch as pl

    from lightning_modules.autoencoder import AutoencoderModule, FrameDataset
    from lightning_modules.blocks.latent_codec import VAECodec, build_latent_codec

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (4, 16, 16, 3), dtype=np.uint8)
    frames = base[rng.integers(0, 4, 64)]
    torch.manual_seed(0)
    m = AutoencoderModule(AE, lr=3e-3)
    x = torch.from_numpy(base).permute(0, 3, 1, 2).float() / 127.5 - 1
    before = m.psnr(x)
    trainer = pl.Trainer(accelerator="cpu", max_steps=60, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(m, torch.utils.data.DataLoader(FrameDataset(frames, flip=False), batch_size=16, shuffle=True))
    assert m.psnr(x) > before + 3
    m.vae.register_to_config(scaling_factor=1.0 / m.latent_std(x))
    m.vae.save_pretrained(tmp_path / "vae")
    codec = build_latent_codec(None, 8, None, str(tmp_path / "vae"), {"steps": 1})
    assert isinstance(codec, VAECodec) and codec.latent_channels == 4 and codec.factor == 2
    assert abs(float(codec.encode(x).std()) - 1.0) < 0.05  # unit-variance latents, as SD's 0.18215 gives
    with pytest.raises(ValueError, match="model.latent.vae_path is null"):
        build_latent_codec(None, 8, None, None, {"steps": 1})


def test_reference_net_and_denoiser_start_from_the_same_weights():
    """Loopy §3.1: both U-Nets start from SD 1.5; without its weights they start from one random draw."""
    from tests.loopy_tiny import tiny_module

    dual = tiny_module().dual_unet
    ref, den = dual.reference_net.state_dict(), dual.denoising_unet.state_dict()
    assert ref.keys() == den.keys() and all(torch.equal(ref[k], den[k]) for k in ref)


# ------------------------------------------------------------------------------- SynthTalk evaluators
#: Few steps: enough to write every file of the evaluator cache, not to learn.
QUICK_EVALUATORS = "eval.evaluators={face: {steps: 3, width: 8}, sync: {steps: 2, batch: 4}, skill: false}"


def test_eval_lab_auto_trains_the_synthtalk_evaluators_once_and_scores_with_them(tmp_path, compose, monkeypatch):
    from datamodules.synthtalk import SynthTalkDataModule
    from experiments.lab import prepare_variant
    from experiments.run import evaluate, log_evaluators
    from tests.toy import ToyDataModule

    data = dict(root=str(tmp_path / "data"), image_size=32, num_identities=3, clips_per_identity=1,
                seconds_per_clip=2.0, test_identities=["astronaut"], test_seconds=2.0, progress=False)
    dm = SynthTalkDataModule(**data)
    cfg = compose(["ablation=toy_guidance", f"paths.root_dir={tmp_path}", QUICK_EVALUATORS])
    cfg = prepare_variant(cfg, dm)
    lab = Path(cfg.eval.lab)
    assert lab.parent == dm.folder / "evaluators" and (lab / "syncnet.pt").is_file()

    def no_training(*a, **k):
        raise AssertionError("the evaluators were trained a second time")

    monkeypatch.setattr("metrics.synthtalk.face_train.train_facenet", no_training)
    monkeypatch.setattr("metrics.synthtalk.syncnet.train_syncnet", no_training)
    again = prepare_variant(compose(["ablation=toy_guidance", f"paths.root_dir={tmp_path}", QUICK_EVALUATORS]), dm)
    assert again.eval.lab == cfg.eval.lab

    toy = ToyDataModule(root=str(tmp_path / "toy"), image_size=32, num_test=2, frames=20)
    assert prepare_variant(compose(["ablation=toy_guidance"]), toy).eval.lab is None  # not SynthTalk: off
    off = compose(["ablation=toy_guidance", "eval.lab=null"])
    assert prepare_variant(off, dm).eval.lab is None
    with pytest.raises(FileNotFoundError, match="eval.lab="):
        prepare_variant(compose(["ablation=toy_guidance", f"eval.lab={tmp_path}"]), dm)

    # the test split's ground truth scored against itself: the Sync and FID cells name the SynthTalk networks
    test_dir = tmp_path / "gt"
    test_dir.mkdir()
    for r in dm.records("test"):
        (test_dir / Path(r.path).name).symlink_to(Path(r.path).resolve())
    with open_dict_(cfg):
        cfg.experiment.metrics = ["Sync-C", "FID"]
        cfg.eval.n_boot = 10
    summary = evaluate(cfg, 0, test_dir, test_dir, tmp_path / "scored").summary
    assert summary["Sync-C"]["backbone"].startswith("synthtalk:") and not summary["Sync-C"]["comparable_to_paper"]
    assert summary["FID"]["backbone"].startswith("synthtalk:")
    with open_dict_(cfg):
        cfg.eval.lab = None
    assert evaluate(cfg, 0, test_dir, test_dir, tmp_path / "scored2").summary["FID"]["backbone"].startswith("standin:")

    class Client:
        def __init__(self):
            self.metrics, self.tags = [], {}

        def log_batch(self, run_id, metrics):
            self.metrics += metrics

        def set_tag(self, run_id, k, v):
            self.tags[k] = v

    class Tracker:
        client, artifacts = Client(), []

        def log_artifact(self, run_id, path, folder):
            self.artifacts.append(Path(path).name)

    (lab / "skill.json").write_text(json.dumps(_SKILL))
    tracker = Tracker()
    log_evaluators(tracker, "parent", str(lab))
    log_evaluators(tracker, "parent", str(lab))  # once per run
    assert tracker.artifacts.count("skill.json") == 1 and tracker.client.tags["suite.evaluators"] == str(lab)
    logged = {m.key: m.value for m in tracker.client.metrics}
    assert logged["evaluators/sync_offset_within_1"] == 0.97 and logged["evaluators/nme_trained"] == 0.02


def open_dict_(cfg):
    from omegaconf import open_dict

    return open_dict(cfg)


_SKILL = {"face": {"nme_trained_identities": 0.02, "nme_held_out_identities": 0.08, "Glo": {}, "Exp": {},
                   "found": {"clean": 1.0}},
          "sync": {"offset_within_1_frame": 0.97, "sync_c_own_audio": {"mean": 12.0},
                   "sync_c_shuffled_audio": {"mean": 4.0}, "intervals_apart": True},
          "features": {}}


def test_the_long_cpu_preset_keeps_the_setup_it_was_measured_with_and_trains_a_longer_plain_stage2(compose):
    """scale=cpu_long (README "SynthTalk laboratory") keeps the head counts and the stage 1 with which its
    tables in docs/SYNTHTALK_RESULTS.md were made (the main job's before 2026-12-06), so the same command
    remakes them; its stage 2 sees at least 3x the main job's samples, with the papers' plain loss. Everything
    else is the tiny preset's."""
    tiny = compose([], with_test_configs=False)
    long = compose(["scale=cpu_long"], with_test_configs=False)
    assert long.scale.name == "cpu_long"
    assert (long.model.unet.attention_head_dim, long.model.temporal.heads) == (8, 4)
    assert dict(long.model.stages[0]) == {"name": "stage1", "max_steps": 600, "batch_size": 16}
    s2_tiny, s2_long = tiny.model.stages[1], long.model.stages[1]
    assert s2_long.batch_size * s2_long.max_steps >= 3 * (s2_tiny.get("batch_size") or tiny.data.batch_size) * s2_tiny.max_steps
    assert s2_long.get("snr_gamma") is None and s2_long.get("lip_weight") is None
    for key in ("model", "data"):
        a, b = dict(tiny[key]), dict(long[key])
        for d in (a, b):
            d.pop("stages", None)
            if key == "model":
                d["unet"] = {k: v for k, v in dict(d["unet"]).items() if k != "attention_head_dim"}
                d["temporal"] = {k: v for k, v in dict(d["temporal"]).items() if k != "heads"}
        assert a == b, key
