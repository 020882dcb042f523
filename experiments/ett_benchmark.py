"""ETT benchmark table: naive, DLinear and four LSTM variants on ETTh1/ETTh2, horizon 96, several seeds.

    python experiments/ett_benchmark.py --workers 2 --readme

Each run is `train.py experiment=ett_<model> data.name=<file> data.features=<mode> seed=<s> hardware=cpu
hardware.threads=1` (the presets in conf/experiment/), launched through the dl_core API by
experiments/common.py: a finished run is reused from outputs/experiments/ett_benchmark/, so an
interrupted table resumes. The table (test MSE/MAE on the standardised scale, mean ± std over seeds)
and the comparisons with DLinear are printed, and with --readme written between the "ett_benchmark"
markers of experiments/README.md. --smoke trains one epoch of a model per preset on ETTh1 M into a
study of its own, to check the script in about a minute.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import dl_core
from common import README, Run, launch_all, markdown_table, spread, write_section

STUDY = "ett_benchmark"
# best_params.yaml of `train.py -m experiment=ett_lstm hparams_search=ett_lstm_optuna` (trial 11 of 12)
TUNED_LSTM = ["model.instance_norm=true", "model.num_layers=1", "model.hidden_dim=67", "model.dropout=0.164",
              "trainer.lr=0.0024", "trainer.batch_size=128", "trainer.max_epochs=20"]
# name -> (preset, extra overrides, label in the table).
MODELS = {
    "naive": ("ett_naive", [], "naive (repeat last value)"),
    "dlinear": ("ett_dlinear", [], "DLinear (ours)"),
    "lstm": ("ett_lstm", [], "LSTM 2x64 (ours)"),
    "lstm_revin": ("ett_lstm", ["model.instance_norm=true"], "LSTM 2x64 + RevIN (ours)"),
    "lstm_tuned": ("ett_lstm", TUNED_LSTM, "LSTM 1x67 + RevIN, tuned (ours)"),
    # The tuned LSTM, each channel its own series (mode M only: in mode S there is one channel).
    "lstm_ci": ("ett_lstm", [*TUNED_LSTM, "model.channel_independent=true"],
                "LSTM 1x67 + RevIN, tuned, channel-independent (ours)"),
}
MULTIVARIATE_ONLY = {"lstm_ci"}
# --smoke: one epoch of one model per preset, on ETTh1 M with two seeds (about a minute).
SMOKE = ["trainer.max_epochs=1"]
SMOKE_MODELS = ["naive", "dlinear", "lstm_revin"]
# Test MSE / MAE at horizon 96 on the standardised scale, under the same protocol.
# DLinear, look-back 336: Zeng et al., "Are Transformers Effective for Time Series Forecasting?",
# AAAI 2023 (arXiv:2205.13504), Table 2 (multivariate, incl. "Repeat", the last value repeated)
# and Table 9 in its appendix (univariate). PatchTST/64, look-back 512: Nie et al., "A Time Series
# is Worth 64 Words", ICLR 2023, Table 3.
PUBLISHED = {
    ("ETTh1", "M"): {"DLinear (Zeng et al. 2023)": (336, 0.375, 0.399),
                     "PatchTST/64 (Nie et al. 2023)": (512, 0.370, 0.400),
                     "Repeat (Zeng et al. 2023)": (336, 1.295, 0.713)},
    ("ETTh2", "M"): {"DLinear (Zeng et al. 2023)": (336, 0.289, 0.353),
                     "Repeat (Zeng et al. 2023)": (336, 0.432, 0.422)},
    ("ETTh1", "S"): {"DLinear (Zeng et al. 2023)": (336, 0.056, 0.180)},
    ("ETTh2", "S"): {"DLinear (Zeng et al. 2023)": (336, 0.131, 0.279)},
}
# A table row: (model, data, mode); a job is a row and a seed.
Row = tuple[str, str, str]


def overrides(model: str, data: str, features: str, seed: int) -> list[str]:
    """The run as the table was made: fp32 on the CPU (the presets leave the device to hardware=auto)."""
    preset, extra, _ = MODELS[model]
    return [f"experiment={preset}", f"data.name={data}", f"data.features={features}", f"seed={seed}",
            "hardware=cpu", "hardware.threads=1", "trainer.progress_bar=false", *extra]


def results(jobs: list[tuple[Row, int]], study: str, extra: list[str], workers: int,
            train: bool) -> dict[Row, list[dict]]:
    """Each row's metrics.json over its seeds, training the jobs not finished before (or leaving them out)."""
    runs = {job: Run(study, (*overrides(*job[0], job[1]), *extra)) for job in jobs}
    if not train:
        runs = {job: run for job, run in runs.items() if run.finished}
    found: dict[Row, list[dict]] = {}
    for (row, _), metrics in zip(runs, launch_all(list(runs.values()), workers), strict=True):
        found.setdefault(row, []).append(metrics)
    return found


def lookback(row: Row) -> int:
    """The look-back the row's preset sets (composed, not trained)."""
    return int(dl_core.compose(*overrides(*row, seed=0)).data.sequence_length)


def table(found: dict[Row, list[dict]], datasets: list[str], modes: list[str], models: list[str]) -> str:
    rows = []
    for data in datasets:
        for features in modes:
            for model in models:
                runs = found.get((model, data, features))
                if not runs:
                    continue
                mse = spread(m["test_mse_scaled"] for m in runs)
                mae = spread(m["test_mae_scaled"] for m in runs)
                epochs = "–" if model == "naive" else \
                    f"{spread(m['epochs'] for m in runs).mean:.1f} ({spread(m['best_epoch'] for m in runs).mean:.1f})"
                rows.append([data, features, MODELS[model][2], lookback((model, data, features)), len(runs),
                             f"{mse:.3f}", f"{mae:.3f}", epochs])
            for source, (length, mse, mae) in PUBLISHED.get((data, features), {}).items():
                rows.append([data, features, f"{source}, published", length, "–", f"{mse:.3f}", f"{mae:.3f}", "–"])
    return markdown_table(["data", "mode", "model", "look-back", "seeds", "test MSE", "test MAE", "epochs (best)"],
                          rows)


def comparisons(found: dict[Row, list[dict]], datasets: list[str], modes: list[str]) -> str:
    """The two figures the table is for: DLinear against its published MSE, each LSTM against DLinear."""

    def mean_mse(model: str, data: str, features: str) -> float | None:
        runs = found.get((model, data, features))
        return spread(m["test_mse_scaled"] for m in runs).mean if runs else None

    lines = []
    for data in datasets:
        for features in modes:
            ours = mean_mse("dlinear", data, features)
            published = PUBLISHED.get((data, features), {}).get("DLinear (Zeng et al. 2023)")
            if ours is not None and published is not None:
                lines.append(f"- {data} {features}: DLinear test MSE {ours:.3f} vs published {published[1]:.3f} "
                             f"({100 * (ours / published[1] - 1):+.1f}%)")
            for model in [name for name in MODELS if name.startswith("lstm")]:
                lstm = mean_mse(model, data, features)
                if ours is not None and lstm is not None:
                    verdict = "beats" if lstm < ours else "does not beat"
                    lines.append(f"- {data} {features}: {MODELS[model][2]} {verdict} DLinear: MSE {lstm:.3f} vs "
                                 f"{ours:.3f} ({100 * (lstm / ours - 1):+.1f}%)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["ETTh1", "ETTh2"])
    parser.add_argument("--modes", nargs="+", default=["M", "S"], help="data.features: M, S or MS")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), help="default: all (with --smoke: one per preset)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=2, help="runs trained at once (one thread each)")
    parser.add_argument("--no-train", action="store_true", help="tabulate the finished runs only")
    parser.add_argument("--smoke", action="store_true",
                        help="one epoch per run, ETTh1 M, seeds 0 1, in a study of its own (outputs/experiments/)")
    parser.add_argument("--readme", type=Path, nargs="?", const=README,
                        help="write the section into this file (default: experiments/README.md)")
    args = parser.parse_args()
    study, extra = (f"{STUDY}_smoke", SMOKE) if args.smoke else (STUDY, [])
    if args.smoke:
        args.datasets, args.modes, args.seeds = ["ETTh1"], ["M"], [0, 1]
    args.models = args.models or (SMOKE_MODELS if args.smoke else list(MODELS))
    # Cheap models first, so the protocol check (naive, DLinear) is in the table soonest.
    jobs = [((model, data, features), seed) for model in args.models for features in args.modes
            for data in args.datasets for seed in (args.seeds if model != "naive" else [0])
            if features == "M" or model not in MULTIVARIATE_ONLY]
    found = results(jobs, study, extra, args.workers, train=not args.no_train)
    text = f"{table(found, args.datasets, args.modes, args.models)}\n\n{comparisons(found, args.datasets, args.modes)}"
    print(text)
    if args.readme:
        shown = [arg for arg in sys.argv[1:] if arg != "--no-train"]
        command = shlex.join(["python", "experiments/ett_benchmark.py", *shown])
        write_section(STUDY, f"{text}\n\nRegenerate (finished runs are reused from outputs/experiments/{study}/, "
                             f"`--no-train` tabulates only those): `{command}`", args.readme)


if __name__ == "__main__":
    main()
