"""Predict and serve a trained FT-Transformer run: reload equals training, predict.py equals the
server, and bad rows are refused by column. Real training, real HTTP on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dl_core
from dl_core.data import load_frame
from dl_core.errors import DataError, InputError
from dl_core.runs.pipeline import train
from dl_core.serving import load_run
from helpers import JSON, TINY_TABULAR, connection, run_entry, serving, strict_json, with_token

# One xdist worker runs the whole module, so that its trained run and server are built once.
pytestmark = pytest.mark.xdist_group("test_serving_tabular")

CLASSIFICATION = [*TINY_TABULAR, "data.task=classification", "trainer.max_epochs=2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, pd.DataFrame]]:
    """A tiny regression and a tiny 3-class run, each with the raw table it was trained on."""
    out = {}
    for task, overrides in [("regression", [*TINY_TABULAR, "trainer.max_epochs=2"]),
                            ("classification", CLASSIFICATION)]:
        path = tmp_path_factory.mktemp(task) / "run"
        cfg = dl_core.compose(*overrides, run_dir=path)
        train(cfg)
        out[task] = (path, load_frame(cfg.data))
    return out


@pytest.fixture(scope="module")
def server(runs):
    """serve.py on the regression run."""
    with serving(runs["regression"][0]) as client:
        yield client


def request_rows(table: pd.DataFrame) -> list[dict]:
    rows = table.drop(columns="target")
    return rows.astype(object).where(rows.notna(), None).to_dict("records")


def test_reloaded_regression_run_predicts_what_training_predicted(runs) -> None:
    run_dir, table = runs["regression"]
    at_training = pd.read_csv(run_dir / "predictions_test.csv")
    reloaded = load_run(run_dir).predict(table.loc[at_training["row"]].drop(columns="target"))
    np.testing.assert_allclose(reloaded["predicted"], at_training["predicted"], rtol=1e-6)


def test_reloaded_classifier_gives_the_same_labels_and_probabilities(runs) -> None:
    run_dir, table = runs["classification"]
    at_training = pd.read_csv(run_dir / "predictions_test.csv")
    reloaded = load_run(run_dir).predict(table.loc[at_training["row"]])
    assert list(reloaded["predicted"]) == list(at_training["predicted"])
    columns = [c for c in at_training.columns if c.startswith("prob_")]
    assert len(columns) == 3
    np.testing.assert_allclose(reloaded[columns], at_training[columns], rtol=1e-5)
    np.testing.assert_allclose(reloaded[columns].sum(axis=1), 1.0, rtol=1e-6)


def test_rows_are_checked_by_column(runs) -> None:
    run_dir, table = runs["regression"]
    run = load_run(run_dir)
    features = {f["name"]: f["type"] for f in run.metadata()["features"]}
    assert features["num_0"] == "number" and "cat_0" in features and "target" not in features
    rows = table.head(3).drop(columns="target")
    with pytest.raises(InputError, match=r"rows\[1\]\['num_0'\]"):
        run.predict(rows.astype({"num_0": object}).assign(num_0=[0.1, "tall", 0.3]))
    with pytest.raises(InputError, match=r"\['num_2'\] missing"):
        run.predict(rows.drop(columns="num_2"))
    infinite = table.head(6).drop(columns="target").assign(num_2=[np.inf, 1.0, -np.inf, np.inf, 0.0, 2.0])
    with pytest.raises(InputError, match=r"column\(s\) num_2 \(2 inf, 1 -inf\); replace them with finite "
                                         r"numbers or leave those cells empty \(the run imputes missing values "
                                         r"in \['num_2'\]\)"):
        run.predict(infinite)


def test_id_columns_are_carried_to_each_prediction(runs) -> None:
    """`load_run(...).predict(frame, id_columns=[...])`: each prediction row carries the ids of its input row
    as given (whatever the frame's index), before the predictions; a listed column the frame lacks is refused
    naming it."""
    run_dir, table = runs["classification"]
    rows = table.sample(30, random_state=1).drop(columns="target")  # an index that is not 0..n-1
    rows.insert(0, "customer", [f"c{k:04d}" for k in range(len(rows))])
    run = load_run(run_dir)
    plain = run.predict(rows.drop(columns="customer"))
    carried = run.predict(rows, id_columns=["customer", "cat_0"])
    assert list(carried.columns) == ["customer", "cat_0", *plain.columns]
    assert list(carried["customer"]) == list(rows["customer"]) and list(carried["cat_0"]) == list(rows["cat_0"])
    pd.testing.assert_frame_equal(carried[plain.columns], plain)  # the same rows in the same batch positions
    with pytest.raises(DataError, match=r"^id_columns: column\(s\) \['order'\] not in the rows; its columns: "
                                        r"customer, "):
        run.predict(rows, id_columns=["order"])


def test_server_and_predict_py_agree_on_a_classifier(runs, tmp_path: Path) -> None:
    run_dir, table = runs["classification"]
    rows = table.sample(40, random_state=0).drop(columns="target")
    source, output = tmp_path / "rows.csv", tmp_path / "predicted.csv"
    rows.to_csv(source, index=False)
    done = run_entry("predict.py", f"run_dir={run_dir}", f"data.path={source}", f"output={output}", timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    from_file = pd.read_csv(output)
    with serving(run_dir) as client:
        payload = rows.astype(object).where(rows.notna(), None).to_dict("records")
        answer = client.post("/predict", json={"rows": payload})
        assert answer.status_code == 200, answer.text
        served = pd.DataFrame(answer.json()["predictions"])
        bad = client.post("/predict", json={"rows": [{**payload[0], "num_1": "wide"}]})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "num_1"
        assert client.get("/health").status_code == 200
    assert list(served["predicted"]) == list(from_file["predicted"])
    probabilities = [c for c in from_file.columns if c.startswith("prob_")]
    np.testing.assert_allclose(served[probabilities], from_file[probabilities], rtol=1e-6)


@pytest.mark.parametrize("token", ["Infinity", "-Infinity", '"Infinity"', "1e400", '"-inf"'])
def test_infinite_numbers_are_422_naming_the_field(server, runs, token: str) -> None:
    good = request_rows(runs["regression"][1].head(3))
    rows = [dict(row) for row in good]
    rows[2]["num_4"] = "@"
    bad = server.post("/predict", content=with_token(rows, token), headers=JSON)
    assert bad.status_code == 422, bad.text
    assert strict_json(bad.text)["detail"] == [{"loc": ["body", "rows", 2, "num_4"], "type": "finite_number",
                                                "msg": bad.json()["detail"][0]["msg"]}]
    assert bad.json()["detail"][0]["msg"].startswith("Input should be a finite number, not ")
    answer = server.post("/predict", json={"rows": good})
    assert answer.status_code == 200 and connection(answer) == connection(bad)


def test_nan_is_a_missing_value_where_the_run_imputes(server, runs) -> None:
    """A client writing pandas' NaN for missing (Python's json does) gets what null gets, numbers and categories.

    Each variant is a request of its own, so that equal inputs meet the same computation and equal bits are
    the right test: in one batch, a row's place can change the last bits of its prediction (the CPU's matrix
    kernels take rows in blocks, here of 4, and the rest apart: five equal rows gave 41.66764999745036 at
    row 3 and 41.667649683359734 at row 4), and so can a batch of another size.
    """
    for row in request_rows(runs["regression"][1].head(6)):  # the sixth row showed those last bits
        variants = [{**row, "num_0": None}, {**row, "num_0": "@"}, {**row, "num_0": "NaN"},
                    {**row, "cat_0": None}, {**row, "cat_0": "@"}]
        predicted = []
        for variant in variants:
            answer = server.post("/predict", content=with_token([variant], "NaN"), headers=JSON)
            assert answer.status_code == 200, answer.text
            predicted.append(answer.json()["predictions"][0]["predicted"])
        assert predicted[0] == predicted[1] == predicted[2] and predicted[3] == predicted[4], predicted


def _with_flag(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A table whose target moves by two spreads of the rest with a true/false column."""
    rng = np.random.default_rng(seed)
    x, flag = rng.normal(size=n), rng.random(n) < 0.5
    return pd.DataFrame({"x": x, "flag": flag, "price": 1e5 * (x + 4.0 * flag + rng.normal(0, 0.1, n))})


@pytest.mark.slow
def test_a_true_false_column_predicts_as_in_training_from_its_file_and_from_json(tmp_path: Path) -> None:
    """The run's own training file through predict.py, and its rows as JSON true/false through serve.py,
    give the test predictions training wrote. predict.py and the server read `True` as 1, a category
    training never saw, and were off by up to the flag's effect."""
    table = _with_flag()
    source, run_dir, output = tmp_path / "table.csv", tmp_path / "run", tmp_path / "predicted.csv"
    table.to_csv(source, index=False)
    overrides = [o for o in TINY_TABULAR if not o.startswith("data")]
    train(dl_core.compose(*overrides, "data=csv_tabular", f"data.path={source}", "data.target_column=price",
                          "data.task=regression", run_dir=run_dir))
    at_training = pd.read_csv(run_dir / "predictions_test.csv")
    done = run_entry("predict.py", f"run_dir={run_dir}", f"data.path={source}", f"output={output}", timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    from_file = pd.read_csv(output).loc[at_training["row"], "predicted"]
    rows = table.loc[at_training["row"]].drop(columns="price")
    assert {type(row["flag"]) for row in rows.to_dict("records")} == {bool}  # sent as JSON true and false
    with serving(run_dir) as client:
        answer = client.post("/predict", json={"rows": rows.to_dict("records")})
        assert answer.status_code == 200, answer.text
        served = pd.DataFrame(answer.json()["predictions"])["predicted"]
        words = rows.assign(flag=rows["flag"].map({True: "TRUE", False: "false"})).head(5).to_dict("records")
        as_words = client.post("/predict", json={"rows": words})
        assert as_words.status_code == 200, as_words.text
        bad = client.post("/predict", json={"rows": [{**words[0], "flag": 1}]})
    # The same float32 model on the same rows, in other batches: sums in another order differ in the last
    # bits (measured: under 1e-7 of the target's spread); a misread flag moves a prediction by about two spreads.
    tolerance = 1e-5 * table["price"].std()
    np.testing.assert_allclose(from_file, at_training["predicted"], rtol=0, atol=tolerance)
    np.testing.assert_allclose(served, at_training["predicted"], rtol=0, atol=tolerance)
    np.testing.assert_allclose([p["predicted"] for p in as_words.json()["predictions"]], served[:5], rtol=0,
                               atol=tolerance)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "flag", bad.text  # 1 is no flag
    assert load_run(run_dir).metadata()["features"][1] == {"name": "flag", "type": "boolean", "nullable": True}


def test_true_and_false_are_no_numbers_in_json_or_in_a_file(server, runs) -> None:
    """pydantic's float reads true as 1.0; a wrong type is a 422 (README), for a file's rows the same line."""
    run_dir, table = runs["regression"]
    rows = request_rows(table.head(2))
    bad = server.post("/predict", json={"rows": [rows[0], {**rows[1], "num_0": True}]})
    assert bad.status_code == 422, bad.text
    assert bad.json()["detail"] == [{"loc": ["body", "rows", 1, "num_0"], "type": "number_type",
                                     "msg": "Input should be a number, not a boolean"}]
    with pytest.raises(InputError, match=r"^rows\[0\]\['num_0'\]: Input should be a number, not a boolean \(got "
                                         r"False\)$"):
        load_run(run_dir).predict(table.head(2).drop(columns="target").assign(num_0=[False, True]))


def _with_country(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A table whose target moves by two spreads of the rest with a country code, NA (Namibia) among them."""
    rng = np.random.default_rng(seed)
    x, country = rng.normal(size=n), rng.choice(["NA", "FR", "IT"], n)
    return pd.DataFrame({"x": x, "country": country, "price": x + 4.0 * (country == "NA") + rng.normal(0, 0.1, n)})


@pytest.fixture(scope="module")
def coded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pd.DataFrame]:
    """A run trained on `_with_country`: its directory, its training file and the table."""
    table = _with_country()
    folder = tmp_path_factory.mktemp("coded")
    source, run_dir = folder / "table.csv", folder / "run"
    table.to_csv(source, index=False)
    overrides = [o for o in TINY_TABULAR if not o.startswith("data")]
    train(dl_core.compose(*overrides, "data=csv_tabular", f"data.path={source}", "data.target_column=price",
                          "data.task=regression", run_dir=run_dir))
    return run_dir, source, table


@pytest.fixture(scope="module")
def coded_server(coded):
    """serve.py on the `coded` run, with its defaults."""
    with serving(coded[0]) as client:
        yield client


@pytest.mark.slow
def test_a_category_named_na_predicts_as_in_training_and_is_no_missing_value(coded, coded_server,
                                                                            tmp_path: Path) -> None:
    """pandas read the code NA as a missing value: a third of the rows lost their country to the index of missing
    (and unseen) ones, which a JSON "NA" then met too. Now NA is the category it says, in training, in
    predict.py's reading of the file and in JSON, and the run's own rows give training's predictions."""
    run_dir, source, table = coded
    at_training = pd.read_csv(run_dir / "predictions_test.csv")
    output = tmp_path / "predicted.csv"
    done = run_entry("predict.py", f"run_dir={run_dir}", f"data.path={source}", f"output={output}", timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "holds 'NA' in" in done.stdout  # the reading is said once, in a warning line
    from_file = pd.read_csv(output).loc[at_training["row"], "predicted"]
    rows = table.loc[at_training["row"]].drop(columns="price")
    answer = coded_server.post("/predict", json={"rows": rows.to_dict("records")})
    assert answer.status_code == 200, answer.text
    assert answer.json()["warnings"] == []
    served = pd.DataFrame(answer.json()["predictions"])["predicted"]
    first = rows.iloc[0].to_dict()
    na_and_missing = coded_server.post("/predict", json={"rows": [{**first, "country": "NA"},
                                                                  {**first, "country": None}]})
    # Other batches than training's: float32 sums in another order differ in the last bits (see the flag test).
    tolerance = 1e-5 * table["price"].std()
    np.testing.assert_allclose(from_file, at_training["predicted"], rtol=0, atol=tolerance)
    np.testing.assert_allclose(served, at_training["predicted"], rtol=0, atol=tolerance)
    na, missing = (p["predicted"] for p in na_and_missing.json()["predictions"])
    assert abs(na - missing) > 0.5, (na, missing)  # NA moves the target by 4; a missing country does not


@pytest.mark.slow
def test_unseen_categories_are_warned_about_by_predict_py_and_the_server_or_refused(coded, coded_server,
                                                                                   tmp_path: Path) -> None:
    """A category training never saw (`zzz`, or `fr` for `FR`) was read as unknown without a word: predict.py
    now logs a line per column, the server's answer lists it under `warnings`, and unseen_categories=refuse
    refuses it naming the column and the values."""
    run_dir, _, table = coded
    rows = table.head(6).drop(columns="price").reset_index(drop=True)
    rows.loc[[2, 3, 5], "country"] = ["zzz", "fr", "zzz"]
    source = tmp_path / "new.csv"
    rows.to_csv(source, index=False)
    said = ("column 'country' has categories that training never saw in 3 row(s), read as unknown (as a missing "
            "value is): 'zzz', 'fr' (training has 'FR')")
    done = run_entry("predict.py", f"run_dir={run_dir}", f"data.path={source}", f"output={tmp_path / 'out.csv'}",
                     timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"data.path: {said}; pass unseen_categories=refuse to refuse them" in done.stdout
    assert len(pd.read_csv(tmp_path / "out.csv")) == 6
    refused = run_entry("predict.py", f"run_dir={run_dir}", f"data.path={source}", f"output={tmp_path / 'no.csv'}",
                        "unseen_categories=refuse", timeout=180)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
    assert refused.stderr.strip().splitlines() == [(
        f"error: rows[2]['country']: {said}; send categories the run was trained on, or pass "
        f"unseen_categories=encode to predict them as unknown (in data.path={source})")]
    assert not (tmp_path / "no.csv").exists()
    payload = rows.to_dict("records")
    answer = coded_server.post("/predict", json={"rows": payload})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 6
    assert answer.json()["warnings"] == [{"loc": ["body", "rows", 2, "country"], "type": "unseen_category",
                                          "msg": said, "rows": 3, "values": ["zzz", "fr"]}]
    with serving(run_dir, "unseen_categories=refuse") as client:
        bad = client.post("/predict", json={"rows": payload})
        good = client.post("/predict", json={"rows": payload[:2]})
    assert bad.status_code == 422, bad.text
    assert strict_json(bad.text) == {"error_count": 1, "detail": [{
        "loc": ["body", "rows", 2, "country"], "type": "unseen_category",
        "msg": f"{said}; send categories the run was trained on, or start the server with unseen_categories=encode"}]}
    assert good.status_code == 200 and good.json()["warnings"] == []


def test_predict_py_refuses_a_file_that_names_a_column_twice(runs, tmp_path: Path) -> None:
    """The file's second `num_0` became `num_0.1` and was silently left out (training refuses such a header too)."""
    run_dir, table = runs["regression"]
    source = tmp_path / "rows.csv"
    rows = table.head(5).drop(columns="target")
    source.write_text(rows.to_csv(index=False).replace("num_1", "num_0", 1))
    done = run_entry("predict.py", f"run_dir={run_dir}", f"data.path={source}", timeout=180)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [(f"error: data.path: the header of {source} names column(s) "
                                                 f"'num_0' more than once; give each column its own name")]
    with pytest.raises(InputError, match=r"^rows: column\(s\) \['num_0'\] appear more than once; give each column "
                                         r"its own name$"):
        load_run(run_dir).predict(rows.rename(columns={"num_1": "num_0"}))
