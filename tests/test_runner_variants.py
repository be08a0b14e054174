"""Expansion of ablation files into variants (experiments/variants.py)."""

import pytest
from omegaconf import OmegaConf

from experiments.variants import VariantError, expand


def _cfg(variants, seeds=None):
    return OmegaConf.create({
        "seed": 7, "seeds": seeds,
        "paths": {"output_dir": "out"},
        "model": {"lr": 0.1, "tsm": {"stride": 4, "expand_ratio": 2}},
        "experiment": {"name": "x", "variants": variants},
    })


def test_variants_in_file_order_with_overrides_applied():
    vs = expand(_cfg({"s = 1, r = 2": {"model.tsm.stride": 1}, "full": {}, "s = 4, r = 1": {"model.tsm.expand_ratio": 1}}))
    assert [v.label for v in vs] == ["s = 1, r = 2", "full", "s = 4, r = 1"]
    assert [v.cfg.model.tsm.stride for v in vs] == [1, 4, 4]
    assert [v.cfg.model.tsm.expand_ratio for v in vs] == [2, 2, 1]
    assert all(v.seed == 7 for v in vs)
    assert vs[0].cfg.experiment.variant == "s = 1, r = 2"


def test_seeds_multiply_variants_seed_inner():
    vs = expand(_cfg({"a": {}, "b": {"model.lr": 1.0}}, seeds=[0, 1, 2]))
    assert [(v.label, v.seed) for v in vs] == [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1), ("b", 2)]
    assert [v.cfg.seed for v in vs] == [0, 1, 2, 0, 1, 2]
    assert vs[3].cfg.model.lr == 1.0 and vs[0].cfg.model.lr == 0.1


def test_no_variants_is_one_default_run():
    vs = expand(_cfg(None))
    assert [v.label for v in vs] == ["default"]


def test_unknown_key_names_variant_key_and_where_to_look():
    with pytest.raises(VariantError) as e:
        expand(_cfg({"ok": {}, "typo": {"model.tsm.strid": 2}}))
    msg = str(e.value)
    assert "'typo'" in msg and "model.tsm.strid" in msg and "--cfg job" in msg


def test_variants_do_not_leak_into_each_other():
    vs = expand(_cfg({"a": {"model.tsm.stride": 1}, "b": {}}))
    assert vs[1].cfg.model.tsm.stride == 4


def test_open_set_subset_follows_the_held_out_identities(compose):
    """Loopy Table 3's open-set half scores the test videos of identities never trained on."""
    import re

    for data, ids in (("synthtalk", ["face06", "face07"]), ("synthtalk_gpu", ["face09", "face10", "face11"])):
        cfg = expand(compose(["ablation=tsm_stride", f"data={data}"], with_test_configs=False))[0].cfg
        pattern = re.compile(cfg.eval.subsets.open)
        assert list(cfg.data.test_identities) == ids
        assert all(pattern.search(f"{i}_test0") for i in ids)
        assert not pattern.search("astronaut_test0") and not pattern.search("face0_test0")
        seen = re.compile(cfg.eval.subsets.seen)  # the complement: clips of identities trained on
        assert not any(seen.search(f"{i}_test0") for i in ids)
        assert seen.search("astronaut_test0") and seen.search("face0_test0") and seen.search("face02_test2")


@pytest.mark.parametrize("key, value, kind", [("model.tsm.stride", "abc", "an integer"),
                                              ("model.tsm.stride", 2.5, "an integer"),
                                              ("model.lr", "fast", "a number"),
                                              ("model.tsm.stride", [1, 2], "an integer")])
def test_a_value_of_the_wrong_type_names_variant_key_and_type(key, value, kind):
    """Issue 19, item 4: refused while expanding, before any run or folder exists."""
    with pytest.raises(VariantError, match=rf"'s = 1'.*{key.replace('.', '[.]')}.*expected {kind}"):
        expand(_cfg({"full": {}, "s = 1": {key: value}}))


def test_values_of_a_compatible_type_pass():
    vs = expand(_cfg({"int as float": {"model.lr": 1}, "null": {"model.tsm.stride": None},
                      "interpolation": {"model.tsm.stride": "${model.tsm.expand_ratio}"}}))
    assert vs[0].cfg.model.lr == 1 and vs[1].cfg.model.tsm.stride is None and vs[2].cfg.model.tsm.stride == 2
