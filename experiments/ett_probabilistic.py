"""Quantile forecasts on ETTh1, univariate (mode S, OT), horizon 96: point models beside quantile ones, with and
without calendar features, several seeds.

    python experiments/ett_probabilistic.py --readme

Each run is `train.py experiment=ett_<model> data.name=ETTh1 data.features=S seed=<s> hardware=cpu
hardware.threads=1` plus the row's overrides (the presets in conf/experiment/), launched through the dl_core
API by experiments/common.py: a finished run is reused from outputs/experiments/ett_probabilistic/. The
quantile rows forecast the 0.1, 0.5 and 0.9 quantiles (pinball loss); their MSE/MAE are the median's, so they
compare with the point rows directly. Calendar rows add hour of day, day of week and month, derived from the
timestamps (known for any horizon) and read by the LSTM's decoder over the horizon. All figures are on the
standardised target (the ETT protocol): test MSE, MAE, the CRPS estimated over the three quantiles, and the
coverage and mean width of the 80 % interval (0.1 to 0.9). --smoke trains one epoch of each row on one seed
into a study of its own.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import dl_core
from common import README, Run, launch_all, markdown_table, spread, write_section

STUDY = "ett_probabilistic"
QUANTILES = "model.quantiles=[0.1,0.5,0.9]"
CALENDAR = "data.calendar_features=[hour,dayofweek,month]"
REVIN = "model.instance_norm=true"
# name -> (preset, extra overrides, label in the table).
MODELS = {
    "dlinear": ("ett_dlinear", [], "DLinear, point"),
    "dlinear_q": ("ett_dlinear", [QUANTILES], "DLinear, quantiles"),
    "lstm": ("ett_lstm", [REVIN], "LSTM 2x64 + RevIN, point"),
    "lstm_q": ("ett_lstm", [REVIN, QUANTILES], "LSTM 2x64 + RevIN, quantiles"),
    "lstm_q_calendar": ("ett_lstm", [REVIN, QUANTILES, CALENDAR], "LSTM 2x64 + RevIN, quantiles, calendar"),
}
SMOKE = ["trainer.max_epochs=1"]


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
        rows.append([MODELS[model][2], lookback(model), len(runs), cell(runs, "test_mse_scaled"),
                     cell(runs, "test_mae_scaled"), cell(runs, "test_crps_scaled"), cell(runs, "test_coverage_80"),
                     cell(runs, "test_width_80_scaled"),
                     f"{spread(m['epochs'] for m in runs).mean:.1f} ({spread(m['best_epoch'] for m in runs).mean:.1f})"])
    return markdown_table(["model (ETTh1 S, H=96)", "look-back", "seeds", "test MSE", "test MAE", "test CRPS",
                           "80% coverage", "80% width", "epochs (best)"], rows)


def comparisons(found: dict[str, list[dict]]) -> str:
    """The median against the point forecast of the same model, and what the calendar adds."""

    def mean(model: str, key: str) -> float | None:
        runs = found.get(model)
        return spread(m[key] for m in runs).mean if runs and all(key in m for m in runs) else None

    lines = []
    for point, probabilistic in (("dlinear", "dlinear_q"), ("lstm", "lstm_q"), ("lstm", "lstm_q_calendar")):
        a, b = mean(point, "test_mse_scaled"), mean(probabilistic, "test_mse_scaled")
        if a is not None and b is not None:
            lines.append(f"- {MODELS[probabilistic][2]}: median MSE {b:.4f} vs the point model's {a:.4f} "
                         f"({100 * (b / a - 1):+.1f}%)")
    a, b = mean("lstm_q", "test_crps_scaled"), mean("lstm_q_calendar", "test_crps_scaled")
    if a is not None and b is not None:
        lines.append(f"- calendar features: LSTM CRPS {b:.4f} with vs {a:.4f} without ({100 * (b / a - 1):+.1f}%)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=1, help="runs trained at once (one thread each)")
    parser.add_argument("--no-train", action="store_true", help="tabulate the finished runs only")
    parser.add_argument("--smoke", action="store_true", help="one epoch per row, seed 0, in a study of its own")
    parser.add_argument("--readme", type=Path, nargs="?", const=README,
                        help="write the section into this file (default: experiments/README.md)")
    args = parser.parse_args()
    study, extra = (f"{STUDY}_smoke", SMOKE) if args.smoke else (STUDY, [])
    seeds = [0] if args.smoke else args.seeds
    runs = {(model, seed): Run(study, (*overrides(model, seed), *extra)) for model in args.models for seed in seeds}
    if args.no_train:
        runs = {job: run for job, run in runs.items() if run.finished}
    found: dict[str, list[dict]] = {}
    for (model, _), metrics in zip(runs, launch_all(list(runs.values()), args.workers), strict=True):
        found.setdefault(model, []).append(metrics)
    text = f"{table(found)}\n\n{comparisons(found)}"
    print(text)
    if args.readme:
        shown = [arg for arg in sys.argv[1:] if arg != "--no-train"]
        command = shlex.join(["python", "experiments/ett_probabilistic.py", *shown])
        write_section(STUDY, f"{text}\n\nRegenerate (finished runs are reused from outputs/experiments/{study}/, "
                             f"`--no-train` tabulates only those): `{command}`", args.readme)


if __name__ == "__main__":
    main()
