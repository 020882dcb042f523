"""Run plots: the learning curve, and the test-set plot that fits the run's task (`TEST_PLOTS`: a forecast over
time, predicted vs actual, or a confusion matrix). matplotlib loads only when a plot is drawn."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from dl_core.models.outputs import interval_pairs
from dl_core.task import Classification, Forecast, Regression, Task
from dl_core.task.forecast import quantile_column


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


# Each task's test plot: its file in the run directory, and how it is drawn from the task and its predictions.
TEST_PLOTS: dict[type, tuple[str, Callable[[Task, pd.DataFrame, Path], None]]] = {
    Forecast: ("forecast.png", lambda task, table, path: plot_forecast(table, path, task.outputs.levels)),
    Regression: ("predicted_vs_actual.png", lambda task, table, path: plot_predicted_vs_actual(table, path)),
    Classification: ("confusion_matrix.png", lambda task, table, path: plot_confusion_matrix(table, path)),
}


def plot_test(task: Task, table: pd.DataFrame, run_dir: Path) -> None:
    """The test plot that fits the task, from the test split's predictions table, into the run directory."""
    file, plot = TEST_PLOTS[type(task)]
    plot(task, table, run_dir / file)


def _figure(size: tuple[float, float]):
    """A figure drawn off-screen without pyplot: no global backend switch, so plotting in a
    notebook that also runs training keeps working."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    return fig, fig.subplots()
