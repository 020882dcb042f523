"""The MLP over table rows: plain, with periodic embeddings (MLP-PLR) or piecewise-linear ones, for
regression and classification, and reloaded from its checkpoint with the same bins and outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dl_core
from dl_core.data import load_frame
from dl_core.runs.pipeline import train
from dl_core.serving import load_run

TINY_MLP = ["model=mlp", "model.n_blocks=2", "model.d_block=32", "data=synthetic_tabular",
            "data.generator.n_rows=600", "trainer=tiny", "trainer.max_epochs=4",
            "trainer.batch_size=64", "trainer.lr=3e-3", "hardware=cpu1"]


@pytest.mark.parametrize("embeddings", ["none", "periodic", "piecewise_linear"])
def test_every_embedding_trains_and_reloads_to_the_same_outputs(embeddings: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cfg = dl_core.compose(*TINY_MLP, f"model.num_embeddings={embeddings}", "model.d_embedding=4", run_dir=run_dir)
    train(cfg)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_r2"] > 0.3  # learned something in four epochs
    at_training = pd.read_csv(run_dir / "predictions_test.csv")
    run = load_run(run_dir)
    reloaded = run.predict(load_frame(cfg.data).loc[at_training["row"]].drop(columns="target"))
    np.testing.assert_allclose(reloaded["predicted"], at_training["predicted"], rtol=1e-5)
    if embeddings != "none":
        assert run.estimator.module.num_embeddings is not None


@pytest.mark.parametrize("n_classes", [2, 3])
def test_classification_binary_and_multiclass(n_classes: int, tmp_path: Path) -> None:
    cfg = dl_core.compose(*TINY_MLP, "data.task=classification", f"data.generator.n_classes={n_classes}",
                          run_dir=tmp_path / "run")
    train(cfg)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    table = pd.read_csv(tmp_path / "run" / "predictions_test.csv")
    np.testing.assert_allclose(table[[f"prob_class_{k}" for k in range(n_classes)]].sum(axis=1), 1.0, rtol=1e-5)
    assert metrics["test_accuracy"] > 1.2 / n_classes


def test_weight_decay_spares_biases_and_the_periodic_frequencies(make_cfg) -> None:
    from dl_core.data import build_bundle
    from dl_core.models.build import build_model

    cfg = make_cfg(*TINY_MLP, "model.num_embeddings=periodic")
    model = build_model(cfg.model, build_bundle(cfg.data).spec)
    decayed, spared = model.make_parameter_groups()
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in spared["params"]) == sorted(
        n for n in names.values() if n.endswith("bias") or n.startswith("num_embeddings.periodic."))
    assert spared["weight_decay"] == 0.0 and "weight_decay" not in decayed
