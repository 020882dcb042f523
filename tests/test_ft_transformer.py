"""The FT-Transformer wrapper: the paper's defaults, rtdl's optimizer groups, sizes from the data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rtdl_revisiting_models as rtdl
import torch
from omegaconf import OmegaConf

from dl_core.data import build_bundle
from dl_core.engine.loop import parameter_groups
from dl_core.models.build import build_model
from dl_core.models.ft_transformer import FTTransformerConfig
from helpers import DATA, run_entry


def test_config_is_the_papers_default_under_rtdl_names(make_cfg):
    """Every rtdl argument at the paper's default; besides them only the harness's `quantiles`, null: point outputs
    (the paper's)."""
    model_cfg = OmegaConf.to_container(make_cfg("model=ft_transformer").model)
    defaults = rtdl.FTTransformer.get_default_kwargs(n_blocks=3)
    assert model_cfg.pop("quantiles") is None
    for key, value in model_cfg.items():
        if key != "_target_":
            assert value == pytest.approx(defaults[key]), key


def test_sizes_come_from_the_data_and_embeddings_get_no_weight_decay(make_cfg):
    cfg = make_cfg("model=ft_transformer", "model.n_blocks=1", "model.d_block=16", "model.attention_n_heads=2",
                   "data=synthetic_tabular", "data.task=classification", "data.generator.n_rows=200",
                   "data.generator.n_classes=4")
    bundle = build_bundle(cfg.data)
    model = build_model(cfg.model, bundle.spec)
    assert model.cont_embeddings.weight.shape[0] == bundle.spec["n_cont_features"] == 6
    assert [e.num_embeddings for e in model.cat_embeddings.embeddings] == bundle.spec["cat_cardinalities"] == [6, 6]
    (x_num, x_cat), _ = bundle.splits["train"].batch(torch.arange(5))
    assert model(x_num, x_cat).shape == (5, 4)
    decay, no_decay = parameter_groups(model, 1e-5)
    assert decay["weight_decay"] == 1e-5 and no_decay["weight_decay"] == 0.0
    no_decay_ids = {id(p) for p in no_decay["params"]}
    for param in [*model.cat_embeddings.parameters(), model.cont_embeddings.weight,
                  *model.backbone.blocks[0].ffn_normalization.parameters()]:
        assert id(param) in no_decay_ids
    assert id(model.backbone.blocks[0].ffn.linear1.weight) not in no_decay_ids


def test_forward_accepts_a_table_without_numeric_or_categorical_columns():
    small = OmegaConf.structured(FTTransformerConfig(n_blocks=1, d_block=8, attention_n_heads=2))
    only_cat = build_model(small, {"n_cont_features": 0, "cat_cardinalities": [3], "d_out": 1})
    assert only_cat(torch.zeros(4, 0), torch.ones(4, 1, dtype=torch.int64)).shape == (4, 1)
    only_num = build_model(small, {"n_cont_features": 2, "cat_cardinalities": [], "d_out": 1})
    assert only_num(torch.zeros(4, 2), torch.zeros(4, 0, dtype=torch.int64)).shape == (4, 1)


def test_california_preset_reads_the_shipped_csv_in_100k_units(make_cfg):
    cfg = make_cfg("experiment=california_ft_transformer")
    assert Path(cfg.data.path).resolve() == (DATA / "california_housing.csv").resolve()
    assert cfg.model._target_.endswith("FTTransformer") and cfg.trainer.lr == 1e-4
    bundle = build_bundle(cfg.data)
    prep = bundle.preprocessor
    assert prep.categorical_columns == ["ocean_proximity"]
    actual = bundle.task.decode(bundle.splits["test"].targets().numpy())
    assert actual.min() > 0.1 and actual.max() < 5.01  # $100k units: the capped value is 500,001 dollars
    assert [len(bundle.splits[s]) for s in ("train", "val", "test")] == [13209, 3302, 4129]


@pytest.mark.slow
def test_train_py_runs_ft_transformer_on_synthetic_tabular(tmp_path):
    result = run_entry("train.py", "model=ft_transformer", "data=synthetic_tabular", "model.n_blocks=1",
                       "model.d_block=16", "data.generator.n_rows=300", "trainer=tiny", "trainer.max_epochs=1",
                       "hardware=cpu1", f"hydra.run.dir={tmp_path}", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert {"test_rmse", "test_r2"} <= set(json.loads((tmp_path / "metrics.json").read_text()))
