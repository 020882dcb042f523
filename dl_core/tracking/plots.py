"""Run plots: the learning curve, and the test-set plot that fits the run's task (`TEST_PLOTS`: a forecast over
time, predicted vs actual, or a confusion matrix); a forecast's besides: chosen series over their whole horizon
(`logger.plot_series`). matplotlib loads only when a plot is drawn."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dl_core.data.bundle import DataBundle
from dl_core.errors import ConfigError
from dl_core.models.outputs import interval_pairs
from dl_core.task import Classification, Forecast, Regression, Task
from dl_core.task.base import quantile_column


def plot_predicted_vs_actual(predictions: pd.DataFrame, path: Path) -> None:
    """Scatter of predicted against actual with the identity line: bias and spread at a glance."""
    fig, ax = _figure((5, 5))
    ax.scatter(predictions["actual"], predictions["predicted"], s=4, alpha=0.4)
    low = min(predictions["actual"].min(), predictions["predicted"].min())
    high = max(predictions["actual"].max(), predictions["predicted"].max())
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="actual", ylabel="predicted", title="Test: predicted vs actual")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# Classes a confusion matrix draws one by one. It writes each cell's count, and drawing text dominates: 50
# classes (2,500 texts) took 2.7 s, 150 classes 21.7 s, 1,000 would take some 15 minutes. Beyond this many, the
# most frequent classes and one "other" row and column: at most 400 cells, under a second.
MAX_CLASSES = 20


def plot_confusion_matrix(predictions: pd.DataFrame, path: Path) -> None:
    confusion_figure(predictions).savefig(path, dpi=110)


def confusion_figure(predictions: pd.DataFrame, max_classes: int = MAX_CLASSES):
    """Counts of actual (rows) against predicted (columns) classes, each cell with its count. With more than
    `max_classes` classes, the `max_classes - 1` most frequent actual ones (in class order) and the rest
    together as "other", so the figure stays bounded and every row is still counted."""
    from sklearn.metrics import ConfusionMatrixDisplay

    labels = [c.removeprefix("prob_") for c in predictions.columns if c.startswith("prob_")]
    actual, predicted = predictions["actual"].astype(str), predictions["predicted"].astype(str)
    title = "Test: confusion matrix"
    if len(labels) > max_classes:
        counts = actual.value_counts().reindex(labels, fill_value=0)
        top = set(counts.sort_values(ascending=False, kind="stable").index[:max_classes - 1])
        kept = [label for label in labels if label in top]
        other = f"other ({len(labels) - len(kept)})"
        actual, predicted = actual.where(actual.isin(top), other), predicted.where(predicted.isin(top), other)
        title = f"Test: confusion matrix, the {len(kept)} most frequent of {len(labels)} classes"
        labels = [*kept, other]
    side = min(max(5.0, 0.35 * len(labels)), 9.0)
    fig, ax = _figure((side, side))
    ConfusionMatrixDisplay.from_predictions(actual, predicted, labels=labels, ax=ax, colorbar=False,
                                            xticks_rotation="vertical")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_learning_curve(history: list[dict[str, float]], best_epoch: int, path: Path) -> None:
    frame = pd.DataFrame(history)
    fig, ax = _figure((7, 4))
    ax.plot(frame["epoch"], frame["train_loss"], label="train")
    ax.plot(frame["epoch"], frame["val_loss"], label="validation")
    ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=f"best (epoch {best_epoch})")
    ax.set(xlabel="epoch", ylabel="loss", title="Learning curve")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_forecast(predictions: pd.DataFrame, path: Path, levels: Sequence[float] = (), max_points: int = 500) -> None:
    forecast_figure(predictions, levels, max_points).savefig(path, dpi=110)


def forecast_figure(predictions: pd.DataFrame, levels: Sequence[float] = (), max_points: int = 500):
    """First entity, first target, one-step-ahead: actual against predicted over the test period, and each
    central interval of the quantile `levels` (the columns `q0.1` with `q0.9`, ...) as a band, the widest
    palest."""
    first = predictions[(predictions["entity"] == predictions["entity"].iloc[0])
                        & (predictions["target"] == predictions["target"].iloc[0])
                        & (predictions["step"] == 1)].tail(max_points)
    fig, ax = _figure((10, 4))
    for low, high, coverage in interval_pairs(tuple(levels)):
        lower, upper = quantile_column(levels[low]), quantile_column(levels[high])
        ax.fill_between(first["timestamp"], first[lower], first[upper], color="tab:orange",
                        alpha=0.5 * (1.1 - coverage), linewidth=0, label=f"{100 * coverage:.4g}% interval")
    ax.plot(first["timestamp"], first["actual"], label="actual", linewidth=1.2)
    ax.plot(first["timestamp"], first["predicted"], label="predicted", linewidth=1.2)
    ax.set(title=f"Test forecast: {first['target'].iloc[0]} ({first['entity'].iloc[0]}), 1 step ahead",
           xlabel="time", ylabel=str(first["target"].iloc[0]))
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


# Series drawn in forecast_series.png when logger.plot_series is null: the test split's first ones.
DEFAULT_SERIES = 4


def plot_series_forecasts(predictions: pd.DataFrame, series: Sequence[str], path: Path,
                          levels: Sequence[float] = (), max_points: int = 500) -> None:
    series_forecast_figure(predictions, series, levels, max_points).savefig(path, dpi=110)


def series_forecast_figure(predictions: pd.DataFrame, series: Sequence[str], levels: Sequence[float] = (),
                           max_points: int = 500):
    """One panel per series (its first target) over the test period: the actual values, and the forecasts over
    their whole horizon of every horizon-th window, counted back from the last, so that they tile the period
    (one step ahead when the horizon is 1); each central interval of the quantile `levels` as a band."""
    target = predictions["target"].iloc[0]
    fig = _grid(len(series))
    for ax, entity in zip(fig.axes, series, strict=True):
        rows = predictions[(predictions["entity"] == entity) & (predictions["target"] == target)]
        window = np.cumsum(rows["step"].to_numpy() == 1) - 1
        horizon = int(rows["step"].max())
        tiled = rows[(window[-1] - window) % horizon == 0].tail(max_points)
        truth = rows[["timestamp", "actual"]].drop_duplicates("timestamp").sort_values("timestamp")
        truth = truth[truth["timestamp"] >= tiled["timestamp"].iloc[0]]
        for low, high, coverage in interval_pairs(tuple(levels)):
            lower, upper = quantile_column(levels[low]), quantile_column(levels[high])
            ax.fill_between(tiled["timestamp"], tiled[lower], tiled[upper], color="tab:orange",
                            alpha=0.5 * (1.1 - coverage), linewidth=0, label=f"{100 * coverage:.4g}% interval")
        ax.plot(truth["timestamp"], truth["actual"], label="actual", linewidth=1.2)
        ax.plot(tiled["timestamp"], tiled["predicted"], label=f"predicted, {horizon} step(s) from each origin",
                linewidth=1.2)
        ax.set(title=f"{target} ({entity})", ylabel=str(target))
    fig.axes[0].legend()
    fig.axes[-1].set_xlabel("time")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def chosen_series(names: Sequence[object] | None, bundle: DataBundle) -> list[str]:
    """The series that forecast_series.png draws: `logger.plot_series`, each a series of the test split
    (refused by name otherwise), or the first `DEFAULT_SERIES` of it; none for a table."""
    if not isinstance(bundle.task, Forecast):
        if names is not None:
            raise ConfigError("logger.plot_series: names series of a forecast, and this run's data is a table; "
                              "leave it null")
        return []
    available = list(dict.fromkeys(bundle.splits["test"].window_series()))
    if names is None:
        return available[:DEFAULT_SERIES]
    unknown = [str(name) for name in names if str(name) not in available]
    if unknown or not names:
        shown = ", ".join(available[:10]) + (", ..." if len(available) > 10 else "")
        problem = f"series {unknown[0]!r} is not in the test split" if unknown else "names no series"
        raise ConfigError(f"logger.plot_series: {problem}; name some of {shown}, or null for the first "
                          f"{DEFAULT_SERIES}")
    return [str(name) for name in names]


# Each task's test plot: its file in the run directory, and how it is drawn from the task and its predictions.
TEST_PLOTS: dict[type, tuple[str, Callable[[Task, pd.DataFrame, Path], None]]] = {
    Forecast: ("forecast.png", lambda task, table, path: plot_forecast(table, path, task.outputs.levels)),
    Regression: ("predicted_vs_actual.png", lambda task, table, path: plot_predicted_vs_actual(table, path)),
    Classification: ("confusion_matrix.png", lambda task, table, path: plot_confusion_matrix(table, path)),
}


def plot_test(task: Task, table: pd.DataFrame, run_dir: Path, series: Sequence[str] = ()) -> None:
    """The test plot that fits the task, from the test split's predictions table, into the run directory; for
    a forecast, besides, the `series` chosen (`chosen_series`) over their whole horizon."""
    file, plot = TEST_PLOTS[type(task)]
    plot(task, table, run_dir / file)
    if isinstance(task, Forecast) and series:
        plot_series_forecasts(table, series, run_dir / "forecast_series.png", task.outputs.levels)


def _grid(n_panels: int):
    """A figure of `n_panels` panels one under the other, sharing the time axis (see `_figure`)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 1.0 + 2.6 * n_panels))
    fig.subplots(n_panels, 1, sharex=True, squeeze=False)
    return fig


def _figure(size: tuple[float, float]):
    """A figure drawn off-screen without pyplot: no global backend switch, so plotting in a
    notebook that also runs training keeps working."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    return fig, fig.subplots()
