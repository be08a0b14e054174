"""Every ablation and table config composes, names only existing keys in its variants, and maps its
metrics onto columns and rows that exist in the paper CSV it sits beside."""
from __future__ import annotations

import pandas as pd
import pytest

from experiments.variants import expand
from reports.tables import PAPER_DIR
from tests.conftest import REPO

CONFIGS = sorted(f"{p.parent.name}={p.stem}" for group in ("ablation", "table")
                 for p in (REPO / "experiments" / "configs" / group).glob("*.yaml"))


def test_every_paper_table_has_a_config():
    tables = {c.split("=")[1] for c in CONFIGS}
    for name in ("tsm_stride", "loopy_components", "tsm_abstraction", "loopy_cfg", "loopy_celebvhq", "loopy_ravdess",
                 "loopy_simple_baseline", "mcdm_hdtf", "mcdm_celebvhq", "mcdm_talkingface_wild", "mcdm_components",
                 "mcdm_variants", "mcdm_alpha", "mcdm_long_term", "joyvasa_celebvhq", "joyvasa_openset",
                 "joyvasa_losses", "joyvasa_cfg"):
        assert name in tables, name


@pytest.mark.parametrize("override", CONFIGS)
def test_config_composes_and_maps_onto_its_paper_csv(compose, override):
    cfg = compose([override], with_test_configs=False)
    assert cfg.experiment.name == override.split("=")[1]
    variants = expand(cfg)  # raises on a variant key that is not in the composed config
    assert variants and len({v.label for v in variants}) == len(cfg.experiment.variants)
    if not cfg.experiment.paper_table:
        return
    csv = pd.read_csv(PAPER_DIR / f"{cfg.experiment.paper_table}.csv")
    columns = dict(cfg.experiment.report.get("columns") or {})
    assert set(columns) <= set(cfg.experiment.metrics), "report.columns maps a metric the experiment does not score"
    assert all(col in csv.columns for col in columns.values()), (columns, list(csv.columns))
    shown = [m for m in cfg.experiment.metrics if columns.get(m, m) in csv.columns]
    assert shown, f"no metric of {override} has a column in {cfg.experiment.paper_table}.csv"
    rows = cfg.experiment.report.get("paper_rows")
    if rows:
        assert set(rows) <= set(csv.iloc[:, 0]), (rows, list(csv.iloc[:, 0]))
