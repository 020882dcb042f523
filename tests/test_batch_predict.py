"""predict.py's output file: never over anything a run wrote, never over a file predict.py did not write,
one file per input file; id columns carried through; an unwritable place refused in one line; CSV or parquet.
evaluate=true: a run's own test rows score as its metrics.json says, beside the predictions."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import dl_core
from dl_core.data import build_bundle, load_frame
from dl_core.data.synthetic import generate_series
from dl_core.engine.checkpoint import load_checkpoint
from dl_core.errors import ConfigError, DataError
from dl_core.runs.pipeline import train
from dl_core.serving.batch import predict_file
from dl_core.serving.load import load_run
from dl_core.task.series_metrics import summary_names
from helpers import ROOT, TINY, TINY_GPU, TINY_TABULAR, needs_gpu, run_entry
from unprivileged import require_unprivileged, run_unprivileged

# One xdist worker runs the whole module, so that its trained run is built once.
pytestmark = pytest.mark.xdist_group("test_batch_predict")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny trained run, and a file of new rows with its input columns."""
    root = tmp_path_factory.mktemp("predict")
    train(dl_core.compose(*TINY, "trainer.max_epochs=1", run_dir=root / "run"))
    generate_series(2, 400, 2, 0.3, 0).groupby("series_id").head(40).to_csv(root / "rows.csv", index=False)
    return root / "run", root / "rows.csv"


def predict(run_dir: Path, rows: Path, *overrides: str) -> Path:
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(ROOT / "conf")):
        cfg = compose("predict", overrides=[f"run_dir={run_dir}", f"data.path={rows}", "threads=1", *overrides])
    GlobalHydra.instance().clear()
    return predict_file(cfg)


def test_predict_refuses_to_write_over_the_model(trained):
    run_dir, rows = trained
    """`output=<run>/checkpoints/best.ckpt` replaced the model with a CSV."""
    best = run_dir / "checkpoints" / "best.ckpt"
    before = best.read_bytes()
    for output in (best, run_dir / "checkpoints" / "preds.csv"):
        with pytest.raises(ConfigError, match=r"^output: .* (is not a \.csv or \.parquet file|is inside the run dir)"):
            predict(run_dir, rows, f"output={output}")
    assert best.read_bytes() == before and load_checkpoint(best)["epoch"] == 1
    assert not (run_dir / "checkpoints" / "preds.csv").exists()


def test_predict_cli_refuses_the_model_path_in_one_line(trained):
    run_dir, rows = trained
    best = run_dir / "checkpoints" / "best.ckpt"
    done = run_entry("predict.py", f"run_dir={run_dir}", f"data.path={rows}", f"output={best}", timeout=120)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        (f"error: output: {best} is not a .csv or .parquet file; predictions are written as CSV or parquet, e.g. "
         f"output=preds.csv")]
    assert load_checkpoint(best)["epoch"] == 1


def test_predict_replaces_only_its_own_predictions(trained, tmp_path):
    run_dir, rows = trained
    output = tmp_path / "preds.csv"
    assert predict(run_dir, rows, f"output={output}") == output
    first = pd.read_csv(output)
    assert predict(run_dir, rows, f"output={output}") == output  # its own file: replaced
    pd.testing.assert_frame_equal(pd.read_csv(output), first)

    other = tmp_path / "notes.csv"
    other.write_text("name,value\na,1\n")
    with pytest.raises(ConfigError, match=r"^output: .*notes.csv exists and is not a predictions file of this run"):
        predict(run_dir, rows, f"output={other}")
    assert other.read_text() == "name,value\na,1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.csv", "preds.csv"]  # no temp file left


def test_predict_never_replaces_what_a_run_wrote(trained, tmp_path):
    """`output=<run>/predictions_test.csv` replaced the run's own test predictions: its header is the one
    predict.py writes. Inside a run directory (this run's or another's) predict.py writes only under
    predictions/, whatever training writes now or later."""
    run_dir, rows = trained
    other = tmp_path / "other_run"
    shutil.copytree(run_dir, other)
    targets = [run_dir / "predictions_test.csv", run_dir / "metrics.csv", run_dir / "checkpoints" / "preds.csv",
               run_dir / "new.csv", run_dir / "wandb" / "preds.csv", other / "predictions_test.csv"]
    before = {path: path.read_bytes() for path in targets if path.exists()}
    assert run_dir / "predictions_test.csv" in before and other / "predictions_test.csv" in before
    refused = r"^output: .* is inside the run directory .*; pass output=.*/predictions/"
    for output in targets:
        with pytest.raises(ConfigError, match=refused):
            predict(run_dir, rows, f"output={output}")
    assert {path: path.read_bytes() for path in targets if path.exists()} == before
    assert predict(run_dir, rows, f"output={other / 'predictions' / 'mine.csv'}").is_file()


def test_predict_writes_into_the_run_one_file_per_input_file(trained, tmp_path):
    """`a/new.csv` and `b/new.csv` both went to `<run>/predictions/new.csv`, the second over the first."""
    run_dir, rows = trained
    first, second = tmp_path / "a" / "new.csv", tmp_path / "b" / "new.csv"
    for path, n_rows in ((first, 30), (second, 40)):
        path.parent.mkdir()
        pd.read_csv(rows).groupby("series_id").head(n_rows).to_csv(path, index=False)
    out_first = predict(run_dir, first)
    written = out_first.read_bytes()
    out_second = predict(run_dir, second)
    assert out_first != out_second and out_first.parent == out_second.parent == run_dir / "predictions"
    assert out_first.name.startswith("new-") and out_second.name.startswith("new-")
    assert out_first.read_bytes() == written and len(pd.read_csv(out_second)) > len(pd.read_csv(out_first))
    assert predict(run_dir, first) == out_first  # the same file again: its own predictions, replaced


def test_id_columns_trace_each_forecast_to_the_row_of_its_target(trained, tmp_path):
    """`id_columns` are copied as written in the file (text: `007` stays `007`) to each prediction row from
    the input row whose target it predicts, wherever that row sits in the file; empty for the forecast beyond
    a series' last row."""
    run_dir, rows = trained
    frame = pd.read_csv(rows)
    frame.insert(0, "row_id", [f"{k:03d}" for k in range(len(frame))])
    frame["batch"] = np.arange(len(frame)) % 3
    frame = frame.sample(frac=1.0, random_state=0)  # file order is not time order
    frame.to_csv(tmp_path / "rows.csv", index=False)
    out = pd.read_csv(predict(run_dir, tmp_path / "rows.csv", "id_columns=[row_id,batch]",
                              f"output={tmp_path / 'out.csv'}"), dtype={"row_id": str}, parse_dates=["timestamp"])
    assert list(out.columns[:3]) == ["row_id", "batch", "timestamp"]
    source = frame.assign(timestamp=pd.to_datetime(frame["timestamp"]))
    known = out[out["actual"].notna()].merge(source, left_on=["entity", "timestamp"],
                                             right_on=["series_id", "timestamp"], suffixes=("", "_file"))
    assert len(known) == out["actual"].notna().sum() > 0
    assert (known["row_id"] == known["row_id_file"]).all() and (known["batch"] == known["batch_file"]).all()
    np.testing.assert_allclose(known["actual"], known["target_file"], rtol=1e-5)  # the row's own target value
    beyond = out[out["actual"].isna()]
    assert len(beyond) == 2 and beyond["row_id"].isna().all() and beyond["batch"].isna().all()
    with pytest.raises(DataError, match=r"^id_columns: column\(s\) \['order_no'\] not in data\.path=.*rows\.csv; its "
                                        r"columns: row_id, timestamp, "):
        predict(run_dir, tmp_path / "rows.csv", "id_columns=[row_id,order_no]")
    frame.assign(step=1).to_csv(tmp_path / "rows.csv", index=False)
    with pytest.raises(DataError, match=r"^id_columns: \['step'\] would replace columns of the predictions"):
        predict(run_dir, tmp_path / "rows.csv", "id_columns=[step]")


@needs_gpu
def test_a_run_trained_on_a_gpu_predicts_on_the_cpu_as_it_did_on_the_gpu(tmp_path):
    """Train on a GPU, predict on a laptop: the checkpoint loads onto the CPU, and its test predictions are
    those the GPU run wrote, to float rounding (the GPU's TF32 and cuDNN kernels are not the CPU's)."""
    cfg = dl_core.compose(*TINY_GPU, "hardware.precision=32", "trainer.max_epochs=2", run_dir=tmp_path / "run")
    train(cfg)
    run = load_run(tmp_path / "run")
    assert all(p.device.type == "cpu" for p in run.estimator.module.parameters())
    bundle = build_bundle(cfg.data)
    on_cpu = bundle.predictions_table("test", run.estimator.predict(bundle.splits["test"]))
    on_gpu = pd.read_csv(tmp_path / "run" / "predictions_test.csv")
    columns = on_cpu.select_dtypes("number").columns
    assert list(columns) == list(on_gpu.select_dtypes("number").columns) and len(on_cpu) == len(on_gpu)
    cpu, gpu = on_cpu[columns].to_numpy(), on_gpu[columns].to_numpy()
    np.testing.assert_allclose(cpu, gpu, rtol=0, atol=1e-2 * float(gpu.std()))
    rows = tmp_path / "rows.csv"
    generate_series(2, 400, 2, 0.3, 0).groupby("series_id").head(40).to_csv(rows, index=False)
    assert pd.read_csv(predict(tmp_path / "run", rows))["predicted"].notna().all()


@pytest.mark.slow
def test_an_unwritable_output_is_refused_in_one_line(trained, tmp_path):
    """A read-only output directory gave a PermissionError traceback; so did the default output in a read-only
    run directory (a run shared on a cluster), and an output in a directory this user may not enter."""
    require_unprivileged(tmp_path)
    run_dir, rows = trained
    shared = tmp_path / "shared_run"
    shutil.copytree(run_dir, shared, ignore=shutil.ignore_patterns("predictions"))
    (tmp_path / "locked").mkdir()
    (tmp_path / "sealed").mkdir()
    read_only = [tmp_path / "locked", *(path for path in shared.rglob("*") if path.is_dir()), shared]
    for path in read_only:
        path.chmod(0o555)
    (tmp_path / "sealed").chmod(0o000)
    try:
        for run, output, shown in ((run_dir, tmp_path / "locked" / "preds.csv", tmp_path / "locked" / "preds.csv"),
                                   (shared, None, shared / "predictions" / "rows-"),
                                   (run_dir, tmp_path / "sealed" / "preds.csv", tmp_path / "sealed" / "preds.csv")):
            args = (f"run_dir={run}", f"data.path={rows}", "threads=1", *([f"output={output}"] if output else []))
            done = run_unprivileged("predict.py", *args, cwd=tmp_path, timeout=120)
            assert done.returncode == 2, done.stderr[-2000:]
            assert done.stderr.startswith(f"error: output: cannot write {shown}") and done.stderr.count("\n") == 1
            assert "Permission denied" in done.stderr and "pass output=" in done.stderr
        assert not list((tmp_path / "locked").iterdir()) and not (shared / "predictions").exists()
    finally:
        for path in [*read_only, tmp_path / "sealed"]:
            path.chmod(0o755)
    assert not list((tmp_path / "sealed").iterdir())


def test_predictions_are_written_as_parquet_from_a_parquet_file(trained, tmp_path):
    """The same predictions as CSV; ids as the file holds them; a parquet file predict.py did not write is kept."""
    run_dir, rows = trained
    frame = pd.read_csv(rows, parse_dates=["timestamp"]).assign(row_id=lambda f: np.arange(len(f)) * 10)
    frame.to_parquet(tmp_path / "rows.parquet")
    as_csv = pd.read_csv(predict(run_dir, rows, f"output={tmp_path / 'preds.csv'}"), parse_dates=["timestamp"])
    output = predict(run_dir, tmp_path / "rows.parquet", "id_columns=[row_id]", f"output={tmp_path / 'preds.parquet'}")
    as_parquet = pd.read_parquet(output)
    pd.testing.assert_frame_equal(as_parquet.drop(columns="row_id"), as_csv, check_dtype=False)
    known = as_parquet["row_id"].notna()
    assert (as_parquet.loc[known, "row_id"] % 10 == 0).all() and as_parquet["row_id"].isna().sum() == 2
    assert predict(run_dir, tmp_path / "rows.parquet", "id_columns=[row_id]", f"output={output}") == output

    pd.DataFrame({"name": ["a"]}).to_parquet(tmp_path / "notes.parquet")
    with pytest.raises(ConfigError, match=r"^output: .*notes.parquet exists and is not a predictions file"):
        predict(run_dir, rows, f"output={tmp_path / 'notes.parquet'}")
    assert list(pd.read_parquet(tmp_path / "notes.parquet").columns) == ["name"]


def run_horizon(run_dir: Path) -> int:
    """A forecast's horizon (its predictions table has a row per step of each window); 1 for a table."""
    return int(load_checkpoint(run_dir / "checkpoints" / "best.ckpt")["config"]["data"].get("horizon", 1))


def tabular_test_rows(run_dir: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of a table run's test split: predictions_test.csv names them (`row`)."""
    return frame.loc[pd.read_csv(run_dir / "predictions_test.csv")["row"]]


def forecast_test_rows(run_dir: Path, frame: pd.DataFrame, entity: str, sequence_length: int) -> pd.DataFrame:
    """The rows a forecast run's test windows read: each series from `sequence_length` rows before its first test
    target (predictions_test.csv dates them) to its end."""
    test = pd.read_csv(run_dir / "predictions_test.csv", parse_dates=["timestamp"])
    first = test.groupby("entity")["timestamp"].min()
    parts = []
    for name, series in frame.groupby(entity):
        start = series.index.get_loc(series.index[series["timestamp"] == first[name]][0])
        parts.append(series.iloc[start - sequence_length:])
    return pd.concat(parts)


@pytest.fixture(scope="module", params=["table", "forecast"])
def labelled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A tiny trained run, the file of its own test rows, and its target column."""
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "table":
        cfg = dl_core.compose(*TINY_TABULAR, "trainer.max_epochs=3", run_dir=root / "run")
        train(cfg)
        rows = tabular_test_rows(root / "run", load_frame(cfg.data))
    else:
        cfg = dl_core.compose(*TINY, "trainer.max_epochs=2", "data.horizon=3", run_dir=root / "run")
        train(cfg)
        rows = forecast_test_rows(root / "run", load_frame(cfg.data), "series_id", cfg.data.sequence_length)
    rows.to_csv(root / "test_rows.csv", index=False)
    return root / "run", root / "test_rows.csv", str(cfg.data.target_column)


def test_evaluate_scores_a_runs_own_test_rows_as_its_metrics_say(labelled, tmp_path):
    """The same metrics functions on the same rows and windows: the test metrics of metrics.json (but a forecast's
    per-series MASE and sMAPE summary, scaled by each series' training part, which new rows do not hold).
    Prediction runs on the CPU in its own batches; to a float tolerance for kernels that may differ with the batch."""
    run_dir, rows, _ = labelled
    output = predict(run_dir, rows, "evaluate=true", f"output={tmp_path / 'preds.csv'}")
    scores = json.loads((tmp_path / "preds.metrics.json").read_text())
    trained_with = json.loads((run_dir / "metrics.json").read_text())
    test = {name.removeprefix("test_"): value for name, value in trained_with.items()
            if name.startswith("test_") and name not in summary_names("test")}
    samples = len(pd.read_csv(run_dir / "predictions_test.csv")) // run_horizon(run_dir)  # rows, or windows
    assert scores == {"n_samples": samples, **{name: pytest.approx(value, rel=1e-9) for name, value in test.items()}}
    assert len(test) >= 4
    assert pd.read_csv(output)["predicted"].notna().all()


def test_evaluate_refuses_a_file_without_the_target_column_naming_it(labelled, tmp_path):
    run_dir, rows, target = labelled
    pd.read_csv(rows).drop(columns=target).to_csv(tmp_path / "unlabelled.csv", index=False)
    done = run_entry("predict.py", f"run_dir={run_dir}", f"data.path={tmp_path / 'unlabelled.csv'}", "evaluate=true",
                     f"output={tmp_path / 'preds.csv'}", "threads=1", timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: rows: ") and f"['{target}']" in line and "missing" in line, line
    assert not list(tmp_path.glob("preds*"))


@pytest.mark.parametrize("locked", ["checkpoints", "checkpoints/best.ckpt"])
def test_a_checkpoint_this_user_may_not_read_is_one_line_naming_the_permission(trained, tmp_path, locked):
    """A folder on the way: a PermissionError traceback (from `is_file`). The file itself: "truncated or corrupt;
    ... train the run again", where the fix is a permission."""
    require_unprivileged(tmp_path)
    run_dir, rows = trained
    shared = tmp_path / "shared_run"
    shutil.copytree(run_dir, shared, ignore=shutil.ignore_patterns("predictions"))
    path = shared / locked
    path.chmod(0)
    if path.is_dir():
        expected = (f"error: {path}: permission denied, so {path / 'best.ckpt'} cannot be read; make the folder "
                    f"readable (chmod u+rx {path}), then run again")
    else:
        expected = (f"error: {path}: permission denied, so the checkpoint cannot be read; make it readable "
                    f"(chmod u+r {path}), then run again")
    with socket.socket() as probe:  # a free port: serve.py checks it before it loads the run
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for script, args in (("predict.py", (f"data.path={rows}", "threads=1")),
                         ("serve.py", ("host=127.0.0.1", f"port={port}", "threads=1"))):
        done = run_unprivileged(script, f"run_dir={shared}", *args, cwd=tmp_path, timeout=120)
        assert (done.returncode, done.stderr.strip()) == (2, expected), script
