"""Built-in table with numeric and categorical features, so the tabular path trains with no download.

The target is a smooth nonlinear function of the numeric features plus a per-category effect of
each categorical feature, so a model must use both kinds of input to do well. One numeric feature
is log-normal (skewed, which a quantile transform handles) and a few values are missing in one
numeric and one categorical column, so imputation and the reserved category index are exercised.
Classification labels are the latent score cut at its quantiles: balanced classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dl_core.data.synthetic import SyntheticConfig
from dl_core.errors import require_at_least

MISSING_FRACTION = 0.02


def generate_table(n_rows: int, n_numeric: int, n_categorical: int, n_categories: int, n_classes: int | None,
                   noise: float, seed: int) -> pd.DataFrame:
    """Columns num_0..num_k, cat_0..cat_m (strings), target (float, or `class_i` labels when `n_classes`
    is given)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_rows, n_numeric))
    weights = rng.uniform(0.5, 1.5, n_numeric) * rng.choice([-1.0, 1.0], n_numeric)
    latent = x @ weights / np.sqrt(n_numeric) + np.sin(2.0 * x[:, 0])
    if n_numeric > 1:
        latent += 0.5 * x[:, 0] * x[:, 1]
    frame = pd.DataFrame({f"num_{i}": x[:, i] for i in range(n_numeric)})
    frame["num_0"] = np.exp(x[:, 0])
    for j in range(n_categorical):
        codes = rng.integers(0, n_categories, n_rows)
        latent += rng.normal(0.0, 1.0, n_categories)[codes]
        frame[f"cat_{j}"] = np.array([f"level_{c}" for c in range(n_categories)], dtype=object)[codes]
    latent += noise * rng.standard_normal(n_rows)
    if n_classes is not None:
        edges = np.quantile(latent, np.linspace(0, 1, n_classes + 1)[1:-1])
        frame["target"] = np.array([f"class_{k}" for k in range(n_classes)], dtype=object)[np.digitize(latent, edges)]
    else:
        frame["target"] = 10.0 * latent + 50.0
    _blank(frame, "num_1" if n_numeric > 1 else "num_0", rng)
    if n_categorical:
        _blank(frame, "cat_0", rng)
    return frame


def _blank(frame: pd.DataFrame, column: str, rng: np.random.Generator) -> None:
    rows = rng.random(len(frame)) < MISSING_FRACTION
    frame.loc[rows, column] = None


@dataclass
class TabularGeneratorConfig(SyntheticConfig):
    """Parameters of the built-in synthetic table (data=synthetic_tabular).

    Attributes:
        n_rows: number of rows.
        n_numeric: numeric feature columns (`num_*`, a few values missing).
        n_categorical: categorical feature columns (`cat_*`).
        n_categories: distinct values per categorical column.
        n_classes: classes of the target when `data.task=classification`.
    """

    noise: float = 0.1
    n_rows: int = 3000
    n_numeric: int = 6
    n_categorical: int = 2
    n_categories: int = 5
    n_classes: int = 3

    def validate(self, prefix: str) -> None:
        require_at_least(self, prefix, n_rows=50, n_numeric=1, n_categorical=0, n_categories=2, n_classes=2)
        super().validate(prefix)
