"""docs/extending.md followed in a copy of the repository: a model is one module and one YAML, touching no
other file, whether it is an `nn.Module` for the epoch engine or an estimator of its own."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dl_core.data.synthetic import generate_series
from helpers import ROOT, entry_env, run_entry

TINY_RUN = ["data.generator.length=300", "data.sequence_length=12", "trainer=tiny", "trainer.max_epochs=2",
            "hardware=cpu1"]

WINDOW_MLP = '''"""A two-layer MLP over the flattened window (the model docs/extending.md walks through)."""

from dataclasses import dataclass

import torch
from torch import nn

from dl_core.errors import require


@dataclass
class WindowMLPConfig:
    """An MLP forecaster.

    Attributes:
        width: hidden units.
    """

    _target_: str = "dl_core.models.window_mlp.WindowMLP"
    width: int = 16

    def validate(self, prefix: str) -> None:
        require(self.width >= 1, f"{prefix}.width", f"must be >= 1 (got {self.width})")


class WindowMLP(nn.Module):
    data_kind = "timeseries"

    def __init__(self, sequence_length: int, n_features: int, horizon: int, n_targets: int, *, width: int):
        super().__init__()
        self.horizon, self.n_targets = horizon, n_targets
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(sequence_length * n_features, width), nn.ReLU(),
                                 nn.Linear(width, horizon * n_targets))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1, self.horizon, self.n_targets)
'''

MEAN_FORECASTER = '''"""Each target's mean over the training windows: an estimator that is not an nn.Module."""

from dataclasses import dataclass

import numpy as np
import torch

from dl_core.engine import FitContext, FitResult
from dl_core.engine.checkpoint import atomic_save, checkpoint_payload


@dataclass
class MeanForecasterConfig:
    """The training mean of every (step, target)."""

    _target_: str = "dl_core.models.mean_forecaster.MeanForecaster"


class MeanForecaster:
    data_kind = "timeseries"
    name = "MeanForecaster"

    def __init__(self, horizon: int, n_targets: int):
        self.mean = np.zeros((horizon, n_targets), np.float32)

    @property
    def n_parameters(self) -> int:
        return self.mean.size

    def fit(self, bundle, context: FitContext) -> FitResult:
        self.mean = bundle.splits["train"].targets().cpu().numpy().mean(axis=0)
        val = bundle.splits["val"]
        val_loss = float(bundle.task.loss()(torch.from_numpy(self.predict(val)), val.targets().float()))
        state = {"mean": torch.from_numpy(self.mean)}
        checkpoints = context.run_dir / "checkpoints"
        atomic_save(checkpoint_payload(1, True, state, state, {}, torch.Generator(), [], 0.0, context.artifacts),
                    checkpoints / "best.ckpt", checkpoints / "last.ckpt")
        return FitResult(1, 1, val_loss, False, len(bundle.splits["train"]), 0.0)

    def predict(self, split) -> np.ndarray:
        return np.repeat(self.mean[None], len(split), axis=0)

    def load_state(self, checkpoint) -> None:
        self.mean = checkpoint["model"]["mean"].numpy()
'''


def repository_with(tmp_path: Path, name: str, module: str) -> Path:
    """A copy of the package, the config tree and the entry points, plus `dl_core/models/<name>.py` and
    `conf/model/<name>.yaml`: the two files docs/extending.md asks for, and nothing else."""
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "dl_core", root / "dl_core", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "conf", root / "conf")
    for script in ("train.py", "predict.py"):
        shutil.copy(ROOT / script, root / script)
    (root / "dl_core" / "models" / f"{name}.py").write_text(module)
    (root / "conf" / "model" / f"{name}.yaml").write_text(f"defaults:\n  - {name}_schema\n  - _self_\n")
    return root


def run(root: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The copy's own script, importing the copy's dl_core."""
    return run_entry(root / script, *args, cwd=root, env=entry_env(root))


@pytest.mark.slow
def test_a_model_is_one_module_and_one_yaml(tmp_path):
    root = repository_with(tmp_path, "window_mlp", WINDOW_MLP)
    done = run(root, "train.py", "model=window_mlp", "model.width=8", *TINY_RUN, f"hydra.run.dir={root / 'run'}")
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and np.isfinite(metrics["test_mse"])
    assert metrics["n_parameters"] == (12 * 3 * 8 + 8) + (8 * 1 + 1)  # 12 steps x 3 inputs -> 8 -> 1 step
    assert (root / "run" / "checkpoints" / "best.ckpt").is_file()

    wrong_type = run(root, "train.py", "model=window_mlp", "model.width=wide", *TINY_RUN,
                     f"hydra.run.dir={root / 'refused'}")
    assert wrong_type.returncode == 2 and wrong_type.stderr.startswith("error: model.width: Value 'wide'"), \
        wrong_type.stderr[-2000:]
    out_of_range = run(root, "train.py", "model=window_mlp", "model.width=0", *TINY_RUN,
                       f"hydra.run.dir={root / 'refused'}")
    assert out_of_range.stderr.strip() == "error: model.width: must be >= 1 (got 0)"
    assert not (root / "refused").exists()


@pytest.mark.slow
def test_an_estimator_that_is_not_a_module_trains_and_predicts_through_the_same_seam(tmp_path):
    root = repository_with(tmp_path, "mean_forecaster", MEAN_FORECASTER)
    done = run(root, "train.py", "model=mean_forecaster", *TINY_RUN, f"hydra.run.dir={root / 'run'}")
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    assert metrics["n_parameters"] == 1 and metrics["val_loss"] == pytest.approx(metrics["val_mse_scaled"])

    rows = generate_series(2, 300, 2, 0.3, 0).groupby("series_id").head(20)
    rows.to_csv(root / "rows.csv", index=False)
    predicted = run(root, "predict.py", f"run_dir={root / 'run'}", f"data.path={root / 'rows.csv'}",
                    f"output={root / 'predicted.csv'}")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    table = pd.read_csv(root / "predicted.csv")
    test = pd.read_csv(root / "run" / "predictions_test.csv")
    # every forecast is the one training mean, in original units, as the run's own test predictions are
    assert table["predicted"].nunique() == 1 and test["predicted"].nunique() == 1
    assert table["predicted"].iloc[0] == pytest.approx(test["predicted"].iloc[0], rel=1e-12)
