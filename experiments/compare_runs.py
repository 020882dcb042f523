"""Full training runs that differ in one setting, same seeds, side by side: accuracy and speed.

Used for bf16-mixed vs 32 (does mixed precision cost accuracy?) and for hardware.compile (does
torch.compile pay for itself?). Every run goes through the dl_core API exactly as train.py, launched
by experiments/common.py one at a time (timings must not share the CPU) into
outputs/experiments/compare_runs/, where a finished run is reused: delete that folder to time again.
The table, mean ± std over the seeds, is read back from each run's metrics.json (and metrics.csv for
the last epoch's speed, which excludes one-off costs such as compiling).

    python experiments/compare_runs.py --seeds 0 1 \\
        --variants hardware.precision=32 hardware.precision=bf16-mixed [-- <common overrides>]
    python experiments/compare_runs.py --seeds 0 \\
        --variants hardware.compile=false "hardware.compile=true hardware.compile_mode=reduce-overhead" -- ...
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import pandas as pd

from common import Run, launch, markdown_table, spread

STUDY = "compare_runs"
COLUMNS = ("val_loss", "test_mse_scaled", "test_mse", "test_mae", "epochs", "train_samples_per_s",
           "last_epoch_samples_per_s")
ETTH1_LSTM = ["data=csv_timeseries", "data.path=${paths.data_dir}/ETTh1.csv",
              "data.timestamp_column=date", "data.target_column=OT", "data.sequence_length=60",
              "model.hidden_dim=64", "model.num_layers=2", "hardware=cpu", "hardware.threads=1",
              "trainer.progress_bar=false"]
# --smoke: a small LSTM for one epoch, in a study of its own.
SMOKE = ["model.hidden_dim=8", "model.num_layers=1"]


def last_epoch_samples_per_s(run_dir: Path, n_train_samples: int) -> float:
    """Training speed of the last epoch alone (from metrics.csv's cumulative time): no compiling in it."""
    times = pd.read_csv(run_dir / "metrics.csv")["time_s"].to_numpy()
    return n_train_samples / (times[-1] - (times[-2] if len(times) > 1 else 0.0))


def run_once(run: Run) -> dict:
    metrics = launch(run)
    return {**metrics, "last_epoch_samples_per_s": last_epoch_samples_per_s(run.run_dir, metrics["n_train_samples"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", required=True,
                        help="one argument per variant: an override, or several separated by spaces")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--max-epochs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="a small LSTM (with --max-epochs 1), its own study")
    parser.add_argument("common", nargs="*", help="overrides for every run (default: ETTh1 LSTM, L=60)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    common = [*(args.common or ETTH1_LSTM), f"trainer.max_epochs={args.max_epochs}", *(SMOKE if args.smoke else [])]
    study = f"{STUDY}_smoke" if args.smoke else STUDY
    results: dict[str, list[dict]] = {variant: [] for variant in args.variants}
    for seed in args.seeds:
        for variant in args.variants:
            metrics = run_once(Run(study, (*common, *variant.split(), f"seed={seed}")))
            results[variant].append(metrics)
            print(f"seed {seed} {variant}: " + ", ".join(f"{k}={metrics.get(k)}" for k in COLUMNS), flush=True)
    print(f"\ncommon overrides: {' '.join(common)}\nmean ± std over seeds {' '.join(map(str, args.seeds))}:\n")
    rows = [[variant, *(f"{spread(r[c] for r in runs if c in r):.4g}" if any(c in r for r in runs) else "–"
                        for c in COLUMNS)] for variant, runs in results.items()]
    print(markdown_table(["variant", *COLUMNS], rows))


if __name__ == "__main__":
    main()
