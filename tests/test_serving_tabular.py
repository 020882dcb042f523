"""The tabular prediction path against the tabular preprocessor's contract (task, target_column,
numeric/categorical columns, classes, transform_features, inverse_target).

The real tabular preprocessor and FT-Transformer are built in parallel; until they are merged a
small stand-in that honours the same contract drives the serving code, which is what is tested.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from dl_core.serving.inputs import InputError
from dl_core.serving.load import LoadedRun


@dataclass
class ContractPreprocessor:
    task: str
    classes: list[str] = field(default_factory=list)
    target_column: str = "y"
    numeric_columns: list[str] = field(default_factory=lambda: ["a", "b"])
    categorical_columns: list[str] = field(default_factory=lambda: ["color"])

    def transform_features(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        codes = {"red": 0, "green": 1, "blue": 2}
        x_cat = frame[self.categorical_columns].map(lambda v: codes[str(v)]).to_numpy(np.int64)
        return frame[self.numeric_columns].to_numpy(np.float32) / 10, x_cat

    def inverse_target(self, y: np.ndarray) -> np.ndarray:
        return y * 100.0 + 5.0


class TinyTabular(nn.Module):
    def __init__(self, d_out: int):
        super().__init__()
        torch.manual_seed(0)
        self.num = nn.Linear(2, d_out)
        self.cat = nn.Embedding(3, d_out)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return self.num(x_num) + self.cat(x_cat[:, 0])


def loaded(task: str, classes: list[str], d_out: int) -> LoadedRun:
    return LoadedRun(Path("."), TinyTabular(d_out).eval(), ContractPreprocessor(task, classes), task, {},
                     {"trainer": {"eval_batch_size": 2}, "model": {}}, {})


FRAME = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.5, -1.0, 4.0], "color": ["red", "blue", "green"]})


def test_regression_gives_one_prediction_per_row_in_original_units() -> None:
    run = loaded("regression", [], 1)
    out = run.predict(FRAME)
    x_num, x_cat = run.preprocessor.transform_features(FRAME)
    with torch.no_grad():
        expected = run.model(torch.tensor(x_num), torch.tensor(x_cat)).numpy().ravel() * 100 + 5
    assert list(out.columns) == ["predicted"]
    np.testing.assert_allclose(out["predicted"], expected, rtol=1e-6)


def test_classification_gives_label_and_class_probabilities() -> None:
    out = loaded("classification", ["low", "mid", "high"], 3).predict(FRAME)
    probabilities = out[["probability_low", "probability_mid", "probability_high"]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert list(out["predicted"]) == [["low", "mid", "high"][k] for k in probabilities.argmax(axis=1)]


def test_tabular_rows_are_checked_by_column() -> None:
    run = loaded("regression", [], 1)
    assert run.metadata()["features"] == [{"name": "a", "type": "number", "nullable": False},
                                          {"name": "b", "type": "number", "nullable": False},
                                          {"name": "color", "type": "string|integer", "nullable": False}]
    with pytest.raises(InputError, match=r"rows\[1\]\['color'\]"):
        run.predict(FRAME.assign(color=["red", 2.5, "blue"]))
    with pytest.raises(InputError, match=r"\['b'\] missing"):
        run.predict(FRAME.drop(columns="b"))
