"""California Housing with the FT-Transformer over several seeds, next to the published figure.

Runs `train.py experiment=california_ft_transformer seed=S` for each seed as parallel subprocesses
(one run dir per seed under --out; a seed whose run dir already has metrics.json is not re-run),
then prints test RMSE / MAE / R² in $100k per seed and as mean ± std.

    python experiments/california_ft_transformer.py --seeds 0 1 2 -- hardware.threads=1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED_RMSE = "0.46-0.47"  # FT-Transformer, default configuration, single model (Gorishniy et al. 2021)
METRICS = ("test_rmse", "test_mae", "test_r2", "best_epoch", "epochs", "train_time_s")


def run_seeds(seeds: list[int], out: Path, overrides: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    jobs = []
    for seed in seeds:
        run_dir = out / f"seed{seed}"
        if (run_dir / "metrics.json").is_file():
            continue
        command = [sys.executable, str(ROOT / "train.py"), "experiment=california_ft_transformer", f"seed={seed}",
                   "trainer.progress_bar=false", f"hydra.run.dir={run_dir}", *overrides]
        jobs.append(subprocess.Popen(command, cwd=ROOT, env=env))
    failed = [job.args for job in jobs if job.wait() != 0]
    if failed:
        raise SystemExit(f"{len(failed)} run(s) failed: {failed}")


def summarize(seeds: list[int], out: Path) -> str:
    runs = {seed: json.loads((out / f"seed{seed}" / "metrics.json").read_text()) for seed in seeds}
    lines = [f"{'seed':>6} " + " ".join(f"{name:>12}" for name in METRICS)]
    for seed, metrics in runs.items():
        lines.append(f"{seed:>6} " + " ".join(f"{metrics[name]:>12.4f}" for name in METRICS))
    rmse = np.array([m["test_rmse"] for m in runs.values()])
    lines.append(f"test RMSE ($100k): {rmse.mean():.4f} ± {rmse.std(ddof=1) if len(rmse) > 1 else 0.0:.4f} "
                 f"over {len(rmse)} seeds | published FT-Transformer (default): {PUBLISHED_RMSE}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "california")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides passed to every run (after --)")
    args = parser.parse_args()
    run_seeds(args.seeds, args.out, args.overrides)
    print(summarize(args.seeds, args.out))


if __name__ == "__main__":
    main()
