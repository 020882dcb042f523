"""Full training runs that differ in one setting, same seeds, side by side: accuracy and speed.

Used for bf16-mixed vs 32 (does mixed precision cost accuracy?) and for hardware.compile (does
torch.compile pay for itself?). Every run goes through `dl_core.pipeline.train`, exactly as train.py,
and the table is read back from each run's metrics.json (and metrics.csv for the last epoch's speed,
which excludes one-off costs such as compiling).

    PYTHONPATH=$PWD python experiments/compare_runs.py --seeds 0 1 \\
        --variants hardware.precision=32 hardware.precision=bf16-mixed [-- <common overrides>]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import warnings
from pathlib import Path

import pandas as pd
import dl_core


ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("val_loss", "test_mse_scaled", "test_mse", "test_mae", "epochs", "train_samples_per_s",
           "last_epoch_samples_per_s")

ETTH1_LSTM = ["data=csv_timeseries", f"data.path={ROOT / 'data' / 'ETTh1.csv'}",
              "data.timestamp_column=date", "data.target_column=OT", "data.sequence_length=60",
              "model.hidden_dim=64", "model.num_layers=2", "hardware=cpu", "hardware.threads=1",
              "trainer.progress_bar=false"]


def run_once(overrides: list[str], run_dir: Path) -> dict:
    metrics = dict(dl_core.run(dl_core.compose(*overrides, run_dir=run_dir)).metrics)
    times = pd.read_csv(run_dir / "metrics.csv")["time_s"].to_numpy()
    last_epoch = times[-1] - (times[-2] if len(times) > 1 else 0.0)
    metrics["last_epoch_samples_per_s"] = metrics["n_train_samples"] / last_epoch  # steady state: no compiling
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", required=True, help="one override per variant")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--max-epochs", type=int, default=5)
    parser.add_argument("common", nargs="*", help="overrides for every run (default: ETTh1 LSTM, L=60)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    common = [*(args.common or ETTH1_LSTM), f"trainer.max_epochs={args.max_epochs}"]
    results: dict[str, list[dict]] = {variant: [] for variant in args.variants}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for i, variant in enumerate(args.variants):
                metrics = run_once([*common, variant, f"seed={seed}"], Path(tmp) / f"{seed}_{i}")
                results[variant].append(metrics)
                print(f"seed {seed} {variant}: " + ", ".join(f"{k}={metrics.get(k)}" for k in COLUMNS), flush=True)
    print("\ncommon overrides: " + " ".join(common))
    print(f"\n| variant | {' | '.join(f'{c} (mean of {len(args.seeds)} seeds)' for c in COLUMNS)} |")
    print("|" + "---|" * (len(COLUMNS) + 1))
    for variant, runs in results.items():
        means = [statistics.mean(float(r[c]) for r in runs if c in r) if any(c in r for r in runs) else float("nan")
                 for c in COLUMNS]
        print(f"| {variant} | " + " | ".join(f"{m:.4g}" for m in means) + " |")


if __name__ == "__main__":
    main()
