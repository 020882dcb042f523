"""TabR: retrieval over the training rows, each row left out of its own candidates while training, the
candidates travelling with the run so that a loaded run predicts and serves as it was tested, tiny runs
that learn (regression and classes), and exact resume through its estimator. Real tiny training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import dl_core
from dl_core.data import build_bundle, load_frame
from dl_core.engine import FitContext, resolve_hardware
from dl_core.engine.checkpoint import load_checkpoint, seed_everything
from dl_core.errors import ConfigError
from dl_core.models.build import build_estimator, build_model
from dl_core.models.tabr import TabR, TabREstimator, TrainingRows
from dl_core.runs.pipeline import train
from dl_core.serving.load import load_run
from test_gbdt import served_and_predicted

TINY_TABR = ["model=tabr", "model.d_main=16", "model.context_size=8", "model.context_dropout=0.1",
             "model.dropout0=0.1", "data=synthetic_tabular", "data.generator.n_rows=500", "trainer=tiny",
             "trainer.max_epochs=6", "trainer.batch_size=64", "trainer.lr=3e-3", "hardware=cpu1"]
CLASSES = {"regression": [], "binary": ["data.task=classification", "data.generator.n_classes=2"],
           "multiclass": ["data.task=classification", "data.generator.n_classes=3"]}


def tabr(tmp_path: Path, *overrides: str):
    cfg = dl_core.compose(*TINY_TABR, *overrides, run_dir=tmp_path / "run")
    bundle = build_bundle(cfg.data)
    return build_model(cfg.model, bundle.spec), bundle


class Retrievals:
    """What the model's search returned on each call: (training mode, rows left out, candidates chosen)."""

    def __init__(self, model: TabR):
        self.calls: list[tuple[bool, torch.Tensor | None, torch.Tensor]] = []
        model.search.register_forward_hook(self.record)

    def record(self, module: torch.nn.Module, inputs: tuple, chosen: torch.Tensor) -> None:
        self.calls.append((module.training, inputs[2], chosen))


@pytest.mark.parametrize("task", CLASSES)
def test_outputs_have_the_task_s_shape_in_training_and_eval_mode(task: str, tmp_path: Path) -> None:
    model, bundle = tabr(tmp_path, *CLASSES[task], "model.num_embeddings=periodic", "model.encoder_n_blocks=1")
    idx = torch.arange(20)
    d_out = {"regression": 1, "binary": 1, "multiclass": 3}[task]
    model.train()
    assert model(*TrainingRows(bundle.splits["train"]).inputs(idx)).shape == (20, d_out)
    model.eval()
    assert model(*bundle.splits["val"].inputs(idx)).shape == (20, d_out)


def test_while_training_no_row_retrieves_itself(tmp_path: Path) -> None:
    """Every training step of a real fit leaves each row of the batch out of its own context; in eval mode the
    same training rows find themselves first (distance 0), so without the rule every row would read its label."""
    cfg = dl_core.compose(*TINY_TABR, "trainer.max_epochs=2", run_dir=tmp_path / "run")
    bundle = build_bundle(cfg.data)
    estimator = build_estimator(cfg.model, bundle.spec, resolve_hardware(cfg.hardware), cfg.trainer.eval_batch_size)
    assert isinstance(estimator, TabREstimator)
    retrievals = Retrievals(estimator.module)
    estimator.fit(bundle, FitContext(cfg.trainer, resolve_hardware(cfg.hardware), tmp_path / "run", cfg.seed, {}))
    training = [(rows, chosen) for mode, rows, chosen in retrievals.calls if mode]
    assert len(training) == 2 * -(-len(bundle.splits["train"]) // 64)  # every step of both epochs
    for rows, chosen in training:
        assert rows is not None and chosen.shape == (len(rows), 8)
        assert not (chosen == rows[:, None]).any()
    seen = torch.cat([rows for rows, _ in training])  # the rows left out are the batch's: each row once an epoch
    assert torch.equal(seen.sort().values, torch.arange(len(bundle.splits["train"])).repeat_interleave(2))
    assert all(rows is None for mode, rows, _ in retrievals.calls if not mode)  # validation: every candidate

    retrievals.calls.clear()
    estimator.predict(bundle.splits["train"])
    chosen = torch.cat([chosen for _, _, chosen in retrievals.calls])
    assert torch.equal(chosen[:, 0], torch.arange(len(bundle.splits["train"])))


def test_the_search_is_the_exact_nearest_candidates_over_chunks(tmp_path: Path, monkeypatch) -> None:
    """Chunked search (3 candidates at a time here) picks the same neighbours as a full sort of the distances."""
    model, _ = tabr(tmp_path)
    generator = torch.Generator().manual_seed(0)
    keys, candidates = torch.randn(5, 4, generator=generator), torch.randn(40, 4, generator=generator)
    rows = torch.tensor([3, 0, 39, 17, 17])
    distances = torch.cdist(keys, candidates).square()
    distances[torch.arange(5), rows] = torch.inf
    expected = distances.argsort(dim=1)[:, :8]
    monkeypatch.setattr("dl_core.models.tabr.SEARCH_CHUNK", 15)
    torch.testing.assert_close(model.search(keys, candidates, rows), expected)


def test_the_search_ranks_in_float32_under_mixed_precision(tmp_path: Path) -> None:
    """Under bf16 autocast a matrix product runs in bf16, whose 8-bit mantissa reorders close neighbours."""
    model, _ = tabr(tmp_path, "model.context_size=20")
    generator = torch.Generator().manual_seed(0)
    keys, candidates = torch.randn(16, 8, generator=generator), torch.randn(300, 8, generator=generator)
    exact = torch.cdist(keys.double(), candidates.double()).topk(20, dim=1, largest=False).indices
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(model.search(keys, candidates, None), exact)


def test_a_context_larger_than_the_training_rows_is_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^model.context_size: 400 neighbours need more than the 350 training rows"):
        tabr(tmp_path, "model.context_size=400")


def test_the_labels_embedding_biases_and_norms_get_no_weight_decay(tmp_path: Path) -> None:
    model, _ = tabr(tmp_path, "model.num_embeddings=periodic")
    decay, exempt = model.make_parameter_groups()
    names = {id(p): name for name, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in [*decay["params"], *exempt["params"]]) == sorted(names.values())
    assert {"label_encoder.weight", "label_encoder.bias", "head.0.weight", "num_embeddings.periodic.weight",
            "K.bias"} <= {names[id(p)] for p in exempt["params"]}
    assert {"K.weight", "T.3.weight", "linear.weight", "num_embeddings.linear.weight"} <= \
        {names[id(p)] for p in decay["params"]}


@pytest.mark.parametrize("task", CLASSES)
def test_a_tiny_run_learns(task: str, tmp_path: Path) -> None:
    """Better than the best constant: the training targets' mean (regression), the largest class (classes)."""
    cfg = dl_core.compose(*TINY_TABR, *CLASSES[task], "trainer.max_epochs=10", run_dir=tmp_path / "run")
    train(cfg)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    bundle = build_bundle(cfg.data)
    if task == "regression":
        constant = bundle.task.decode(bundle.splits["train"].y.numpy()).mean()
        actual = bundle.task.decode(bundle.splits["test"].y.numpy())
        assert metrics["test_rmse"] < 0.6 * np.sqrt(np.mean((actual - constant) ** 2))
    else:
        majority = np.bincount(bundle.splits["test"].y.numpy()).max() / len(bundle.splits["test"])
        assert metrics["test_accuracy"] > majority + 0.15


@pytest.mark.slow
def test_a_loaded_run_predicts_its_training_and_test_rows_as_the_run_did(tmp_path: Path) -> None:
    """predict.py and serve.py (fresh processes, from the checkpoint alone) on raw rows give the run's own test
    predictions and, on training rows (each its own nearest candidate), what the loaded run computes on the
    training tensors themselves. rtol 1e-5: a row meets other rows in its batch here than in training's
    evaluation, and the matrix products may sum in another order."""
    run_dir = tmp_path / "run"
    cfg = dl_core.compose(*TINY_TABR, run_dir=run_dir)
    train(cfg)
    checkpoint = load_checkpoint(run_dir / "checkpoints" / "best.ckpt")
    assert not any(key.startswith("candidate_") for key in checkpoint["model"])  # kept once, in the spec
    assert {"x_num_train", "x_cat_train", "y_train"} <= set(checkpoint["spec"])

    bundle = build_bundle(cfg.data)
    frame = load_frame(cfg.data)
    on_training = load_run(run_dir).estimator.predict(bundle.splits["train"])[:20, 0]
    test_table = pd.read_csv(run_dir / "predictions_test.csv").head(20)
    rows = frame.loc[[*bundle.splits["train"].rows[:20], *test_table["row"]]].drop(columns="target")
    served, predicted = served_and_predicted(run_dir, rows, tmp_path)
    expected = np.concatenate([bundle.task.decode(on_training), test_table["predicted"]])
    np.testing.assert_allclose(served["predicted"], expected, rtol=1e-5)
    np.testing.assert_allclose(predicted["predicted"], expected, rtol=1e-5)


def fit_tabr(cfg, resume: dict | None = None) -> torch.nn.Module:
    """TabR's estimator alone on a composed config, as the pipeline fits it."""
    seed_everything(cfg.seed)
    hw = resolve_hardware(cfg.hardware)
    bundle = build_bundle(cfg.data).to(hw.device)
    estimator = build_estimator(cfg.model, bundle.spec, hw, cfg.trainer.eval_batch_size)
    estimator.fit(bundle, FitContext(cfg.trainer, hw, Path(cfg.paths.output_dir), cfg.seed, {}, (), resume))
    return estimator.module


def test_a_resumed_run_ends_bit_identical_to_the_run_that_never_stopped(tmp_path: Path) -> None:
    """Dropout on the attention weights and in T draws from the RNG the checkpoint saves."""
    straight = fit_tabr(dl_core.compose(*TINY_TABR, "trainer.max_epochs=4", run_dir=tmp_path / "straight"))
    fit_tabr(dl_core.compose(*TINY_TABR, "trainer.max_epochs=2", run_dir=tmp_path / "short"))
    resume = load_checkpoint(tmp_path / "short" / "checkpoints" / "last.ckpt")
    extended = fit_tabr(dl_core.compose(*TINY_TABR, "trainer.max_epochs=4", run_dir=tmp_path / "short"), resume)
    for name, weights in straight.state_dict().items():
        assert torch.equal(weights, extended.state_dict()[name]), name
