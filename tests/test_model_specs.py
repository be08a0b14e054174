"""One home for every model setting: the model YAML. The modules' typed specs (lightning_modules/spec.py and
<model>/spec.py) hold no defaults, so a key left out is an error naming it instead of a second value in the
code (issue 20 found five such values contradicting the YAML), and the three models use one set of names."""

from __future__ import annotations

import logging

import pytest
import torch
from omegaconf import OmegaConf

from lightning_modules.build import build_model
from tests.loopy_tiny import tiny_kwargs
from tests.test_joyvasa_module import joyvasa_kwargs
from tests.test_mcdm_module import make_module as mcdm_module
from tests.test_mcdm_module import mcdm_kwargs

torch.set_num_threads(1)


def _without(kwargs: dict, dotted: str) -> dict:
    group, _, key = dotted.partition(".")
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in kwargs.items()}
    if key:
        del out[group][key]
    else:
        del out[group]
    return out


@pytest.mark.parametrize("model,key", [
    # the five keys the code once filled in itself, contradicting the YAML
    ("mcdm", "motion_prior.motion_dim"), ("mcdm", "motion_prior.encoder_hidden"),
    ("mcdm", "motion_prior.dim"), ("mcdm", "motion_prior.heads"), ("joyvasa", "guidance.scale"),
    ("loopy", "guidance.audio_ratio"), ("loopy", "tsm.stride"), ("mcdm", "sampling.num_steps"),
])
def test_a_missing_model_key_is_an_error_naming_it(model, key):
    from lightning_modules.joyvasa import JoyVASAModule
    from lightning_modules.loopy import LoopyModule
    from lightning_modules.mcdm import MCDMModule

    kwargs, cls = {"loopy": (tiny_kwargs(), LoopyModule), "mcdm": (mcdm_kwargs(), MCDMModule),
                   "joyvasa": (joyvasa_kwargs(), JoyVASAModule)}[model]
    group, leaf = key.split(".")
    with pytest.raises(ValueError, match=rf"model\.{group}: missing key\(s\) \['{leaf}'\]"):
        cls(**_without(kwargs, key))


def test_an_unknown_or_old_model_key_is_an_error_naming_it():
    from lightning_modules.loopy import LoopyModule

    with pytest.raises(ValueError, match=r"model\.tsm: unknown key\(s\) \['strid'\]"):
        LoopyModule(**tiny_kwargs(tsm={"strid": 2}))
    with pytest.raises(ValueError, match=r"model\.sampling: unknown key\(s\) \['steps'\]"):
        mcdm_module(sampling={"steps": 2})
    with pytest.raises(ValueError, match=r"model\.tsm\.stride: expected int, got 'two'"):
        LoopyModule(**tiny_kwargs(tsm={"stride": "two"}))


def test_build_model_names_a_missing_group():
    cfg = {"_target_": "lightning_modules.loopy.LoopyModule", **_without(tiny_kwargs(), "guidance")}
    with pytest.raises(ValueError, match=r"model: missing key\(s\) model\.guidance of LoopyModule"):
        build_model(cfg)


def test_the_three_models_use_one_set_of_names():
    """noise_schedule, sampling.num_steps, guidance.* in every model YAML; no 'cfg', 'schedule' or 'steps'."""
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for name in ("loopy", "mcdm", "joyvasa"):
        m = OmegaConf.load(os.path.join(root, f"experiments/configs/model/{name}.yaml"))
        assert {"noise_schedule", "guidance", "sampling"} <= set(m), name
        assert "num_steps" in m.sampling and not {"cfg", "schedule", "train"} & set(m), name
        assert all(k.startswith(("guidance.", "sampling")) for k in m.inference_keys), name


def test_mta_heads_sets_the_temporal_attention_heads():
    """model.mta.heads was read by nothing (the temporal attention took present.heads)."""
    mod = mcdm_module(mta={"kind": "standard", "heads": 1}, present={"heads": 2})
    assert {a.attn.num_heads for a in mod.unet.temporal.values()} == {1}
    assert {a.heads for a in mod.unet.present_ref.values()} == {2}


def test_sampling_a_checkpoint_of_an_older_run_reads_its_renamed_keys(tmp_path, caplog):
    from experiments.sample import load_config

    old = OmegaConf.create({"scale": {"image_size": 32}, "model": {
        "_target_": "lightning_modules.mcdm.MCDMModule", "schedule": {"prediction_type": "sample"},
        "sampling": {"steps": 3, "guidance_scale": 1.5}, "train": {"cfg_drop": 0.2},
        "latent": {"factor": 8, "vae": None}}})
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(old))
    with caplog.at_level(logging.WARNING):
        cfg = load_config(OmegaConf.create({"ckpt": str(tmp_path / "last.ckpt")}))
    m = OmegaConf.to_container(cfg.model)
    assert m["noise_schedule"] == {"prediction_type": "sample"} and m["sampling"] == {"num_steps": 3}
    assert m["guidance"] == {"scale": 1.5, "present_drop": 0.2} and "train" not in m and "schedule" not in m
    assert m["latent"] == {"factor": 8, "vae": None, "vae_path": None, "autoencoder": None}
    assert "model.sampling.guidance_scale is now model.guidance.scale" in caplog.text
    loopy = OmegaConf.create({"model": {"cfg": {"audio_ratio": 4.0, "ref_ratio": 2.0},
                                        "guidance": {"scale": 1.0}}})
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(loopy))
    with pytest.raises(ValueError, match=r"model\.cfg and model\.guidance are both set"):
        load_config(OmegaConf.create({"ckpt": str(tmp_path / "last.ckpt")}))


def test_a_paper_module_without_sampling_or_parameter_groups_cannot_be_built():
    from lightning_modules.base import PortraitModule

    class Partial(PortraitModule):
        STAGES = ("stage1",)

        def parameter_groups(self):
            return {}

    with pytest.raises(TypeError, match="sample_items"):
        Partial()
