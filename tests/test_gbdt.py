"""Gradient-boosted trees (CatBoost, XGBoost, LightGBM) as estimators of the harness: raw numbers, early
stopping on validation, classification, one checkpoint format served and predicted like any run, resume,
and the hardware settings they map, refuse or ignore. Real libraries, real tiny fits."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

import dl_core
from dl_core.data import build_bundle, load_frame
from dl_core.engine import FitContext, Hardware
from dl_core.engine.checkpoint import load_checkpoint
from dl_core.engine.distributed import Distributed
from dl_core.errors import ConfigError
from dl_core.models.build import apply_data_options, build_model
from dl_core.runs.pipeline import train
from dl_core.serving import load_run
from helpers import ROOT, entry_env, serving

LIBRARIES = ["catboost", "xgboost", "lightgbm"]
TINY_TABLE = ["data=synthetic_tabular", "data.generator.n_rows=400", "trainer=tiny", "hardware=cpu1"]


def tiny(model: str, *extra: str) -> list[str]:
    return [f"model={model}", "model.n_estimators=40", "model.early_stopping_rounds=10", *TINY_TABLE, *extra]


def test_trees_read_raw_numbers_with_missing_values_as_nan(tmp_path: Path) -> None:
    cfg = dl_core.compose(*tiny("xgboost"), run_dir=tmp_path / "run")
    apply_data_options(cfg.model, cfg.data, "XGBoost")
    assert cfg.data.numeric_transform == "raw"
    bundle = build_bundle(cfg.data)
    frame = load_frame(cfg.data)
    train_rows = frame.loc[bundle.splits["train"].rows, "num_1"].to_numpy(np.float32)
    # the raw values (no quantile transform), the blanks of the generator still blank
    np.testing.assert_array_equal(bundle.splits["train"].x_num[:, 1].numpy(), train_rows)
    assert np.isnan(train_rows).any()

    deep = dl_core.compose("model=mlp", *TINY_TABLE, "data.numeric_transform=raw", run_dir=tmp_path / "mlp")
    with pytest.raises(ConfigError, match=r"^data\.numeric_transform: raw passes missing numbers as NaN, which "
                                          r"model=MLP cannot read; use quantile or standard$"):
        apply_data_options(deep.model, deep.data, "MLP")


@pytest.mark.parametrize("library", LIBRARIES)
def test_early_stopping_selects_the_best_validation_round(library: str, tmp_path: Path) -> None:
    """A high learning rate overfits the tiny table fast: fitting stops `early_stopping_rounds` after the
    round of least validation loss, and the kept model is that round's."""
    rate = "model.learning_rate=0.8"
    cfg = dl_core.compose(*tiny(library, "model.n_estimators=400", "model.early_stopping_rounds=8", rate),
                          run_dir=tmp_path / "run")
    train(cfg)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    history = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert metrics["stopped_early"] and metrics["epochs"] == metrics["best_epoch"] + 8 < 400
    assert metrics["best_epoch"] == int(history["val_loss"].idxmin()) + 1
    # the kept model's validation loss is that round's (the library's own metric, in the task's loss)
    assert metrics["val_loss"] == pytest.approx(history["val_loss"].min(), rel=1e-4)
    assert metrics["val_mse"] ** 0.5 == pytest.approx(metrics["val_rmse"])
    assert (tmp_path / "run" / "learning_curve.png").is_file()


@pytest.mark.parametrize("library", LIBRARIES)
def test_every_round_s_history_row_has_its_time_as_an_epoch_s_has(library: str, tmp_path: Path) -> None:
    """The rounds' rows of metrics.csv had no `time_s`, which an epoch's row has: seconds since the fit began when
    the round ended, its evaluation included, as the library reports each round done (never the fit's total
    spread over the rounds)."""
    cfg = dl_core.compose(*tiny(library), run_dir=tmp_path / "run")
    train(cfg)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    history = pd.read_csv(tmp_path / "run" / "metrics.csv")
    times = history["time_s"].to_numpy()
    assert len(times) == metrics["epochs"] and np.isfinite(times).all() and (times > 0).all()
    assert (np.diff(times) >= 0).all() and times[-1] <= metrics["train_time_s"]
    saved = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.ckpt")["history"]
    assert [row["time_s"] for row in saved] == pytest.approx(list(times), rel=1e-12)  # what a resume re-logs


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_classification_binary_and_multiclass(library: str, n_classes: int, tmp_path: Path) -> None:
    cfg = dl_core.compose(*tiny(library, "data.task=classification", f"data.generator.n_classes={n_classes}"),
                          run_dir=tmp_path / "run")
    train(cfg)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    table = pd.read_csv(tmp_path / "run" / "predictions_test.csv")
    probabilities = table[[f"prob_class_{k}" for k in range(n_classes)]]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert list(table["predicted"]) == [f"class_{k}" for k in probabilities.to_numpy().argmax(axis=1)]
    assert metrics["test_accuracy"] > 1.2 / n_classes  # learned something: chance is 1 / n_classes
    assert ("test_roc_auc" in metrics) == (n_classes == 2)
    assert metrics["n_parameters"] > 0 and (tmp_path / "run" / "confusion_matrix.png").is_file()


# One xdist worker runs the whole module, so that `catboost_run` is trained once.
pytestmark = pytest.mark.xdist_group("test_gbdt")


@pytest.fixture(scope="module")
def catboost_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    run_dir = tmp_path_factory.mktemp("catboost") / "run"
    cfg = dl_core.compose(*tiny("catboost"), run_dir=run_dir)
    train(cfg)
    return run_dir, load_frame(cfg.data)


def served_and_predicted(run_dir: Path, rows: pd.DataFrame, tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The predictions of serve.py (over real HTTP) and of predict.py (a real process) for the same raw rows."""
    source, output = tmp_path / "rows.csv", tmp_path / "predicted.csv"
    rows.to_csv(source, index=False)
    done = subprocess.run([sys.executable, "predict.py", f"run_dir={run_dir}", f"data.path={source}",
                           f"output={output}"], cwd=ROOT, capture_output=True, text=True, timeout=180,
                          env=entry_env(), check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    with serving(run_dir) as client:
        payload = rows.astype(object).where(rows.notna(), None).to_dict("records")
        answer = client.post("/predict", json={"rows": payload})
        assert answer.status_code == 200, answer.text
        assert client.get("/metadata").json()["model"]["class"] == load_run(run_dir).estimator.name
    return pd.DataFrame(answer.json()["predictions"]), pd.read_csv(output)


def test_a_catboost_run_is_served_and_predicted_as_it_was_tested(catboost_run, tmp_path: Path) -> None:
    run_dir, table = catboost_run
    at_training = pd.read_csv(run_dir / "predictions_test.csv").head(25)
    rows = table.loc[at_training["row"]].drop(columns="target")
    served, predicted = served_and_predicted(run_dir, rows, tmp_path)
    np.testing.assert_allclose(served["predicted"], at_training["predicted"], rtol=1e-6)
    np.testing.assert_allclose(predicted["predicted"], at_training["predicted"], rtol=1e-6)
    checkpoint = load_checkpoint(run_dir / "checkpoints" / "best.ckpt")
    assert isinstance(checkpoint["model"]["booster"], bytes) and checkpoint["finished"]


def test_missing_values_reach_the_trees_and_change_the_prediction(catboost_run) -> None:
    run_dir, table = catboost_run
    run = load_run(run_dir)
    rows = table.drop(columns="target").head(50)
    blanked = rows.assign(num_2=np.nan)
    assert not np.allclose(run.predict(rows)["predicted"], run.predict(blanked)["predicted"])


def test_resume_reloads_the_finished_fit_instead_of_fitting_again(catboost_run, tmp_path: Path) -> None:
    """A GBDT fit is one call that checkpoints when it ends: resuming re-evaluates that booster, bit for bit."""
    run_dir, _ = catboost_run
    before = json.loads((run_dir / "metrics.json").read_text())
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    written = checkpoint.stat().st_mtime_ns
    train(dl_core.compose(*tiny("catboost"), f"trainer.resume={run_dir}", run_dir=tmp_path / "unused"))
    after = json.loads((run_dir / "metrics.json").read_text())
    assert checkpoint.stat().st_mtime_ns == written  # nothing was fitted or written again
    assert {k: after[k] for k in before if k.startswith("test_")} == {k: before[k] for k in before
                                                                       if k.startswith("test_")}
    assert after["train_time_s"] == before["train_time_s"] and after["epochs"] == before["epochs"]


@pytest.mark.parametrize("library", LIBRARIES)
def test_the_same_seed_fits_the_same_booster(library: str, tmp_path: Path) -> None:
    """What a run killed mid-fit relies on: running it again gives the same model."""
    outputs = []
    for run in ("a", "b"):
        train(dl_core.compose(*tiny(library, "seed=3"), run_dir=tmp_path / run))
        outputs.append(pd.read_csv(tmp_path / run / "predictions_test.csv")["predicted"].to_numpy())
    np.testing.assert_array_equal(outputs[0], outputs[1])


def estimator(library: str, tmp_path: Path):
    cfg = dl_core.compose(*tiny(library), run_dir=tmp_path / "run")
    apply_data_options(cfg.model, cfg.data, library)
    bundle = build_bundle(cfg.data)
    return build_model(cfg.model, bundle.spec), bundle, cfg


def test_ddp_is_refused_with_one_line(tmp_path: Path) -> None:
    model, bundle, cfg = estimator("catboost", tmp_path)
    hw = Hardware(torch.device("cpu"), "32", 1, False)
    context = FitContext(cfg.trainer, hw, tmp_path / "run", 0, {}, ddp=Distributed(rank=0, world_size=2))
    with pytest.raises(ConfigError, match=r"^hardware\.distributed: CatBoost fits in one process .*hardware=ddp$"):
        model.fit(bundle, context)


def test_mixed_precision_and_compile_are_ignored_with_one_line(tmp_path: Path, caplog) -> None:
    model, bundle, cfg = estimator("lightgbm", tmp_path)
    hw = Hardware(torch.device("cpu"), "bf16-mixed", 1, True)
    with caplog.at_level(logging.WARNING, logger="dl_core.models.trees"):
        result = model.fit(bundle, FitContext(cfg.trainer, hw, tmp_path / "run", 0, {}))
    assert [r.getMessage() for r in caplog.records] == [
        ("hardware.precision=bf16-mixed and hardware.compile=true does not apply to LightGBM (trees have no mixed "
         "precision or torch graph): ignored")]
    assert result.epochs >= 1


@pytest.mark.parametrize(("library", "expected"), [
    ("catboost", {"task_type": "GPU", "devices": "1", "thread_count": 2}),
    ("xgboost", {"device": "cuda:1", "nthread": 2}),
    ("lightgbm", {"device_type": "cpu", "num_threads": 2}),
])
def test_a_gpu_maps_to_each_library_gpu_training(library: str, expected: dict, tmp_path: Path, caplog) -> None:
    """What `hardware=gpu` (device cuda:1) hands each library, checked without a GPU: CatBoost and XGBoost
    train there; this LightGBM build has no GPU and says so in one line."""
    model, _, _ = estimator(library, tmp_path)
    gpu = Hardware(torch.device("cuda", 1), "32", 2, False)
    with caplog.at_level(logging.WARNING):
        params = model.library_params(gpu, seed=0)
    assert {k: params[k] for k in expected} == expected
    assert (library == "lightgbm") == any("trains on the CPU only" in r.getMessage() for r in caplog.records)
    cpu = model.library_params(Hardware(torch.device("cpu"), "32", 2, False), seed=0)
    assert cpu.get("task_type", "CPU") == "CPU" and cpu.get("device", "cpu") == "cpu"


def test_saved_config_records_the_raw_numbers_the_trees_read(catboost_run) -> None:
    run_dir, _ = catboost_run
    saved = OmegaConf.create(load_checkpoint(run_dir / "checkpoints" / "best.ckpt")["config"])
    assert saved.data.numeric_transform == "raw"
