"""Model outputs on new rows, as frames in original units: forecasts per window, or one row per input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from dl_core.data.tabular import output_probabilities
from dl_core.data.timeseries import TimeSeriesPreprocessor, forecast_table, inference_windows
from dl_core.serving.inputs import InputError


@torch.no_grad()
def batched(model: nn.Module, inputs: tuple[torch.Tensor, ...], batch_size: int) -> np.ndarray:
    """Model outputs for all samples in fixed-size chunks, so the same rows always meet the same batches."""
    n = inputs[0].shape[0]
    return torch.cat([model(*(t[i:i + batch_size] for t in inputs)).float()
                      for i in range(0, n, batch_size)]).numpy()


def forecast(model: nn.Module, prep: TimeSeriesPreprocessor, rows: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    """One row per (window, step, target), the layout of a run's predictions_test.csv.

    Windows are every complete window of each series plus its last one, whose targets lie beyond
    the series' last row: those rows have no `actual`, and a timestamp extrapolated by the
    series' last time step.
    """
    with np.errstate(over="ignore"):  # refused by column just below
        x, y = prep.transform(rows)
    _check_in_range(x, prep.feature_columns)
    _check_in_range(y, prep.target_columns)
    starts, ends = inference_windows(rows, prep)
    length, horizon = prep.sequence_length, prep.horizon
    windows = torch.from_numpy(x)[torch.from_numpy(starts)[:, None] + torch.arange(length)]
    predicted = prep.inverse_target(batched(model, (windows,), batch_size))
    target_rows = starts[:, None] + length + np.arange(horizon)
    known = target_rows < ends[:, None]
    actual = prep.inverse_target(y[np.where(known, target_rows, 0)])
    actual[~known] = np.nan
    times = _target_times(rows, prep, target_rows, ends)
    return forecast_table(times, prep.entity_labels(rows)[starts], prep.target_columns, actual, predicted)


def _check_in_range(values: np.ndarray, columns: list[str]) -> None:
    """A finite request value can still overflow float32 once scaled (1e39, say) and reach the model as infinity."""
    bad = [name for name, finite in zip(columns, np.isfinite(values).all(axis=0)) if not finite]
    if bad:
        raise InputError((), f"column(s) {bad} hold values too large for the model (beyond float32 once "
                             f"scaled); send values of the magnitude the run was trained on")


def _target_times(rows: pd.DataFrame, prep: TimeSeriesPreprocessor, target_rows: np.ndarray,
                  ends: np.ndarray) -> np.ndarray:
    """Timestamps of target rows; past a series' end, its last timestamp plus k times its last step."""
    stamps = rows[prep.timestamp_column] if prep.timestamp_column else pd.Series(np.arange(len(rows)))
    last = stamps.iloc[ends - 1].to_numpy()
    previous = stamps.iloc[np.maximum(ends - 2, 0)].to_numpy()
    beyond = target_rows - (ends[:, None] - 1)
    future = last[:, None] + beyond * (last - previous)[:, None]
    return np.where(beyond > 0, future, stamps.to_numpy()[np.minimum(target_rows, ends[:, None] - 1)])


def tabular(model: nn.Module, prep: Any, frame: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    """One row per input row: the prediction, and for classification the probability of each class."""
    with np.errstate(over="ignore"):  # refused by column just below
        x_num, x_cat = prep.transform_features(frame)
    _check_in_range(x_num, prep.numeric_columns)
    inputs = (torch.tensor(x_num, dtype=torch.float32), torch.tensor(x_cat, dtype=torch.int64))
    outputs = batched(model, inputs, batch_size)
    if prep.task == "regression":
        return pd.DataFrame({"predicted": np.asarray(prep.inverse_target(outputs)).reshape(-1)})
    probabilities = output_probabilities(outputs)
    result = pd.DataFrame({"predicted": np.asarray(prep.classes, dtype=object)[probabilities.argmax(axis=1)]})
    for k, label in enumerate(prep.classes):
        result[f"prob_{label}"] = probabilities[:, k].astype(np.float64)
    return result
