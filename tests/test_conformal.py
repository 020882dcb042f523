"""Calibrated intervals (dl_core/task/conformal.py): CQR's finite-sample rank and offsets, coverage restored on
held-out draws, monotone quantiles, and real runs, a forecast and a table's regression, whose calibration
predict.py and the server apply as training did (and that trainer.calibrate_intervals=false leaves out)."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dl_core
from dl_core.data.synthetic import generate_series
from dl_core.engine.checkpoint import atomic_save, load_checkpoint
from dl_core.errors import ConfigError
from dl_core.runs.config import validate
from dl_core.runs.pipeline import train
from dl_core.serving import load_run
from dl_core.task.conformal import (
    calibration_size_needed,
    check_calibration_size,
    conformal_rank,
    fit_calibration,
    widen_to_monotone,
)
from helpers import TINY, TINY_TABULAR, run_entry, served_forecast, serving

pytestmark = pytest.mark.xdist_group("test_conformal")

LEVELS = (0.1, 0.5, 0.9)
Z90 = 1.2815515655446004  # the standard normal's 0.9 quantile
KEYS = ["timestamp", "entity", "step", "target"]


def draws(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n samples of (quantiles, target) over 3 steps and 2 targets: the target is normal around x with a scale
    that grows with the step, and the model's 0.1 and 0.9 quantiles are half as far out as the true ones (an
    overconfident model: its 80 % interval covers 2 Phi(0.64) - 1 = 48 %)."""
    x = rng.normal(size=(n, 3, 2))
    sigma = np.array([1.0, 2.0, 3.0])[None, :, None] * np.ones((n, 3, 2))
    y = x + sigma * rng.normal(size=(n, 3, 2))
    half = 0.5 * Z90 * sigma
    return np.stack([x - half, x, x + half], axis=-1), y


def covered(quantiles: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (y >= quantiles[..., 0]) & (y <= quantiles[..., -1])


def test_calibrated_intervals_cover_held_out_draws_the_raw_ones_miss():
    rng = np.random.default_rng(0)
    calibration = fit_calibration(*draws(rng, 1000), LEVELS)
    quantiles, y = draws(rng, 20_000)
    raw = covered(quantiles, y).mean(axis=0)
    fixed = covered(calibration.apply(quantiles), y).mean(axis=0)
    assert calibration.offsets.shape == (1, 3, 2) and calibration.n == 1000
    assert (raw < 0.55).all()
    # Given its n = 1000 calibration draws, a CQR interval's coverage is Beta(k, n + 1 - k) with k = 801 (Romano
    # et al. 2019; Vovk 2012): mean 0.8002, sd 0.0126; 20 000 test draws add a binomial sd of 0.0028. 0.05 is 3.9
    # sd of their sum, so each of the 6 (step, target) cells lands inside it but for about 1 seed in 10 000.
    np.testing.assert_allclose(fixed, 0.8, atol=0.05)
    # Every step is widened by its own offset: the true half-width is Z90 sigma, the model's half of it.
    np.testing.assert_allclose(calibration.offsets[0].mean(axis=-1), 0.5 * Z90 * np.array([1.0, 2.0, 3.0]), rtol=0.1)


def test_the_offset_is_the_exact_finite_sample_order_statistic():
    # (n + 1)(1 - alpha) = 25 x 0.84 = 21 exactly; in floats (0.92 - 0.08) * 25 = 21.000000000000004, ceiling 22.
    assert conformal_rank(24, 0.08, 0.92) == 21
    assert conformal_rank(9, 0.1, 0.9) == 8 and conformal_rank(99, 0.05, 0.95) == 90
    scores = np.random.default_rng(0).permutation(np.arange(1.0, 25.0)) - 2.0  # -1 .. 22, shuffled
    quantiles = np.tile([-1.0, 0.0, 1.0], (24, 1))  # the interval [-1, 1]: a target y scores |y| - 1
    y = np.where(np.arange(24) % 2 == 0, 1.0, -1.0) * (scores + 1.0)  # either side of it
    assert fit_calibration(quantiles, y, (0.08, 0.5, 0.92)).offsets.item() == 19.0  # the 21st smallest, not 22nd
    assert fit_calibration(quantiles, y, LEVELS).offsets.item() == 18.0  # ceil(25 x 0.8) = 20th smallest


def test_too_few_validation_samples_are_refused_naming_the_key():
    assert calibration_size_needed(LEVELS) == 4
    assert calibration_size_needed((0.025, 0.1, 0.5, 0.9, 0.975)) == 19
    check_calibration_size(LEVELS, 4)
    with pytest.raises(ConfigError, match=r"trainer\.calibrate_intervals: the validation split has 3 samples.*"
                                          r"need 4"):
        check_calibration_size(LEVELS, 3)


def test_monotone_repair_only_widens():
    # levels 0.05 0.1 0.5 0.9 0.95: the inner interval widened past the outer one, the outer narrowed past the median
    quantiles = np.array([[-1.0, -3.0, 0.0, 3.0, -0.5]])
    repaired = widen_to_monotone(quantiles, 2)
    np.testing.assert_array_equal(repaired, [[-3.0, -3.0, 0.0, 3.0, 3.0]])
    assert (np.diff(repaired, axis=-1) >= 0).all()
    assert (repaired[:, :2] <= quantiles[:, :2]).all() and (repaired[:, 3:] >= quantiles[:, 3:]).all()


def quantile_run(path: Path, *overrides: str) -> Path:
    """A tiny quantile LSTM on two synthetic series with a 3-step horizon."""
    train(dl_core.compose(*TINY, "data.horizon=3", "trainer.max_epochs=2", "model.quantiles=[0.1,0.5,0.9]",
                          *overrides, run_dir=path))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same run (same seed and config) calibrated, and with trainer.calibrate_intervals=false."""
    root = tmp_path_factory.mktemp("conformal")
    return quantile_run(root / "on"), quantile_run(root / "off", "trainer.calibrate_intervals=false")


def coverage(table: pd.DataFrame, low: str, high: str) -> float:
    return float(((table["actual"] >= table[low]) & (table["actual"] <= table[high])).mean())


@pytest.mark.slow
def test_a_run_saves_its_calibration_and_reports_raw_and_calibrated_intervals(runs):
    on, off = runs
    task = load_checkpoint(on / "checkpoints" / "best.ckpt")["task"]
    calibration = task.calibration
    assert calibration.offsets.shape == (1, 3, 1) and calibration.pairs == ((0, 2),)
    assert calibration.n > 0 and np.all(calibration.offsets != 0)
    table = pd.read_csv(on / "predictions_test.csv")
    std, step = task.target_scaler.scale_[0], table["step"].to_numpy() - 1
    # The median never moves; each step's ends move out by its own offset (in target units: times the scale),
    # unless a narrowed end would pass the median (then it stops there). 1e-9: float64 arithmetic on both sides.
    np.testing.assert_allclose(table["q0.1"], np.minimum(table["raw_q0.1"] - std * calibration.offsets[0, step, 0],
                                                         table["predicted"]), rtol=1e-9)
    np.testing.assert_allclose(table["q0.9"], np.maximum(table["raw_q0.9"] + std * calibration.offsets[0, step, 0],
                                                         table["predicted"]), rtol=1e-9)
    metrics = json.loads((on / "metrics.json").read_text())
    assert metrics["test_coverage_80"] == pytest.approx(coverage(table, "q0.1", "q0.9"))
    assert metrics["test_coverage_80_raw"] == pytest.approx(coverage(table, "raw_q0.1", "raw_q0.9"))
    assert metrics["test_coverage_80"] != metrics["test_coverage_80_raw"]
    assert np.isfinite(metrics["test_crps"]) and metrics["test_crps"] != metrics["test_crps_raw"]
    # In-sample on validation, CQR covers at least its 1 - alpha of each step's windows, by construction.
    assert metrics["val_coverage_80"] >= 0.8

    # Off: the model's own quantiles, which are the calibrated run's raw ones (same seed and config, same
    # training on CPU; 1e-6 relative: the same float32 math in another process order of the same ops).
    plain = pd.read_csv(off / "predictions_test.csv")
    assert load_checkpoint(off / "checkpoints" / "best.ckpt")["task"].calibration is None
    assert not any(column.startswith("raw_") for column in plain.columns)
    np.testing.assert_allclose(plain["q0.1"], table["raw_q0.1"], rtol=1e-6)
    np.testing.assert_allclose(plain["q0.9"], table["raw_q0.9"], rtol=1e-6)
    plain_metrics = json.loads((off / "metrics.json").read_text())
    assert plain_metrics["test_coverage_80"] == plain_metrics["test_coverage_80_raw"] == \
        pytest.approx(metrics["test_coverage_80_raw"])


@pytest.mark.slow
def test_predict_py_and_the_server_apply_the_saved_calibration_as_training_did(runs, tmp_path: Path):
    on, _ = runs
    rows = generate_series(2, 400, 2, 0.3, 0)  # the rows the run trained on (the synthetic data with TINY)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "out.csv"
    done = run_entry("predict.py", f"run_dir={on}", f"data.path={tmp_path / 'rows.csv'}", f"output={out}",
                     "threads=1", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    from_file = pd.read_csv(out, parse_dates=["timestamp"])
    at_training = pd.read_csv(on / "predictions_test.csv", parse_dates=["timestamp"])
    both = at_training.merge(from_file, on=KEYS, suffixes=("_training", "_file"))
    assert len(both) == len(at_training) > 0
    # 1e-6 relative: the test windows are batched differently here than in training (float32 kernels).
    for column in ("predicted", "q0.1", "q0.9", "raw_q0.1", "raw_q0.9"):
        np.testing.assert_allclose(both[f"{column}_file"], both[f"{column}_training"], rtol=1e-6, atol=1e-9)

    with serving(on) as client:
        response = client.post("/predict", json={"rows": rows.assign(timestamp=rows["timestamp"].astype(str))
                                                 .to_dict("records")})
    served = served_forecast(response)
    pd.testing.assert_frame_equal(served, from_file, check_exact=True, check_dtype=False)


@pytest.mark.slow
def test_a_checkpoint_without_its_calibration_predicts_the_raw_quantiles_and_says_so(runs, tmp_path: Path, caplog):
    on, _ = runs
    shutil.copytree(on, tmp_path / "run")
    path = tmp_path / "run" / "checkpoints" / "best.ckpt"
    state = load_checkpoint(path)
    state["task"] = replace(state["task"], calibration=None)  # as best.ckpt is before training ends
    atomic_save(state, path)
    with caplog.at_level(logging.WARNING, logger="dl_core.serving.load"):
        run = load_run(tmp_path / "run")
    assert "holds no interval calibration" in caplog.text
    table = run.predict(generate_series(2, 400, 2, 0.3, 0))
    assert not any(column.startswith("raw_") for column in table.columns)
    at_training = pd.read_csv(on / "predictions_test.csv", parse_dates=["timestamp"])
    both = at_training.merge(table, on=KEYS, suffixes=("_training", ""))
    np.testing.assert_allclose(both["q0.1"], both["raw_q0.1"], rtol=1e-6)  # batched differently


# A table whose noise grows elevenfold across x0: the quantile MLP, 2 blocks of 32, trained on 3,000 rows, its 80 %
# interval calibrated on 1,500 validation rows and measured on 1,500 test rows. At lr 3e-4 its 8 epochs leave its
# quantiles too close together (its own interval covers about half the rows): what calibration is for. (Trained to
# convergence, lr 3e-3, the pinball loss alone gets this easy table's interval near 80 %.)
TABLE_ROWS = 6000
QUANTILE_MLP = ["model=mlp", "model.n_blocks=2", "model.d_block=32", "model.quantiles=[0.1,0.5,0.9]",
                *(o for o in TINY_TABULAR if not o.startswith(("model", "data"))), "trainer.max_epochs=8",
                "trainer.batch_size=128", "trainer.lr=3e-4", "data=csv_tabular", "data.target_column=y",
                "data.task=regression", "data.split.val_fraction=0.25", "data.split.test_fraction=0.25"]


def heteroscedastic_table(n: int, seed: int) -> pd.DataFrame:
    """y = sin(2 x0) + x1 + (0.2 + |x0|) e, with x0, x1 uniform on [-2, 2] and e standard normal, and a category
    that shifts y: a good 80 % interval is narrow where x0 is near 0 and wide at its ends."""
    rng = np.random.default_rng(seed)
    x0, x1 = rng.uniform(-2, 2, n), rng.uniform(-2, 2, n)
    color = rng.choice(["red", "green", "blue"], n)
    shift = pd.Series(color).map({"red": -0.5, "green": 0.0, "blue": 0.5}).to_numpy()
    y = np.sin(2 * x0) + x1 + shift + (0.2 + np.abs(x0)) * rng.standard_normal(n)
    return pd.DataFrame({"x0": x0, "x1": x1, "color": color, "y": 10.0 * y + 50.0})


@pytest.fixture(scope="module")
def table_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The quantile MLP's run on the heteroscedastic table, and the table's file."""
    root = tmp_path_factory.mktemp("table_quantiles")
    source = root / "table.csv"
    heteroscedastic_table(TABLE_ROWS, 0).to_csv(source, index=False)
    train(dl_core.compose(*QUANTILE_MLP, f"data.path={source}", run_dir=root / "run"))
    return root / "run", source


@pytest.mark.slow
def test_a_table_regression_calibrates_its_intervals_to_their_coverage(table_run):
    run, _ = table_run
    task = load_checkpoint(run / "checkpoints" / "best.ckpt")["task"]
    calibration = task.calibration
    assert calibration.offsets.shape == (1, 1) and calibration.pairs == ((0, 2),) and calibration.n == 1500
    table = pd.read_csv(run / "predictions_test.csv")
    assert list(table.columns) == ["row", "actual", "predicted", "q0.1", "q0.5", "q0.9", "raw_q0.1", "raw_q0.9"]
    assert len(table) == 1500
    # Both ends move by the one offset in target units (times the scale), never past the median; float64: 1e-9.
    move = task.target_scaler.scale_[0] * calibration.offsets.item()
    np.testing.assert_allclose(table["q0.1"], np.minimum(table["raw_q0.1"] - move, table["predicted"]), rtol=1e-9)
    np.testing.assert_allclose(table["q0.9"], np.maximum(table["raw_q0.9"] + move, table["predicted"]), rtol=1e-9)
    np.testing.assert_array_equal(table["predicted"], table["q0.5"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_coverage_80"] == pytest.approx(coverage(table, "q0.1", "q0.9"))
    assert metrics["test_coverage_80_raw"] == pytest.approx(coverage(table, "raw_q0.1", "raw_q0.9"))
    assert metrics["test_rmse"] == pytest.approx(np.sqrt(np.mean((table["predicted"] - table["actual"]) ** 2)))
    assert metrics["val_coverage_80"] >= 0.8  # in-sample, CQR covers at least 1 - alpha by construction
    # The split is random, so validation and test rows are exchangeable and CQR's guarantee holds as the paper
    # states it. Over draws of the n = 1,500 calibration rows, the interval's coverage is Beta(k, n + 1 - k) with
    # k = ceil(1501 x 0.8) = 1201 (sd 0.0103); the 1,500 test rows add a binomial sd of 0.0103: 0.05 is 3.4 sd of
    # their sum, so another seed or split lands outside about 1 time in 1,500 (this one is fixed: deterministic).
    # The model's own interval is far off (0.55 here), so the calibrated one's coverage is calibration's doing.
    assert metrics["test_coverage_80_raw"] < 0.7
    assert metrics["test_coverage_80"] == pytest.approx(0.8, abs=0.05)
    assert metrics["test_crps"] < metrics["test_crps_raw"]


@pytest.mark.slow
def test_predict_py_and_the_server_give_a_table_run_its_training_quantiles(table_run, tmp_path: Path):
    """The run's own file through predict.py, and its test rows through serve.py, give the calibrated and raw
    quantiles training wrote."""
    run, source = table_run
    out = tmp_path / "out.csv"
    done = run_entry("predict.py", f"run_dir={run}", f"data.path={source}", f"output={out}", "threads=1",
                     cwd=tmp_path, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    at_training = pd.read_csv(run / "predictions_test.csv")
    columns = ["predicted", "q0.1", "q0.5", "q0.9", "raw_q0.1", "raw_q0.9"]
    from_file = pd.read_csv(out).loc[at_training["row"], columns].reset_index(drop=True)
    # 1e-6 relative: the rows are batched differently here than in training (float32 kernels).
    np.testing.assert_allclose(from_file, at_training[columns], rtol=1e-6)
    rows = pd.read_csv(source).loc[at_training["row"]].drop(columns="y")
    with serving(run) as client:
        answer = client.post("/predict", json={"rows": rows.to_dict("records")})
        metadata = client.get("/metadata").json()
    assert answer.status_code == 200, answer.text
    served = pd.DataFrame(answer.json()["predictions"])
    assert list(served.columns) == columns and metadata["quantiles"] == [0.1, 0.5, 0.9]
    np.testing.assert_allclose(served, at_training[columns], rtol=1e-6)


def test_table_models_without_quantiles_are_refused_naming_those_that_have_them(tmp_path: Path):
    """Gradient-boosted trees and TabM predict points only: asking them for quantiles names the models that
    predict them, whether Hydra refuses the key (train.py) or the schema check does (`+model.quantiles`)."""
    done = run_entry("train.py", "model=catboost", "data=synthetic_tabular", "model.quantiles=[0.1,0.5,0.9]",
                     f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(
        "error: model.quantiles: not a config key (Key 'quantiles' not in 'CatBoostConfig'); model=catboost has no "
        "quantiles, the models that do: dlinear, ft_transformer, lstm, mlp, patchtst, resnet, tabr;")
    cfg = dl_core.compose("model=tabm", "data=synthetic_tabular", "+model.quantiles=[0.1,0.5,0.9]", run_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"^model\.quantiles: not a config key; model=tabm has no quantiles, "
                                          r"the models that do: dlinear, ft_transformer, lstm, mlp, patchtst, resnet, "
                                          r"tabr"):
        validate(cfg)
