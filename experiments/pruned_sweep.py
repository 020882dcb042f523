"""The same 24-trial LSTM sweep with and without a pruner: epochs trained, wall time, best validation loss.

    nice -n 5 python experiments/pruned_sweep.py --readme

Each variant is one real `train.py -m hparams_search=lstm_optuna` process (the basic launcher, one trial
at a time, one CPU thread) on ETTh1, univariate (OT), look-back 48, horizon 24, RevIN on, up to
`--epochs` epochs without early stopping, searching hidden size, layers, dropout, learning rate and
batch size with the presets' TPE sampler seeded by `seed=0`: the variants differ only in
`hydra/sweeper/pruner`. Their studies (SQLite) and trials live in outputs/experiments/pruned_sweep/<variant>/;
a finished variant is read back, not run again (delete its folder to run it again). Total epochs are
counted from the study (each trial's reported epochs); wall time is the process's, start-up included,
beside the 1-minute load average sampled every 15 s while it ran (other jobs share the cores).

`--barrier` also measures the joblib launcher's batch barrier (`--barrier-trials` trials of the pruned
sweep, 2 at a time): one process with `hydra/launcher=joblib hydra.launcher.n_jobs=2` (the sweeper asks
2 trials, and asks again only when both ended) against 2 sweep processes with one trial at a time on
one study (each asks its next trial as soon as its last one ended). A slot's idle time is the time
from its trial's end to the start of the next trial its process asked, from the study's timestamps.
Once measured, the barrier table is part of the section too.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import optuna
from omegaconf import OmegaConf
from optuna.trial import TrialState

from common import README, ROOT, markdown_table, runs_root, write_run_section
from dl_core.sweep.workers import OWNER_ATTR

STUDY = "pruned_sweep"
SEARCH = ["model.hidden_dim=int(interval(16,64))", "model.num_layers=int(interval(1,2))",
          "model.dropout=interval(0.0,0.3)", "trainer.lr=tag(log,interval(1e-3,3e-2))",
          "trainer.batch_size=choice(64,128,256)", "model.bidirectional=false"]
DATA = ["experiment=ett_lstm", "data.features=S", "data.sequence_length=48", "data.horizon=24",
        "model.instance_norm=true"]
VARIANTS = {"unpruned": [], "hyperband": ["hydra/sweeper/pruner=hyperband"]}
BARRIER = ("joblib", "processes")


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def sample_load(samples: list[float], done: threading.Event, every_s: float = 15.0) -> None:
    """The 1-minute load average every `every_s` seconds until `done`: other users' jobs share the cores,
    so the wall times are read beside the load the sweep ran under, not only its two ends."""
    while not done.wait(every_s):
        samples.append(os.getloadavg()[0])


def command(sweep_dir: Path, study_name: str, trials: int, epochs: int, extra: list[str]) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), "-m", "hparams_search=lstm_optuna", *DATA, *SEARCH, "seed=0",
            f"trainer.max_epochs={epochs}", f"trainer.patience={epochs}", "hardware=cpu", "hardware.threads=1",
            "trainer.progress_bar=false", f"hydra.sweeper.n_trials={trials}", f"hydra.sweeper.study_name={study_name}",
            f"hydra.sweep.dir={sweep_dir}", *extra]


def run_sweeps(folder: Path, commands: list[list[str]], storage: str | None = None) -> dict[str, Any]:
    """Start the commands at once (with a shared `storage`, its study created first: the README's recipe)
    and wait for all; wall time and load averages. A folder left by an interrupted run is started afresh."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if storage is not None:
        optuna.create_study(study_name=folder.name, storage=storage, direction="minimize")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROJECT_ROOT": str(ROOT)}
    before, started, samples, done = load_average(), time.perf_counter(), [os.getloadavg()[0]], threading.Event()
    sampler = threading.Thread(target=sample_load, args=(samples, done), daemon=True)
    sampler.start()
    processes = [subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for cmd in commands]
    for process in processes:
        _, errors = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"a sweep failed:\n{errors[-3000:]}")
    done.set()
    return {"wall_s": time.perf_counter() - started, "load_before": before, "load_after": load_average(),
            "load_during": f"{statistics.mean(samples):.2f} (max {max(samples):.2f})",
            "commands": [shlex.join(cmd[1:]) for cmd in commands]}


def outcome(folder: Path, storage: str) -> dict[str, Any]:
    """What the study says: trials by state, epochs trained, the best trial, and the slots' idle time."""
    study = optuna.load_study(study_name=folder.name, storage=storage)
    trials = study.trials
    return {"trials": len(trials), "complete": sum(t.state == TrialState.COMPLETE for t in trials),
            "pruned": sum(t.state == TrialState.PRUNED for t in trials),
            "epochs": sum(len(t.intermediate_values) for t in trials), "best_value": study.best_value,
            "best_trial": study.best_trial.number, "best_params": study.best_params, "idle_s": idle_time(trials)}


def idle_time(trials: list[Any]) -> float:
    """Seconds trial slots stood idle: from each trial's end to the next trial its sweep process started.

    A sweep process asks its next trial (or batch) once its last one (or its whole batch) has ended, so
    under joblib both trials of a batch wait for the batch's slower trial; the last trials, which no
    trial follows, are not counted."""
    by_process: dict[Any, list[Any]] = {}
    for trial in trials:
        by_process.setdefault(trial.user_attrs[OWNER_ATTR]["pid"], []).append(trial)
    idle = 0.0
    for own in by_process.values():
        starts = sorted(trial.datetime_start for trial in own)
        for trial in own:
            following = [start for start in starts if start >= trial.datetime_complete]
            if following:
                idle += (following[0] - trial.datetime_complete).total_seconds()
    return idle


def result(folder: Path, commands: list[list[str]], storage: str, shared: bool) -> dict[str, Any]:
    """The sweep's record, read back when it finished before, else run and recorded (result.json)."""
    record = folder / "result.json"
    if not record.is_file():
        run = run_sweeps(folder, commands, storage if shared else None)
        record.write_text(json.dumps({**run, **outcome(folder, storage)}, indent=1, default=str) + "\n")
    return json.loads(record.read_text())


def variant_result(name: str, trials: int, epochs: int, study: str) -> dict[str, Any]:
    folder = runs_root() / study / name
    return result(folder, [command(folder, name, trials, epochs, VARIANTS[name])], f"sqlite:///{folder}/optuna.db",
                  shared=False)


def barrier_result(name: str, trials: int, epochs: int, study: str) -> dict[str, Any]:
    """The pruned sweep with 2 trial slots: joblib (one process, batches of 2) or 2 one-slot processes."""
    folder = runs_root() / study / name
    url = f"sqlite:///{folder}/optuna.db?timeout=60"
    pruned = [*VARIANTS["hyperband"], f"hydra.sweeper.storage='{url}'"]
    if name == "joblib":
        joblib = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
        commands = [command(folder, name, trials, epochs, [*pruned, *joblib])]
    else:
        commands = [command(folder / f"w{i}", name, trials // 2, epochs, pruned) for i in range(2)]
    return result(folder, commands, url, shared=True)


def guided_best(folder: Path) -> tuple[int, float, int]:
    """The sampler's random start-up trials are the same with or without a pruner (seeded per trial number,
    deterministic training), so the overall bests may be one start-up trial in both: pruning's effect on
    the search shows in the trials TPE chose from what it saw. Start-up size, best value, its trial."""
    startup = OmegaConf.load(next(folder.glob("*/.hydra/hydra.yaml"))).hydra.sweeper.sampler.n_startup_trials
    study = optuna.load_study(study_name=folder.name, storage=f"sqlite:///{folder}/optuna.db")
    guided = [t for t in study.trials if t.state == TrialState.COMPLETE and t.number >= startup]
    best = min(guided, key=lambda trial: trial.value)
    return startup, best.value, best.number


def comparison(results: dict[str, dict[str, Any]], epochs: int, study: str) -> str:
    rows = [[name, f"{r['trials']} ({r['complete']} complete, {r['pruned']} pruned)", r["epochs"],
             f"{r['wall_s'] / 60:.1f}", f"{r['best_value']:.5f}", r["best_trial"],
             f"{r['load_before']} -> {r['load_after']}", r.get("load_during", "not sampled")]
            for name, r in results.items()]
    table = markdown_table(["pruner", "trials", "epochs trained", "wall min", "best val_loss", "best trial",
                            "load average before -> after", "1-min load during: mean (max)"], rows)
    base, pruned = results["unpruned"], results["hyperband"]
    gap = 100 * (pruned["best_value"] / base["best_value"] - 1)
    startup, base_guided, base_trial = guided_best(runs_root() / study / "unpruned")
    _, pruned_guided, pruned_trial = guided_best(runs_root() / study / "hyperband")
    return (f"{table}\n\n- epochs: {base['epochs']} / {pruned['epochs']} = {base['epochs'] / pruned['epochs']:.2f}x "
            f"fewer with Hyperband (target >= 2x; {base['trials']} x {epochs} = {base['trials'] * epochs} without)\n"
            f"- wall time: {base['wall_s'] / pruned['wall_s']:.2f}x shorter\n"
            f"- best validation loss: {gap:+.2f} % against the unpruned sweep (target within 1 %)\n"
            f"- best of the TPE-guided trials (number >= {startup}, after the random start-up), complete ones: "
            f"{base_guided:.5f} (trial {base_trial}) unpruned, {pruned_guided:.5f} (trial {pruned_trial}) with "
            f"Hyperband, {100 * (pruned_guided / base_guided - 1):+.2f} %\n"
            f"- wall s per epoch trained: {base['wall_s'] / base['epochs']:.2f} unpruned, "
            f"{pruned['wall_s'] / pruned['epochs']:.2f} with Hyperband")


def barrier_table(results: dict[str, dict[str, Any]]) -> str:
    rows = [[name, f"{r['trials']} ({r['complete']} complete, {r['pruned']} pruned)", r["epochs"],
             f"{r['wall_s'] / 60:.1f}", f"{r['idle_s']:.0f}", f"{100 * r['idle_s'] / (2 * r['wall_s']):.0f} %",
             f"{r['best_value']:.5f}", f"{r['load_before']} -> {r['load_after']}"] for name, r in results.items()]
    return markdown_table(["setup (2 trial slots)", "trials", "epochs", "wall min", "slot idle s",
                           "idle share of 2 x wall", "best val_loss", "load average before -> after"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=9, help="trainer.max_epochs (Hyperband's max_resource)")
    parser.add_argument("--barrier", action="store_true", help="measure joblib's batch barrier against 2 processes")
    parser.add_argument("--barrier-trials", type=int, default=12)
    parser.add_argument("--smoke", action="store_true", help="4 trials of 2 epochs, in a study of its own")
    parser.add_argument("--readme", type=Path, nargs="?", const=README,
                        help="write the section into this file (default: experiments/README.md)")
    args = parser.parse_args()
    study = f"{STUDY}_smoke" if args.smoke else STUDY
    if args.smoke:
        args.trials, args.epochs, args.barrier_trials = 4, 2, 4
    ran = {name: variant_result(name, args.trials, args.epochs, study) for name in reversed(VARIANTS)}  # shorter first
    results = {name: ran[name] for name in VARIANTS}
    text = comparison(results, args.epochs, study)
    barrier_study = f"{study}_barrier"
    if args.barrier or all((runs_root() / barrier_study / name / "result.json").is_file() for name in BARRIER):
        barrier = {name: barrier_result(name, args.barrier_trials, args.epochs, barrier_study) for name in BARRIER}
        text += (f"\n\nThe batch barrier (`--barrier`, {args.barrier_trials} trials, Hyperband):\n\n"
                 f"{barrier_table(barrier)}")
    print(text)
    if args.readme:
        write_run_section(STUDY, text, args.readme, "nice", "-n", "5")


if __name__ == "__main__":
    main()
