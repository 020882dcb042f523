"""Forecast metrics per series, and the scale-free ones the forecasting literature compares series by.

Pooled MSE and MAE over a panel are dominated by its series of large values; the field reports each
series and averages scale-free figures across them:

- MASE (Hyndman & Koehler 2006): a series' mean absolute error over its forecasts divided by the in-sample
  mean absolute error of the seasonal naive forecast on its training part, mean |y[t] - y[t-m]| over
  t = m..n-1. Below 1, the forecast beats that naive one. A series whose training part has no such error
  (constant, or not longer than m) has no MASE (NaN), is left out of the mean and said so in the log.
- sMAPE as in the M4 competition: 200/h * sum |y - yhat| / (|y| + |yhat|), in percent (0 to 200). A term
  whose denominator is 0 (y = yhat = 0) is a perfect forecast and counts 0: M4's formula leaves it undefined.

Each is computed per series (and target) over all its forecasts of the split (every window, every step),
on original units; the pooled figure is the mean over series, as M4 averages over its series.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

COLUMNS = ["entity", "target", "n", "mse", "mae", "mase", "smape"]


def mase_scale(train: np.ndarray, m: int) -> float:
    """The in-sample mean absolute error of the seasonal naive forecast of lag `m` on a training part; NaN
    where it has none (not longer than `m`) or it is 0 (a series that repeats exactly with period m)."""
    train = np.asarray(train, np.float64)
    if train.size <= m:
        return float("nan")
    scale = float(np.mean(np.abs(train[m:] - train[:-m])))
    return scale if scale > 0 else float("nan")


def smape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """M4's sMAPE in percent; a term with |y| + |yhat| = 0 counts 0 (both are 0: a perfect forecast)."""
    actual, predicted = np.asarray(actual, np.float64), np.asarray(predicted, np.float64)
    denominator = np.abs(actual) + np.abs(predicted)
    terms = np.divide(np.abs(actual - predicted), denominator, out=np.zeros_like(denominator),
                      where=denominator > 0)
    return float(200.0 * terms.mean())


def per_series(table: pd.DataFrame, train: dict[str, np.ndarray], targets: list[str], m: int) -> pd.DataFrame:
    """One row per (series, target) of a predictions table (columns entity, target, actual, predicted): the
    number of forecasts n, their MSE, MAE, MASE and sMAPE. `train` holds each series' training part,
    (rows, targets), in original units."""
    known = table[table["actual"].notna()]
    rows = []
    for (entity, target), group in known.groupby(["entity", "target"], sort=False):
        error = (group["predicted"] - group["actual"]).to_numpy(np.float64)
        mae = float(np.mean(np.abs(error)))
        scale = mase_scale(train[entity][:, targets.index(target)], m)
        rows.append({"entity": entity, "target": target, "n": len(group), "mse": float(np.mean(error**2)),
                     "mae": mae, "mase": mae / scale, "smape": smape(group["actual"], group["predicted"])})
    return pd.DataFrame(rows, columns=COLUMNS)


def summary_names(split: str) -> list[str]:
    """The keys `summary` gives `split`, known before training (objective.metric is checked against them)."""
    return [f"{split}_n_series", f"{split}_seasonality",
            *(f"{split}_{name}{stat}" for name in ("mase", "smape") for stat in ("", "_median", "_max"))]


def summary(series: pd.DataFrame, split: str, m: int) -> dict[str, float | int | None]:
    """The pooled MASE and sMAPE (means over series) and their median and worst series, as metrics.json keys
    `<split>_mase`, ...; a mean with no series to average is null."""
    missing = series.loc[series["mase"].isna(), "entity"].tolist()
    if missing:
        log.warning("MASE: %d series have no in-sample seasonal naive error (m=%d) on their training part "
                    "(constant, or not longer than m), so no MASE, and are left out of %s_mase: %s",
                    len(missing), m, split, ", ".join(map(str, missing[:5])))
    out: dict[str, float | int | None] = {f"{split}_n_series": len(series), f"{split}_seasonality": m}
    for name in ("mase", "smape"):
        values = series[name].dropna()
        for stat, value in (("", values.mean()), ("_median", values.median()), ("_max", values.max())):
            out[f"{split}_{name}{stat}"] = None if values.empty else float(value)
    return out
