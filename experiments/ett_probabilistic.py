"""Quantile forecasts on ETTh1, univariate (mode S, OT), horizon 96: point models beside quantile ones, with and
without calendar features, several seeds.

    python experiments/ett_probabilistic.py --readme

Each run is `train.py experiment=ett_<model> data.name=ETTh1 data.features=S seed=<s> hardware=cpu
hardware.threads=1` plus the row's overrides (the presets in conf/experiment/), launched through the dl_core
API by experiments/common.py: a finished run is reused from outputs/experiments/ett_probabilistic/. The
quantile rows forecast the 0.1, 0.5 and 0.9 quantiles (pinball loss); their MSE/MAE are the median's, so they
compare with the point rows directly. Calendar rows add hour of day, day of week and month, derived from the
timestamps (known for any horizon) and read by the LSTM's decoder over the horizon; PatchTST reads the past of
OT alone (it takes no covariates), so its rows have none, and its preset's 100 epochs (patience 10) are capped
at 30 (`trainer.max_epochs=30`) to bound the CPU time. All figures are on the
standardised target (the ETT protocol): test MSE, MAE, the CRPS estimated over the three quantiles, and the
coverage and mean width of the 80 % interval (0.1 to 0.9). --smoke trains one epoch of each row on one seed
into a study of its own.
"""

from __future__ import annotations

import dl_core
from common import launch_study, markdown_table, publish, spread, study_arguments

STUDY = "ett_probabilistic"
QUANTILES = "model.quantiles=[0.1,0.5,0.9]"
CALENDAR = "data.calendar_features=[hour,dayofweek,month]"
REVIN = "model.instance_norm=true"
EPOCHS_30 = "trainer.max_epochs=30"
# name -> (preset, extra overrides, label in the table).
MODELS = {
    "dlinear": ("ett_dlinear", [], "DLinear, point"),
    "dlinear_q": ("ett_dlinear", [QUANTILES], "DLinear, quantiles"),
    "lstm": ("ett_lstm", [REVIN], "LSTM 2x64 + RevIN, point"),
    "lstm_q": ("ett_lstm", [REVIN, QUANTILES], "LSTM 2x64 + RevIN, quantiles"),
    "lstm_q_calendar": ("ett_lstm", [REVIN, QUANTILES, CALENDAR], "LSTM 2x64 + RevIN, quantiles, calendar"),
    "patchtst": ("ett_patchtst", [EPOCHS_30], "PatchTST/42, point"),
    "patchtst_q": ("ett_patchtst", [EPOCHS_30, QUANTILES], "PatchTST/42, quantiles"),
}


def overrides(model: str, seed: int) -> list[str]:
    preset, extra, _ = MODELS[model]
    return [f"experiment={preset}", "data.name=ETTh1", "data.features=S", f"seed={seed}", "hardware=cpu",
            "hardware.threads=1", "trainer.progress_bar=false", *extra]


def lookback(model: str) -> int:
    return int(dl_core.compose(*overrides(model, 0)).data.sequence_length)


def cell(runs: list[dict], key: str, digits: int = 3) -> str:
    """mean ± std of a metric over seeds, or – where the runs have none (point forecasts have no quantiles)."""
    if not all(key in m for m in runs):
        return "–"
    return f"{spread(m[key] for m in runs):.{digits}f}"


def table(found: dict[str, list[dict]]) -> str:
    rows = []
    for model, runs in found.items():
        epochs = spread(m["epochs"] for m in runs).mean, spread(m["best_epoch"] for m in runs).mean
        rows.append([MODELS[model][2], lookback(model), len(runs), cell(runs, "test_mse_scaled"),
                     cell(runs, "test_mae_scaled"), cell(runs, "test_crps_scaled"), cell(runs, "test_coverage_80"),
                     cell(runs, "test_width_80_scaled"), f"{epochs[0]:.1f} ({epochs[1]:.1f})"])
    return markdown_table(["model (ETTh1 S, H=96)", "look-back", "seeds", "test MSE", "test MAE", "test CRPS",
                           "80% coverage", "80% width", "epochs (best)"], rows)


def comparisons(found: dict[str, list[dict]]) -> str:
    """The median against the point forecast of the same model, and what the calendar adds."""

    def mean(model: str, key: str) -> float | None:
        runs = found.get(model)
        return spread(m[key] for m in runs).mean if runs and all(key in m for m in runs) else None

    lines = []
    for point, probabilistic in (("dlinear", "dlinear_q"), ("lstm", "lstm_q"), ("lstm", "lstm_q_calendar"),
                                 ("patchtst", "patchtst_q")):
        a, b = mean(point, "test_mse_scaled"), mean(probabilistic, "test_mse_scaled")
        if a is not None and b is not None:
            lines.append(f"- {MODELS[probabilistic][2]}: median MSE {b:.4f} vs the point model's {a:.4f} "
                         f"({100 * (b / a - 1):+.1f}%)")
    a, b = mean("lstm_q", "test_crps_scaled"), mean("lstm_q_calendar", "test_crps_scaled")
    if a is not None and b is not None:
        lines.append(f"- calendar features: LSTM CRPS {b:.4f} with vs {a:.4f} without ({100 * (b / a - 1):+.1f}%)")
    return "\n".join(lines)


def main() -> None:
    parser = study_arguments(__doc__)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    args = parser.parse_args()
    found = {model: [metrics for _, metrics in done]
             for model, done in launch_study(STUDY, args.models, overrides, args).items()}
    publish(STUDY, f"{table(found)}\n\n{comparisons(found)}", args)


if __name__ == "__main__":
    main()
