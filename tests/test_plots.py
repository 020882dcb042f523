"""Run plots stay bounded: a confusion matrix draws at most MAX_CLASSES rows and columns however many classes a
run has (the time of a drawing grows with its texts, one per cell: their number is what is asserted). A forecast's
chosen series are drawn one panel each over the whole horizon, with their intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dl_core.errors import ConfigError
from dl_core.runs.pipeline import train
from dl_core.tracking.plots import MAX_CLASSES, confusion_figure, series_forecast_figure
from helpers import TINY


def classified(n_classes: int, n_rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    """A predictions table of a classification run: actual, predicted and one probability column per class, the
    classes drawn with unequal frequencies (class k about twice as often as class k + n/2)."""
    rng = np.random.default_rng(seed)
    labels = np.array([f"class_{k}" for k in range(n_classes)])
    weights = np.linspace(2.0, 1.0, n_classes)
    actual = rng.choice(labels, n_rows, p=weights / weights.sum())
    predicted = np.where(rng.random(n_rows) < 0.7, actual, rng.choice(labels, n_rows))
    return pd.DataFrame({"actual": actual, "predicted": predicted, **{f"prob_{label}": 0.0 for label in labels}})


def matrix(fig) -> tuple[list[str], np.ndarray, int]:
    """The drawn row labels, the counts of the drawn matrix and how many texts its cells carry."""
    ax = fig.axes[0]
    return [tick.get_text() for tick in ax.get_yticklabels()], np.asarray(ax.images[0].get_array()), len(ax.texts)


def test_a_thousand_classes_draw_the_most_frequent_and_other_in_a_bounded_figure():
    """1,000 classes drew a million cell texts (about 15 minutes); now MAX_CLASSES x MAX_CLASSES cells."""
    table = classified(1000, n_rows=10_000)
    labels, counts, texts = matrix(confusion_figure(table))
    assert texts == counts.size == MAX_CLASSES ** 2
    assert labels[-1] == f"other ({1000 - (MAX_CLASSES - 1)})"
    frequency = table["actual"].value_counts()
    assert frequency[labels[:-1]].min() >= frequency.drop(labels[:-1]).max()  # the most frequent are kept
    assert labels[:-1] == sorted(labels[:-1], key=lambda label: int(label.removeprefix("class_")))  # class order
    assert counts.sum() == len(table)  # every row counted, the rest under "other"
    kept = table["actual"].isin(labels[:-1]) & table["predicted"].isin(labels[:-1])
    assert np.trace(counts[:-1, :-1]) == (kept & (table["actual"] == table["predicted"])).sum()


def test_up_to_max_classes_every_class_is_drawn_with_its_count():
    table = classified(MAX_CLASSES)
    labels, counts, texts = matrix(confusion_figure(table))
    assert labels == [f"class_{k}" for k in range(MAX_CLASSES)] and texts == MAX_CLASSES ** 2
    expected = pd.crosstab(table["actual"], table["predicted"]).reindex(index=labels, columns=labels, fill_value=0)
    np.testing.assert_array_equal(counts, expected.to_numpy())


def forecasts(entities: list[str], windows: int, horizon: int) -> pd.DataFrame:
    """A predictions table of quantile forecasts: per series `windows` windows of `horizon` steps, hourly."""
    rows = []
    for entity in entities:
        for window in range(windows):
            for step in range(1, horizon + 1):
                value = float(window + step)
                rows.append({"timestamp": pd.Timestamp("2024-01-01") + pd.Timedelta(hours=window + step),
                             "entity": entity, "step": step, "target": "y", "actual": value, "predicted": value,
                             "q0.1": value - 1, "q0.5": value, "q0.9": value + 1})
    return pd.DataFrame(rows)


def test_each_chosen_series_gets_a_panel_of_whole_horizons_tiled_with_its_interval_band():
    table = forecasts(["a", "b", "c"], windows=10, horizon=4)
    fig = series_forecast_figure(table, ["c", "a"], levels=(0.1, 0.5, 0.9))
    assert [ax.get_title() for ax in fig.axes] == ["y (c)", "y (a)"]
    for ax in fig.axes:
        assert len(ax.collections) == 1  # the 80% band
        actual, predicted = ax.get_lines()
        # windows 9, 5 and 1 (every 4th counted back from the last): 3 whole horizons of 4 steps, hours 2 to 13,
        # and the actual values over those hours
        assert len(predicted.get_xdata()) == 12
        np.testing.assert_array_equal(actual.get_xdata(), predicted.get_xdata())


def test_a_series_to_plot_that_the_test_split_lacks_is_refused_before_training(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"^logger.plot_series: series 's9' is not in the test split; name some "
                                          r"of s0, s1"):
        train(make_cfg(*TINY, "logger.plot_series=[s1,s9]"))
    assert not (tmp_path / "run" / "metrics.json").exists()
