"""predict.py's output file: never inside checkpoints/, never over a file predict.py did not write."""

from __future__ import annotations

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
from dl_core.errors import ConfigError
from dl_core.pipeline import train
from dl_core.serving.batch import predict_file
from dl_core.serving.load import load_run
from helpers import ROOT, TINY, TINY_GPU, needs_gpu, run_entry

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
        with pytest.raises(ConfigError, match=r"^output: .* (is not a \.csv file|is inside a checkpoints directory)"):
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


def test_predict_writes_into_the_run_by_default(trained):
    run_dir, rows = trained
    assert predict(run_dir, rows) == run_dir / "predictions" / "rows.csv"


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
