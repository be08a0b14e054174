"""experiments.bench on the toy model: the measurements exist and are sane (no timing asserted)."""

from __future__ import annotations

from hydra import compose, initialize_config_dir

from experiments.bench import bench_sample, bench_train
from experiments.timing import machine
from tests.conftest import REPO, TEST_CONFIGS


def test_train_and_sample_parts_report_positive_figures(tmp_path):
    with initialize_config_dir(str(REPO / "experiments" / "configs"), version_base="1.3"):
        cfg = compose("bench", overrides=["model=toy", "data=toy", "trainer=cpu", f"paths.root_dir={tmp_path}",
                                          f"hydra.searchpath=[file://{TEST_CONFIGS}]"])
    tr = bench_train(cfg, steps=3)
    assert tr["train_s_per_step"] > 0 and tr["train_clips_per_s"] > 0 and tr["stage"] == "stage2"
    sa = bench_sample(cfg, items=2)
    assert sa["sample_items"] == 2 and sa["sample_s_per_item"] > 0 and sa["sample_rtf"] > 0
    assert "CPU" in machine() or "CUDA" in machine()


def test_frechet_part_states_the_interval_cost():
    from experiments.bench import PARTS

    with initialize_config_dir(str(REPO / "experiments" / "configs"), version_base="1.3"):
        cfg = compose("bench", overrides=["bench.frechet.dim=64", "bench.frechet.videos=4",
                                          "bench.frechet.rows_per_video=40", "bench.frechet.timed_resamples=2"])
    r = PARTS["frechet"](cfg)
    assert r["full_rows_per_side"] == 160 > 64 and r["low_rank_rows_per_side"] <= 64
    for case in ("full", "low_rank"):
        assert r[f"{case}_s_per_interval"] == r[f"{case}_s_per_resample"] * 101 > 0


def _bench_cfg(*overrides):
    with initialize_config_dir(str(REPO / "experiments" / "configs"), version_base="1.3"):
        return compose("bench", overrides=list(overrides))


def test_the_model_benchmarks_are_parts_of_one_command(tmp_path):
    """MCDM's memory benchmark, the parameter counts and JoyVASA's motion speed were three scripts of their
    own; they are parts of experiments.bench, composed by Hydra like every other part."""
    import json

    import pytest

    from core.cli import ConfigError
    from experiments.bench import PARTS

    mcdm = _bench_cfg("model=mcdm", "scale=tiny", "bench.mcdm_memory.frames=[20]", "bench.mcdm_memory.steps=1",
                      f"bench.mcdm_memory.out={tmp_path / 'mem.json'}")
    counts = PARTS["params"](mcdm)
    assert set(counts) >= {"unet", "motion_prior", "memory_temporal_attention", "latent_codec_frozen"}
    assert all(isinstance(v, int) and v >= 0 for v in counts.values()) and counts["unet"] > 0
    mem = PARTS["mcdm_memory"](mcdm)
    # a 16-frame clip twice: the state is one memory per temporal layer, whatever the length
    assert mem["20_frames.steps"] == 1 and mem["20_frames.peak_rss_mib"] > 0
    assert mem["20_frames.memory_state_floats"] > 0
    assert json.loads((tmp_path / "mem.json").read_text())[0]["frames"] == 20
    joy = _bench_cfg("model=joyvasa", "scale=tiny", "bench.joyvasa_motion.seconds=1.0",
                     "bench.joyvasa_motion.repeats=1")
    r = PARTS["joyvasa_motion"](joy)
    assert r["frames"] == 25 and r["rtf"] > 0 and r["dit_seconds"] > 0
    with pytest.raises(ConfigError, match="add model=mcdm"):
        PARTS["mcdm_memory"](joy)
