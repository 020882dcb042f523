"""How many Optuna workers sharing one SQLite study survive, and how many trials land in it?

Workers are separate processes released at the same instant (like sweep processes started at
once on several machines). Each opens the study with `create_study(load_if_exists=True)` (what the
Hydra Optuna sweeper does) and runs ask/tell trials. Three setups, side by side:
  fresh       nobody created the database first
  created     `optuna create-study --skip-if-exists` ran first (its Python twin here)
  timeout60   created first, and `?timeout=60` in the URL (sqlite3's busy timeout; default 5 s)

    python experiments/sqlite_study_concurrency.py --workers 6 --trials 20 --repeats 3
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from collections import Counter
from pathlib import Path

import optuna


def worker(url: str, start_at: float, trials: int) -> str:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    while time.time() < start_at:
        time.sleep(0.001)
    try:
        study = optuna.create_study(study_name="shared", storage=url, load_if_exists=True)
        for _ in range(trials):
            trial = study.ask({"x": optuna.distributions.FloatDistribution(0.0, 1.0)})
            study.tell(trial, trial.params["x"])
    except Exception as err:  # noqa: BLE001  (the study reports what kills a worker)
        return f"{type(err).__name__}: {str(err).splitlines()[0][:70]}"
    return "ok"


def run(setup: str, workers: int, trials: int, folder: Path) -> tuple[Counter, int]:
    url = f"sqlite:///{folder / f'{setup}.db'}" + ("?timeout=60" if setup == "timeout60" else "")
    if setup != "fresh":
        optuna.create_study(study_name="shared", storage=url, direction="minimize")
    start_at = time.time() + 3.0
    with mp.get_context("spawn").Pool(workers) as pool:
        outcomes = pool.starmap(worker, [(url, start_at, trials)] * workers)
    stored = len(optuna.load_study(study_name="shared", storage=url).trials)
    return Counter(outcomes), stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"{'setup':<10} {'repeat':>6} {'survivors':>9} {'trials stored':>13}  failures")
    for setup in ("fresh", "created", "timeout60"):
        for repeat in range(args.repeats):
            with tempfile.TemporaryDirectory() as folder:
                outcomes, stored = run(setup, args.workers, args.trials, Path(folder))
            failures = "; ".join(f"{n}x {why}" for why, n in outcomes.items() if why != "ok") or "-"
            print(f"{setup:<10} {repeat:>6} {outcomes['ok']:>5}/{args.workers:<3} "
                  f"{stored:>6}/{args.workers * args.trials:<6}  {failures}")


if __name__ == "__main__":
    main()
