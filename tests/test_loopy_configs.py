"""Loopy configs: presets compose, every ablation/table variant is a valid override of the module's keys."""

import pytest
import torch
from omegaconf import OmegaConf

from experiments.variants import expand
from lightning_modules.build import build_model
from lightning_modules.loopy.temporal_segment import TemporalSegmentModule


@pytest.mark.parametrize("scale", ["tiny", "cpu_long", "small", "paper"])
def test_presets_compose(compose, scale):
    cfg = compose(["model=loopy", f"scale={scale}"], with_test_configs=False)
    assert cfg.model._target_ == "lightning_modules.loopy.LoopyModule"
    assert cfg.data.clip.num_frames == cfg.model.num_frames == 12
    assert cfg.data.clip.num_motion_frames == 124  # what the default TSM reads
    assert [s.name for s in cfg.model.stages] == ["stage1", "stage2"]
    if scale == "paper":
        assert OmegaConf.to_container(cfg.model.unet.block_out_channels) == [320, 640, 1280, 1280]
        assert cfg.model.latent.vae.latent_channels == 4


EXPECTED = {
    "tsm_stride": ["s = 1, r = 2", "s = 2, r = 2", "s = 3, r = 2", "s = 4, r = 1", "Loopy (Full)"],
    "tsm_abstraction": ["mean sample", "random sample", "Loopy (Full)"],
    "loopy_components": ["w/o inter-clip temp.", "w/o TSM", "w/o A2L", "1 temp.+ 20 MF", "Simple Baseline", "Loopy (Full)"],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_ablation_variants_are_overrides(compose, name):
    cfg = compose([f"ablation={name}"], with_test_configs=False)
    variants = expand(cfg)
    assert [v.label for v in variants] == EXPECTED[name]
    tsms = []
    for v in variants:
        tsm = TemporalSegmentModule(**v.cfg.model.tsm)
        assert tsm.num_input_frames <= v.cfg.data.clip.num_motion_frames
        tsms.append((tsm.stride, tsm.expand_ratio, tsm.abstraction, tsm.enabled, v.cfg.model.temporal.layout,
                     v.cfg.model.a2l.enabled))
    assert len(set(tsms)) == len(tsms)  # every variant really differs


def test_component_variants_build_the_right_modules(compose):
    variants = {v.label: v for v in expand(compose(["ablation=loopy_components"], with_test_configs=False))}
    torch.manual_seed(0)
    base = variants["Simple Baseline"].cfg.model
    m = build_model(base)
    assert m.a2l is None and not m.tsm.enabled and m.tsm.num_output_frames == 4
    assert all(b.intra is None for b in m.dual_unet.temporal.values())
    one = build_model(variants["1 temp.+ 20 MF"].cfg.model)
    assert one.tsm.num_input_frames == 20 and one.tsm.indices.tolist() == list(range(20))


def test_cfg_table_grid(compose):
    cfg = compose(["table=loopy_cfg"], with_test_configs=False)
    grid = [(v.cfg.model.guidance.ref_ratio, v.cfg.model.guidance.audio_ratio) for v in expand(cfg)]
    assert grid == [(1.0, 1.0), (2.0, 5.0), (2.5, 5.0), (3.0, 5.0), (3.5, 5.0), (3.0, 3.0), (3.0, 4.0), (3.0, 6.0)]
    assert cfg.experiment.paper_table == "loopy_table7_cfg"
