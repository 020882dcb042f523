"""TabM: k members trained on the mean of their losses and averaged when predicting, numeric embeddings
whose piecewise-linear bins come from the training split only, classification, and a run served and
predicted like any other. Real tabm package, real tiny training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rtdl_num_embeddings
import torch
from torch.nn import functional as F

import dl_core
from dl_core.data import build_bundle, load_frame
from dl_core.models.build import build_model
from dl_core.models.outputs import MEMBERS, MembersOutput, declared_kind
from dl_core.runs.pipeline import train
from dl_core.task import Classification, Regression
from test_gbdt import served_and_predicted

TINY_TABM = ["model=tabm", "model.k=4", "model.n_blocks=1", "model.d_block=32", "data=synthetic_tabular",
             "data.generator.n_rows=600", "trainer=tiny", "trainer.batch_size=64",
             "trainer.lr=3e-3", "hardware=cpu1"]


def tabm(tmp_path: Path, *overrides: str):
    cfg = dl_core.compose(*TINY_TABM, *overrides, run_dir=tmp_path / "run")
    bundle = build_bundle(cfg.data)
    return build_model(cfg.model, bundle.spec), bundle


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_prediction_is_the_average_of_the_members(task: str, tmp_path: Path) -> None:
    """Without dropout a member's output is the same in train and eval mode, so eval mode's output must be
    their mean value (regression) or the logits of their mean probability (classes)."""
    classes = {"regression": [], "binary": ["data.task=classification", "data.generator.n_classes=2"],
               "multiclass": ["data.task=classification", "data.generator.n_classes=3"]}[task]
    model, bundle = tabm(tmp_path, "model.dropout=0", *classes)
    inputs = bundle.splits["val"].inputs(torch.arange(20))
    model.train()
    members = model(*inputs)
    model.eval()
    predicted = model(*inputs)
    assert members.shape == (20, 4, bundle.spec["d_out"]) and predicted.shape == (20, bundle.spec["d_out"])
    assert not torch.allclose(members[:, 0], members[:, 1])  # the members differ
    if task == "regression":
        torch.testing.assert_close(predicted, members.mean(dim=1))
    elif task == "binary":
        torch.testing.assert_close(torch.sigmoid(predicted), torch.sigmoid(members).mean(dim=1))
    else:
        torch.testing.assert_close(predicted.softmax(-1), members.softmax(-1).mean(dim=1))


def test_training_loss_is_the_mean_of_the_members_losses(tmp_path: Path) -> None:
    model, bundle = tabm(tmp_path)
    assert model.output_kind == MEMBERS
    task = bundle.task.with_outputs(declared_kind(model))
    members = torch.randn(16, 4, 1)
    target = torch.randn(16, 1)
    loss = task.loss()(members, target)
    per_member = torch.stack([F.mse_loss(members[:, i], target) for i in range(4)])
    torch.testing.assert_close(loss, per_member.mean())
    assert not torch.isclose(loss, F.mse_loss(members.mean(dim=1), target))  # not the loss of the mean
    # validation scores what the model predicts: the average, a point output
    torch.testing.assert_close(task.prediction_loss()(members.mean(dim=1), target),
                               F.mse_loss(members.mean(dim=1), target))

    labels = torch.randint(0, 3, (16,))
    logits = torch.randn(16, 4, 3)
    classified = Classification(["a", "b", "c"]).with_outputs(MembersOutput())  # recognised by its kind
    torch.testing.assert_close(classified.loss()(logits, labels),
                               torch.stack([F.cross_entropy(logits[:, i], labels) for i in range(4)]).mean())
    assert Regression().with_outputs(MEMBERS).loss() is not None


def test_piecewise_linear_bins_come_from_the_training_rows_only(tmp_path: Path) -> None:
    model, bundle = tabm(tmp_path, "model.num_embeddings=piecewise_linear", "model.n_bins=8")
    train_rows = bundle.splits["train"].x_num
    every_row = torch.cat([bundle.splits[s].x_num for s in ("train", "val", "test")])

    def encoding(x: torch.Tensor) -> torch.Tensor:
        """What the model's piecewise-linear encoding computes for x."""
        return model.net.num_module.impl(x)

    def reference(rows: torch.Tensor) -> torch.Tensor:
        bins = rtdl_num_embeddings.compute_bins(rows, n_bins=8)
        return rtdl_num_embeddings.PiecewiseLinearEmbeddings(bins, 4, activation=False, version="B").impl(every_row)

    torch.testing.assert_close(encoding(every_row), reference(train_rows))
    assert not torch.allclose(encoding(every_row), reference(every_row))  # val/test rows would move the bins


def test_periodic_embeddings_train(tmp_path: Path) -> None:
    cfg = dl_core.compose(*TINY_TABM, "model.num_embeddings=periodic", "model.d_embedding=4", "model.n_frequencies=8",
                          run_dir=tmp_path / "run")
    train(cfg)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and np.isfinite(metrics["test_rmse"])


@pytest.mark.parametrize("n_classes", [2, 3])
def test_classification_binary_and_multiclass(n_classes: int, tmp_path: Path) -> None:
    cfg = dl_core.compose(*TINY_TABM, "data.task=classification", f"data.generator.n_classes={n_classes}",
                          "model.num_embeddings=piecewise_linear", run_dir=tmp_path / "run")
    train(cfg)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    table = pd.read_csv(tmp_path / "run" / "predictions_test.csv")
    probabilities = table[[f"prob_class_{k}" for k in range(n_classes)]]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert metrics["test_accuracy"] > 1.2 / n_classes
    assert metrics["val_loss"] == pytest.approx(metrics["val_log_loss"], rel=1e-4)  # selected on the average


def test_a_tabm_run_is_served_and_predicted_as_it_was_tested(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cfg = dl_core.compose(*TINY_TABM, "model.num_embeddings=piecewise_linear", run_dir=run_dir)
    train(cfg)
    at_training = pd.read_csv(run_dir / "predictions_test.csv").head(25)
    rows = load_frame(cfg.data).loc[at_training["row"]].drop(columns="target")
    served, predicted = served_and_predicted(run_dir, rows, tmp_path)
    np.testing.assert_allclose(served["predicted"], at_training["predicted"], rtol=1e-5)
    np.testing.assert_allclose(predicted["predicted"], at_training["predicted"], rtol=1e-5)
