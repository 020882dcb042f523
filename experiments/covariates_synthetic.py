"""Covariates and intervals on the built-in series: the quantile LSTM with and without each covariate kind, and
point and distribution heads beside it, several seeds.

    python experiments/covariates_synthetic.py --readme

The data (`data=synthetic_covariates`) is the built-in series (trend, daily and weekly seasons, lagged
drivers, AR(1) noise) plus a weekend shift, planned events and a level per region, which only the calendar,
the `event` column known for the horizon and the `region` column foretell. Every run is
`train.py experiment=covariates_lstm seed=<s> hardware=cpu hardware.threads=1` plus the row's overrides
(conf/experiment/covariates_lstm.yaml: 4 series x 2000 hourly rows, look-back 24, horizon 6, LSTM 1x32 +
RevIN, quantiles 0.1/0.5/0.9), launched through experiments/common.py; finished runs are reused from
outputs/experiments/covariates_synthetic/. Without known-future covariates `event` is a past input (its
history only). Figures are in the target's own units, on the test split; MSE and MAE of quantile and
distribution rows are the median's. The coverage by step is counted from each run's predictions_test.csv.
--smoke trains one epoch of each row on one seed into a study of its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

import dl_core
from common import Run, launch_study, markdown_table, publish, spread, study_arguments
from dl_core.data.synthetic import AR_PHI

STUDY = "covariates_synthetic"
NO_FUTURE = ["data.future_covariates=[]", "data.calendar_features=[]"]
NO_STATIC = ["data.static_columns=[]"]
POINT = ["model.quantiles=null"]
# name -> (extra overrides, covariates label, outputs label).
ROWS = {
    "none": ([*NO_FUTURE, *NO_STATIC], "none", "quantiles"),
    "future": (NO_STATIC, "known-future (event, calendar)", "quantiles"),
    "static": (NO_FUTURE, "static (region)", "quantiles"),
    "both": ([], "known-future + static", "quantiles"),
    "normal": (["model.distribution=normal"], "known-future + static", "normal"),
    "student_t": (["model.distribution=student_t"], "known-future + static", "student-t"),
    "point_none": ([*NO_FUTURE, *NO_STATIC, *POINT], "none", "point"),
    "point_both": (POINT, "known-future + static", "point"),
}
COVERAGE = (0.75, 0.85)  # what the 80 % interval of the quantile LSTM must cover of the test targets


def overrides(row: str, seed: int) -> list[str]:
    return ["experiment=covariates_lstm", f"seed={seed}", "hardware=cpu", "hardware.threads=1",
            "trainer.progress_bar=false", *ROWS[row][0]]


def coverage_by_step(run: Run) -> np.ndarray:
    """Share of test targets inside the 0.1-0.9 interval at each step of the horizon."""
    table = pd.read_csv(run.run_dir / "predictions_test.csv")
    inside = (table["actual"] >= table["q0.1"]) & (table["actual"] <= table["q0.9"])
    return inside.groupby(table["step"]).mean().to_numpy()


def cell(runs: list[dict], key: str, digits: int = 3) -> str:
    return f"{spread(m[key] for m in runs):.{digits}f}" if all(key in m for m in runs) else "–"


def table(found: dict[str, list[tuple[Run, dict]]]) -> str:
    rows = []
    for row, done in found.items():
        metrics = [m for _, m in done]
        quantiles = "test_coverage_80" in metrics[0]
        steps = np.mean([coverage_by_step(run) for run, _ in done], axis=0) if quantiles else None
        rows.append([ROWS[row][1], ROWS[row][2], len(done), cell(metrics, "test_mse"), cell(metrics, "test_mae"),
                     cell(metrics, "test_crps"), cell(metrics, "test_coverage_80"),
                     "–" if steps is None else f"{steps[0]:.3f} / {steps[-1]:.3f}", cell(metrics, "test_width_80")])
    return markdown_table(["covariates", "outputs", "seeds", "test MSE", "test MAE", "test CRPS", "80% coverage",
                           "coverage step 1 / 6", "80% width"], rows)


def comparisons(found: dict[str, list[tuple[Run, dict]]]) -> str:
    """The two claims the table is for, seed by seed; and the floor the noise alone sets."""
    lines = []
    by_seed = {row: [m for _, m in done] for row, done in found.items()}
    for row in ("future", "static", "both"):
        if row in by_seed and "none" in by_seed:
            ours, base = [m["test_mse"] for m in by_seed[row]], [m["test_mse"] for m in by_seed["none"]]
            wins = sum(a < b for a, b in zip(ours, base, strict=False))
            lines.append(f"- quantile LSTM with {ROWS[row][1]} vs none: test MSE {np.mean(ours):.3f} vs "
                         f"{np.mean(base):.3f} ({100 * (np.mean(ours) / np.mean(base) - 1):+.1f}%), lower in "
                         f"{wins} of {min(len(ours), len(base))} seeds")
    for row in ("none", "future", "both"):
        if row in by_seed:
            covered = [m["test_coverage_80"] for m in by_seed[row]]
            inside = all(COVERAGE[0] <= c <= COVERAGE[1] for c in covered)
            lines.append(f"- 80% interval of the quantile LSTM ({ROWS[row][1]}): covers "
                         f"{', '.join(f'{c:.3f}' for c in covered)} of the test targets by seed: "
                         f"{'all' if inside else 'not all'} within {COVERAGE[0]:.2f}-{COVERAGE[1]:.2f}")
    noise = float(dl_core.compose(*overrides("both", 0)).data.generator.noise)
    width = 2 * norm.ppf(0.9) * noise
    lines.append(f"- the noise alone (AR(1), phi {AR_PHI}, shocks of std {noise}): an 80% interval one step ahead "
                 f"is {width:.3f} wide, {width / np.sqrt(1 - AR_PHI**2):.3f} for a step far ahead")
    return "\n".join(lines)


def main() -> None:
    parser = study_arguments(__doc__)
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    args = parser.parse_args()
    found = launch_study(STUDY, args.rows, overrides, args)
    publish(STUDY, f"{table(found)}\n\n{comparisons(found)}", args)


if __name__ == "__main__":
    main()
