"""The test-set plot for each task: forecast over time, predicted vs actual, or a confusion matrix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dl_core.tracking.files import plot_forecast


def plot_test_predictions(task: str, predictions: pd.DataFrame, run_dir: Path) -> Path:
    """Draw the plot that fits `task` from the predictions frame into `run_dir`; return its path."""
    if task == "forecast":
        path = run_dir / "forecast.png"
        plot_forecast(predictions, path)
    elif task == "regression":
        path = run_dir / "predicted_vs_actual.png"
        plot_predicted_vs_actual(predictions, path)
    else:
        path = run_dir / "confusion_matrix.png"
        plot_confusion_matrix(predictions, path)
    return path


def plot_predicted_vs_actual(predictions: pd.DataFrame, path: Path) -> None:
    """Scatter of predicted against actual with the identity line: bias and spread at a glance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(predictions["actual"], predictions["predicted"], s=4, alpha=0.4)
    low = min(predictions["actual"].min(), predictions["predicted"].min())
    high = max(predictions["actual"].max(), predictions["predicted"].max())
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="actual", ylabel="predicted", title="Test: predicted vs actual")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion_matrix(predictions: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    labels = [c.removeprefix("prob_") for c in predictions.columns if c.startswith("prob_")]
    fig, ax = plt.subplots(figsize=(5, 5))
    ConfusionMatrixDisplay.from_predictions(predictions["actual"], predictions["predicted"], labels=labels,
                                            ax=ax, colorbar=False)
    ax.set_title("Test: confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
