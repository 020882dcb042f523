"""One sweep worker against several on one study: wall time, best value, distinct trials.

The same budget of trials runs as 1 worker x N trials and as W workers x N/W trials started at once
(real `train.py -m hparams_search=lstm_optuna` processes, the README's recipe: the study is created
first with `optuna create-study`, then the same command is started W times, nothing telling the
workers apart), on SQLite and, where the machine has the PostgreSQL server binaries, on a throwaway
PostgreSQL server.

The model size is fixed (hidden_dim 32, one layer) so that every trial costs about the same and the
wall times compare the schedules, not the sizes TPE happened to pick; dropout, lr and
bidirectional are searched. `mean trial s` is the mean duration of one trial: it grows when workers
share too few cores.

    PYTHONPATH=$PWD python experiments/sweep_workers.py --trials 20 --workers 4
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from postgres_server import throwaway_postgres, unavailable  # noqa: E402  (the tests' throwaway server)

TINY = ["trainer.max_epochs=2", "data.generator.length=600", "model.hidden_dim=32", "model.num_layers=1",
        "hardware=cpu", "hardware.threads=1", "trainer.progress_bar=false", "logger=none"]


def run_setup(url: str, study: str, workers: int, trials_each: int, folder: Path) -> dict:
    """Create the study, start the workers at once, wait for all; the study's outcome and the wall time."""
    subprocess.run([str(Path(sys.executable).with_name("optuna")), "create-study", "--storage", url,
                    "--study-name", study, "--direction", "minimize", "--skip-if-exists"],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROJECT_ROOT": str(ROOT)}
    started = time.perf_counter()
    processes = [subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), "-m", "hparams_search=lstm_optuna",
         f"hydra.sweeper.storage='{url}'", f"hydra.sweeper.study_name={study}",
         f"hydra.sweeper.n_trials={trials_each}",
         f"hydra.sweep.dir={folder / study / str(index)}", *TINY],
        env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for index in range(workers)]
    for process in processes:
        _, errors = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"a worker failed:\n{errors[-3000:]}")
    wall = time.perf_counter() - started
    trials = optuna.load_study(study_name=study, storage=url).trials
    complete = [trial for trial in trials if trial.state == optuna.trial.TrialState.COMPLETE]
    return {"wall_s": wall, "trials": len(trials), "complete": len(complete),
            "distinct": len({tuple(sorted(trial.params.items())) for trial in trials}),
            "best": min(trial.value for trial in complete),
            "mean_trial_s": sum(trial.duration.total_seconds() for trial in complete) / len(complete)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the PostgreSQL server on the way out
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    setups = [("1 worker", 1, args.trials), (f"{args.workers} workers", args.workers, args.trials // args.workers)]
    print(f"load average before: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    print(f"{'storage':<10} {'setup':<22} {'trials':>6} {'complete':>8} {'distinct':>8} {'wall s':>7} "
          f"{'vs 1 worker':>11} {'mean trial s':>12} {'best val_loss':>13}")
    why_not = unavailable()
    storages = ["sqlite"] + (["postgresql"] if why_not is None else [])
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        for storage in storages:
            with ExitStack() as stack:
                url = (f"sqlite:///{folder / 'study.db'}?timeout=60" if storage == "sqlite"
                       else stack.enter_context(throwaway_postgres()))
                baseline = None
                for number, (name, workers, trials_each) in enumerate(setups):
                    result = run_setup(url, f"{storage}_{number}", workers, trials_each, folder)
                    baseline = baseline or result["wall_s"]
                    print(f"{storage:<10} {name:<22} {result['trials']:>6} {result['complete']:>8} "
                          f"{result['distinct']:>8} {result['wall_s']:>7.1f} {baseline / result['wall_s']:>10.2f}x "
                          f"{result['mean_trial_s']:>12.2f} {result['best']:>13.4f}", flush=True)
    if why_not:
        print(f"postgresql: not run ({why_not})")
    print(f"load average after: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    main()
