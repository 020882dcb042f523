"""Ensembles of finished runs (`python -m dl_core.runs ensemble`): greedy selection and the mean on real tiny runs
of two model families (trees and an MLP), the ensemble saved as a run that `load_run`, predict.py and serve.py
(real processes, real HTTP on 127.0.0.1) predict with as at ensembling time, and the refusals of members that
do not fit together or changed since."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dl_core
from dl_core.data import load_frame
from dl_core.errors import ConfigError
from dl_core.runs.ensemble import greedy_counts, make_ensemble
from dl_core.runs.pipeline import train
from dl_core.serving import load_run
from helpers import TINY, run_entry, serving

# One xdist worker runs the whole module, so that its runs are trained once.
pytestmark = pytest.mark.xdist_group("test_ensemble")

TABLE = ["data=synthetic_tabular", "data.generator.n_rows=400", "trainer=tiny", "hardware=cpu1"]
TREES = ["model=xgboost", "model.n_estimators=40", "model.early_stopping_rounds=10"]
RUNS = {
    # The trees read every column but num_0, the MLP every column: the ensemble takes the columns of both.
    "trees": [*TREES, *TABLE, "data.drop_columns=[num_0]"],
    "mlp": ["model=mlp", *TABLE],
    # Hardly trained: its predictions are about the training mean, far worse than the others'.
    "untrained": ["model=mlp", *TABLE, "trainer.max_epochs=1", "trainer.lr=1e-7"],
    "trees_classes": [*TREES, *TABLE, "data.task=classification"],
    "mlp_classes": ["model=mlp", *TABLE, "data.task=classification"],
    "other_split": [*TREES, *TABLE, "data.split.seed=1"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("members")
    for name, overrides in RUNS.items():
        train(dl_core.compose(*overrides, run_dir=folder / name))
    return {name: folder / name for name in RUNS}


def rows_of(task: str) -> pd.DataFrame:
    """The synthetic table the runs trained on, with its target column."""
    cfg = dl_core.compose(*TABLE, f"data.task={task}")
    return load_frame(cfg.data)


def saved(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "predictions_test.csv")


def test_greedy_selection_prefers_the_better_of_made_up_predictions() -> None:
    """Three predictions of one target: close, noisy, and noisy otherwise. The close one is chosen first and
    most; the rounds add up."""
    rng = np.random.default_rng(0)
    actual = rng.standard_normal((500, 1))
    predictions = [actual + 0.1 * rng.standard_normal((500, 1)), actual + rng.standard_normal((500, 1)),
                   actual + rng.standard_normal((500, 1))]
    counts = greedy_counts(predictions, lambda mean: float(np.sqrt(np.mean((mean - actual) ** 2))), 20)
    assert sum(counts) == 20 and counts[0] == max(counts) and counts[0] >= 15


def test_greedy_gives_the_clearly_best_run_the_most_weight(runs, tmp_path: Path) -> None:
    made = make_ensemble([runs["trees"], runs["untrained"]], "greedy", rounds=10, output=tmp_path / "greedy")
    weights = {Path(c["run_dir"]).name: c["weight"] for c in made.record["candidates"]}
    scores = {Path(c["run_dir"]).name: c["val_rmse"] for c in made.record["candidates"]}
    assert scores["trees"] < 0.8 * scores["untrained"]  # the case is as made: one run clearly better
    assert weights["trees"] > 0.5 and weights["trees"] > weights["untrained"]
    assert sum(weights.values()) == pytest.approx(1.0)
    metrics = json.loads((tmp_path / "greedy" / "metrics.json").read_text())
    assert metrics["method"] == "greedy" and metrics["val_rmse"] <= scores["untrained"]
    # The members are those with a weight; each recorded with its checkpoint's SHA-256.
    record = json.loads((tmp_path / "greedy" / "ensemble.json").read_text())
    assert [Path(m["run_dir"]).name for m in record["members"]] == [n for n in ("trees", "untrained") if weights[n]]
    assert all(len(member["checkpoint_sha256"]) == 64 for member in record["members"])


def test_the_mean_of_two_runs_is_the_average_of_their_predictions(runs, tmp_path: Path) -> None:
    """Both runs predict their test rows again on the CPU: to float32 rounding of the MLP (another thread count
    sums in another order) what they saved, so the mean is their saved predictions' mean to 1e-5."""
    output = tmp_path / "mean"
    make_ensemble([runs["trees"], runs["mlp"]], "mean", output=output)
    trees, mlp, mean = saved(runs["trees"]), saved(runs["mlp"]), saved(output)
    assert list(mean["row"]) == list(trees["row"]) == list(mlp["row"])
    np.testing.assert_allclose(mean["predicted"], (trees["predicted"] + mlp["predicted"]) / 2, rtol=1e-5)
    metrics = json.loads((output / "metrics.json").read_text())
    rmse = float(np.sqrt(np.mean((mean["predicted"] - mean["actual"]) ** 2)))
    assert metrics["test_rmse"] == pytest.approx(rmse, rel=1e-9) and metrics["n_members"] == 2


def test_a_classification_ensemble_averages_class_probabilities(runs, tmp_path: Path) -> None:
    output = tmp_path / "classes"
    make_ensemble([runs["trees_classes"], runs["mlp_classes"]], "mean", output=output)
    trees, mlp, mean = saved(runs["trees_classes"]), saved(runs["mlp_classes"]), saved(output)
    columns = [column for column in mean.columns if column.startswith("prob_")]
    assert len(columns) == 3
    np.testing.assert_allclose(mean[columns], (trees[columns] + mlp[columns]) / 2, rtol=1e-5, atol=1e-7)
    assert (mean["predicted"] == mean[columns].idxmax(axis=1).str.removeprefix("prob_")).all()
    metrics = json.loads((output / "metrics.json").read_text())
    assert {"val_log_loss", "test_log_loss", "test_accuracy"} <= set(metrics)
    reloaded = load_run(output).predict(rows_of("classification").loc[mean["row"]])
    np.testing.assert_allclose(reloaded[columns], mean[columns], rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_the_saved_ensemble_predicts_through_predict_py_and_http_as_at_ensembling_time(runs, tmp_path: Path) -> None:
    """The ensemble's own test rows (raw, as a file and as JSON rows) give its predictions_test.csv, to 1e-6:
    the same float32 member outputs averaged in float64, apart from the MLP's thread count."""
    ensemble = tmp_path / "ensemble"
    done = run_entry("-m", "dl_core.runs", "ensemble", str(runs["trees"]), str(runs["mlp"]), "--rounds", "8",
                     "--output", str(ensemble))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ensemble (greedy)" in done.stdout and f"wrote {ensemble}" in done.stdout
    at_ensembling = saved(ensemble)
    table = rows_of("regression").loc[at_ensembling["row"]]
    source, output = tmp_path / "rows.csv", tmp_path / "predicted.csv"
    table.drop(columns="target").to_csv(source, index=False)
    predicted = run_entry("predict.py", f"run_dir={ensemble}", f"data.path={source}", f"output={output}")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    np.testing.assert_allclose(pd.read_csv(output)["predicted"], at_ensembling["predicted"], rtol=1e-6)
    # An ensemble's directory is a run's: another run's predictions are not written among its files.
    inside = run_entry("predict.py", f"run_dir={runs['mlp']}", f"data.path={source}", f"output={ensemble / 'mine.csv'}")
    assert inside.returncode == 2 and f"is inside the run directory {ensemble}" in inside.stderr, inside.stderr[-2000:]
    scored = load_run(ensemble).evaluate(table)
    assert scored["rmse"] == pytest.approx(json.loads((ensemble / "metrics.json").read_text())["test_rmse"], rel=1e-6)
    rows = table.drop(columns="target")
    with serving(ensemble) as client:
        payload = rows.astype(object).where(rows.notna(), None).to_dict("records")
        answer = client.post("/predict", json={"rows": payload})
        assert answer.status_code == 200, answer.text
        served = pd.DataFrame(answer.json()["predictions"])
        metadata = client.get("/metadata").json()
        missing = client.post("/predict", json={"rows": [rows.drop(columns="num_0").iloc[0].to_dict()]})
    np.testing.assert_allclose(served["predicted"], at_ensembling["predicted"], rtol=1e-6)
    assert metadata["model"]["class"] == "Ensemble"
    assert {m["run"] for m in metadata["model"]["config"]["members"]} <= {"trees", "mlp"}
    assert str(tmp_path) not in json.dumps(metadata)  # the members are named, never their paths on the server
    assert {feature["name"] for feature in metadata["features"]} == set(rows.columns)
    # num_0 is read by the MLP only, and still a column of the ensemble's rows.
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"][-1] == "num_0"


@pytest.mark.slow
def test_members_that_do_not_fit_together_are_refused_by_name(runs, tmp_path: Path) -> None:
    cases = [([runs["trees"], runs["trees_classes"]], "a classification run"),
             ([runs["trees"], runs["other_split"]], "split holds other rows or targets"),
             ([runs["trees"]], "needs at least two")]
    for members, message in cases:
        with pytest.raises(ConfigError, match=message) as refused:
            make_ensemble(members, "greedy", output=tmp_path / "refused")
        assert str(members[-1]) in str(refused.value)
        assert not (tmp_path / "refused").exists()
    with pytest.raises(ConfigError, match=re.escape("data.split.seed (1 against 0)")):
        make_ensemble([runs["trees"], runs["other_split"]], "mean", output=tmp_path / "refused")
    done = run_entry("-m", "dl_core.runs", "ensemble", str(runs["trees"]), str(runs["trees_classes"]),
                     "--output", str(tmp_path / "cli"))
    assert done.returncode == 2 and done.stderr.startswith("error: ensemble: ") and done.stderr.count("\n") == 1


@pytest.mark.slow
def test_forecast_runs_are_refused_by_name(tmp_path: Path) -> None:
    for seed in (0, 1):
        train(dl_core.compose(*TINY, f"seed={seed}", run_dir=tmp_path / f"lstm{seed}"))
    with pytest.raises(ConfigError, match="is a forecast run; an ensemble averages the predictions of regression"):
        make_ensemble([tmp_path], "mean", output=tmp_path / "ensemble")


def test_a_member_that_does_not_predict_as_it_saved_is_refused(runs, tmp_path: Path) -> None:
    """A run whose checkpoint no longer gives its predictions_test.csv (its data or the code changed) is not
    ensembled on other numbers."""
    copy = tmp_path / "trees"
    shutil.copytree(runs["trees"], copy)
    predictions = saved(copy)
    predictions.assign(predicted=predictions["predicted"] + 1.0).to_csv(copy / "predictions_test.csv", index=False)
    with pytest.raises(ConfigError, match=f"{re.escape(str(copy))}: its best checkpoint predicts its test rows"):
        make_ensemble([copy, runs["mlp"]], "mean", output=tmp_path / "ensemble")


@pytest.mark.slow
def test_a_member_changed_or_removed_after_ensembling_is_refused_by_name(runs, tmp_path: Path) -> None:
    members = tmp_path / "members"
    for name in ("trees", "mlp"):
        shutil.copytree(runs[name], members / name)
    ensemble = tmp_path / "ensemble"
    make_ensemble([members], "mean", output=ensemble)  # a folder stands for the finished runs under it
    assert {m["run"] for m in load_run(ensemble).metadata()["model"]["config"]["members"]} == {"trees", "mlp"}
    # Another checkpoint in the member's place: the MLP trained again with another seed.
    shutil.rmtree(members / "mlp")
    train(dl_core.compose(*RUNS["mlp"], "seed=1", run_dir=members / "mlp"))
    with pytest.raises(ConfigError, match=rf"member {re.escape(str(members / 'mlp'))} of the ensemble .* has changed "
                                          r"since it was ensembled"):
        load_run(ensemble)
    rows = tmp_path / "rows.csv"
    rows_of("regression").drop(columns="target").head(5).to_csv(rows, index=False)
    done = run_entry("predict.py", f"run_dir={ensemble}", f"data.path={rows}", f"output={tmp_path / 'out.csv'}")
    assert done.returncode == 2 and "has changed since it was ensembled" in done.stderr
    assert not (tmp_path / "out.csv").exists()
    shutil.rmtree(members / "mlp")
    with pytest.raises(ConfigError, match=rf"member {re.escape(str(members / 'mlp'))} of the ensemble .* is gone"):
        load_run(ensemble)


def test_an_ensemble_is_listed_as_a_run_and_is_no_member(runs, tmp_path: Path) -> None:
    output = tmp_path / "ensembles" / "one"
    make_ensemble([runs["trees"], runs["mlp"]], "mean", output=output)
    listed = run_entry("-m", "dl_core.runs", "list", str(tmp_path / "ensembles"))
    assert listed.returncode == 0 and "| one |" in listed.stdout and "ensemble" in listed.stdout
    with pytest.raises(ConfigError, match="is an ensemble; name its members' runs instead"):
        make_ensemble([output, runs["trees"]], "mean", output=tmp_path / "nested")
    with pytest.raises(ConfigError, match=r"--output: .* is not an empty directory"):
        make_ensemble([runs["trees"], runs["mlp"]], "mean", output=output)


def test_members_whose_data_file_changed_since_they_trained_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "table.csv"
    rows_of("regression").to_csv(source, index=False)
    csv = ["data=csv_tabular", f"data.path={source}", "data.target_column=target", "data.task=regression"]
    for seed in (0, 1):
        train(dl_core.compose(*TREES, *csv, "trainer=tiny", "hardware=cpu1", f"seed={seed}",
                              run_dir=tmp_path / "runs" / f"trees{seed}"))
    table = pd.read_csv(source)
    table.assign(target=table["target"] + 1.0).to_csv(source, index=False)
    with pytest.raises(ConfigError, match=rf"{re.escape(str(tmp_path / 'runs' / 'trees0'))} trained on "
                                          rf"{re.escape(str(source))}, which has changed since"):
        make_ensemble([tmp_path / "runs"], "mean", output=tmp_path / "ensemble")
