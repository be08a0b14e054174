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
