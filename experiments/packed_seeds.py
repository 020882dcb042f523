"""N seeds of one config as one multirun: packed on one device (the joblib launcher, all N at once) against one
after another (the basic launcher), end to end, with each seed's metric from both.

Both are real `train.py -m ... seed=range(N)` processes. Packed, every job knows it runs beside N-1 others
(hydra.launcher.n_jobs): it takes its share of the CPU threads and, on a GPU, at most 1/N of the GPU's memory
(dl_core/engine/hardware.py). The wall time of each multirun is timed from outside, start-up included; the
seeds' metrics are read from their metrics.json. Exit status 1 when a seed's metric differs between the two by
more than `--rtol` (on a CPU with fixed threads the runs are bit-identical; CUDA kernels need not be).

    python experiments/packed_seeds.py --seeds 16 -- experiment=ett_patchtst hardware.precision=32
    python experiments/packed_seeds.py --smoke      # two tiny CPU runs each way: checks the script, in a minute

Pass the precision explicitly: under `auto` each run times it, and runs packed on a busy device may choose
differently from runs alone, which changes their numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from common import ROOT, markdown_table

SMOKE = ["data.generator.length=400", "data.sequence_length=12", "model.hidden_dim=16", "model.num_layers=1",
         "trainer.max_epochs=2", "trainer.batch_size=64", "hardware=cpu", "hardware.threads=1"]


def multirun(sweep_dir: Path, overrides: list[str], seeds: int, jobs: int) -> float:
    """Wall seconds of one `train.py -m` over seeds 0..seeds-1, `jobs` at a time (1: the basic launcher)."""
    launcher = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}"] if jobs > 1 else []
    command = [sys.executable, str(ROOT / "train.py"), "-m", *overrides, *launcher, f"seed=range({seeds})",
               "trainer.progress_bar=false", f"hydra.sweep.dir={sweep_dir}"]
    tick = time.perf_counter()
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(command, check=False, cwd=ROOT, env={**os.environ, "PYTHONPATH": path},
                          capture_output=True, text=True)
    wall = time.perf_counter() - tick
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return wall


def seed_metrics(sweep_dir: Path) -> dict[int, dict]:
    """seed -> metrics.json of each job of a multirun."""
    found = {}
    for config in sweep_dir.glob("*/.hydra/config.yaml"):
        found[int(yaml.safe_load(config.read_text())["seed"])] = json.loads(
            (config.parent.parent / "metrics.json").read_text())
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--jobs", type=int, help="runs at once when packed (default: all the seeds)")
    parser.add_argument("--metric", default="test_mse")
    parser.add_argument("--rtol", type=float, default=1e-6, help="largest relative difference of a seed's metric")
    parser.add_argument("--out", type=Path, help="where the two multiruns write (default: a temporary directory)")
    parser.add_argument("--smoke", action="store_true", help="2 tiny seeds of the default job on the CPU")
    parser.add_argument("overrides", nargs="*", help="the config of every seed, as train.py takes it")
    args = parser.parse_args()
    overrides = [*SMOKE, *args.overrides] if args.smoke else args.overrides
    seeds = 2 if args.smoke else args.seeds
    jobs = args.jobs or seeds
    out = args.out or Path(tempfile.mkdtemp(prefix="packed_seeds_"))
    serial_s = multirun(out / "serial", overrides, seeds, 1)
    packed_s = multirun(out / "packed", overrides, seeds, jobs)
    serial, packed = seed_metrics(out / "serial"), seed_metrics(out / "packed")
    rows, worst = [], 0.0
    for seed in range(seeds):
        a, b = serial[seed][args.metric], packed[seed][args.metric]
        difference = abs(a - b) / max(abs(a), 1e-12)
        worst = max(worst, difference)
        rows.append([seed, f"{a:.6g}", f"{b:.6g}", f"{difference:.1e}",
                     f"{serial[seed]['threads']} / {packed[seed]['threads']}",
                     f"{serial[seed]['precision']} / {packed[seed]['precision']}",
                     f"{serial[seed]['train_samples_per_s']:.0f} / {packed[seed]['train_samples_per_s']:.0f}"])
    print(f"{seeds} seeds of: {' '.join(overrides)}\nruns in {out}\n")
    print(markdown_table(["seed", f"{args.metric} one after another", f"packed ({jobs} at once)", "relative diff",
                          "threads", "precision", "train samples/s"], rows))
    print(f"\nwall time, start-up included: one after another {serial_s:.1f} s, packed {packed_s:.1f} s: "
          f"{serial_s / packed_s:.2f}x; largest relative difference of {args.metric}: {worst:.1e} (rtol {args.rtol:g})")
    if worst > args.rtol:
        sys.exit(1)


if __name__ == "__main__":
    main()
