"""predict.py's output file: never over anything a run wrote, never over a file predict.py did not write,
one file per input file; id columns carried through; an unwritable place refused in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import dl_core
from dl_core.data import build_bundle
from dl_core.data.synthetic import generate_series
from dl_core.engine.checkpoint import load_checkpoint
from dl_core.errors import ConfigError, DataError
from dl_core.runs.pipeline import train
from dl_core.serving.batch import predict_file
from dl_core.serving.load import load_run
from helpers import ROOT, TINY, TINY_GPU, needs_gpu, run_entry
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
        with pytest.raises(ConfigError, match=r"^output: .* (is not a \.csv file|is inside the run directory)"):
            predict(run_dir, rows, f"output={output}")
    assert best.read_bytes() == before and load_checkpoint(best)["epoch"] == 1
    assert not (run_dir / "checkpoints" / "preds.csv").exists()


def test_predict_cli_refuses_the_model_path_in_one_line(trained):
    run_dir, rows = trained
    best = run_dir / "checkpoints" / "best.ckpt"
    done = run_entry("predict.py", f"run_dir={run_dir}", f"data.path={rows}", f"output={best}", timeout=120)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"error: output: {best} is not a .csv file; predictions are written as CSV, e.g. output=preds.csv"]
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
