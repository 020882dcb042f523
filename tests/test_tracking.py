"""Which trackers a run logs to (`logger=<one>` or `logger=[several]`), what they share, and the runs of one
multirun grouped in each tracker."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from dl_core.tracking import enabled_backends
from dl_core.tracking.shared import predictions_sample
from helpers import TINY, run_entry
from wandb_reader import offline_runs, read_run_record


@pytest.mark.parametrize(("override", "expected"), [
    ("logger=none", []),
    ("logger=wandb", ["wandb"]),
    ("logger=tensorboard", ["tensorboard"]),
    ("logger=mlflow", ["mlflow"]),
    ("logger=[wandb,mlflow]", ["wandb", "mlflow"]),
    ("logger=[mlflow,tensorboard,wandb]", ["wandb", "tensorboard", "mlflow"]),
])
def test_one_logger_or_several(make_cfg, override, expected):
    cfg = make_cfg(override, "logger.project=mine", "tags=[a]")
    assert enabled_backends(cfg.logger) == expected
    assert cfg.logger.project == "mine"  # one key for every tracker, whichever the options
    assert list(cfg.logger.tags) == (["a"] if expected else [])


def test_a_run_saved_before_several_loggers_keeps_its_one():
    """Its checkpoint's config names its tracker in `logger.backend`; resuming it logs there still."""
    assert enabled_backends(OmegaConf.create({"backend": "wandb", "project": "p"})) == ["wandb"]


def test_a_large_predictions_table_is_sampled_in_file_order(tmp_path):
    pd.DataFrame({"row": range(50), "predicted": range(50)}).to_csv(tmp_path / "predictions_test.csv", index=False)
    table, rows = predictions_sample(tmp_path, max_rows=10)
    assert rows == 50 and len(table) == 10
    assert table["row"].is_monotonic_increasing and table["row"].nunique() == 10
    assert predictions_sample(tmp_path, max_rows=100)[0]["row"].tolist() == list(range(50))
    assert predictions_sample(tmp_path / "nothing", max_rows=10) is None


def test_trackers_are_imported_only_when_used():
    code = ("import sys, dl_core.runs.pipeline, dl_core.tracking.mlflow_tracker, dl_core.tracking.tensorboard_tracker; "
            "print(sorted(m for m in ('mlflow', 'tensorboard', 'torch.utils.tensorboard') if m in sys.modules))")
    done = run_entry("-c", code, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
def test_the_runs_of_a_multirun_are_grouped_in_every_tracker(tmp_path):
    """W&B: one group; MLflow: one experiment, one `group` tag; TensorBoard: the sweep dir holds each job's
    event files. The group is the sweep dir's name."""
    sweep_dir = tmp_path / "my_sweep"
    done = run_entry("train.py", "-m", *TINY, "trainer.max_epochs=1", "seed=0,1", "logger=[wandb,tensorboard,mlflow]",
                     f"paths.log_dir={tmp_path}", f"hydra.sweep.dir={sweep_dir}")
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = [sweep_dir / "0", sweep_dir / "1"]
    assert all((job / "metrics.json").is_file() for job in jobs)

    assert {read_run_record(offline_runs(job)[0]).get("run_group") for job in jobs} == {"my_sweep"}

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = [client.get_run((job / "mlflow_run_id.txt").read_text().strip()) for job in jobs]
    assert {run.data.tags["group"] for run in runs} == {"my_sweep"}
    assert len({run.info.experiment_id for run in runs}) == 1
    assert [run.data.metrics["test_mse"] for run in runs] == [
        pytest.approx(json.loads((job / "metrics.json").read_text())["test_mse"], rel=1e-12) for job in jobs]

    events = sorted(path.parent.relative_to(sweep_dir) for path in sweep_dir.rglob("events.out.tfevents.*"))
    assert events == [Path("0/tensorboard"), Path("1/tensorboard")]
