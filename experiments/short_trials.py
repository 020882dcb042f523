"""What a short trial pays besides training: process start-up to the first step, and the first epoch over the next.

    nice -n 5 python experiments/short_trials.py --before 8476c73 --repeats 3 [--readme]

Each measurement is a fresh Python process (as a sweep's trial under joblib or submitit is) training
ETTh1 with an LSTM 2x64 (`experiment=ett_lstm`, look-back 60, horizon 96, all 7 channels, batch 32,
fp32, 1 thread, 3 epochs) through `dl_core.compose` + `dl_core.run`. It stamps the wall clock and its
CPU time (user + system) at each phase: interpreter up, `import torch`, then numpy + pandas, scikit-
learn (+ SciPy), Hydra + OmegaConf and dl_core (each import measured after the ones before it, so each
is its own cost), the composed config, the data bundle, the model, the first training step, and the
end of each epoch (with the minor page faults of each epoch). The epoch times are the engine's
training passes (`train_epoch`), so validation and checkpoints are left out of both sides.

`--before REV` measures the code of git revision REV too (exported with `git archive` into a
temporary folder), alternating before/after for `--repeats` rounds so that both see the same load;
the table shows medians, the load average before and after. Wall times on a shared machine move with
the load; the CPU times and page faults do not.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import README, ROOT, markdown_table, write_run_section

OVERRIDES = ["experiment=ett_lstm", "data.sequence_length=60", "trainer.batch_size=32", "hardware=cpu",
             "hardware.threads=1", "hardware.precision=32", "trainer.max_epochs=3", "trainer.patience=10",
             "model.hidden_dim=64", "model.num_layers=2", "trainer.progress_bar=false"]
IMPORTS = {"torch": "import torch", "numpy + pandas": "import numpy, pandas",
           "scikit-learn + SciPy": "import sklearn.preprocessing, sklearn.metrics, sklearn.model_selection",
           "Hydra + OmegaConf": "import hydra, omegaconf, hydra.utils",
           "dl_core": "import dl_core, dl_core.runs.pipeline"}
PHASES = ["interpreter", *IMPORTS, "compose", "data", "model", "first step"]

# Runs in the measured process, on the code under PYTHONPATH; argv: start time, run dir, overrides...
DRIVER = """
import json, resource, sys, time
start, run_dir, overrides = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
stamps = []

def stamp(name):
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stamps.append((name, time.time() - start, usage.ru_utime + usage.ru_stime, usage.ru_minflt))

stamp("interpreter")
for name, statement in IMPORTS.items():
    exec(statement)
    stamp(name)
import dl_core.runs.pipeline as pipeline, dl_core.engine.loop as loop
cfg = dl_core.compose(*overrides, run_dir=run_dir)
stamp("compose")

def stamped(function, name):
    def call(*args, **kwargs):
        result = function(*args, **kwargs)
        stamp(name)
        return result
    return call

pipeline.build_bundle = stamped(pipeline.build_bundle, "data")
pipeline.build_estimator = stamped(pipeline.build_estimator, "model")
train_epoch, epochs = loop.train_epoch, []

def timed_epoch(net, split, *args, **kwargs):
    epochs.append(len(epochs) + 1)
    batch, epoch = split.batch, epochs[-1]
    def first_batch(idx):
        split.batch = batch
        if epoch == 1:
            stamp("first step")
        return batch(idx)
    split.batch = first_batch
    stamp(f"epoch {epoch} start")
    result = train_epoch(net, split, *args, **kwargs)
    stamp(f"epoch {epoch} end")
    return result

loop.train_epoch = timed_epoch
dl_core.run(cfg)
print(json.dumps(stamps))
"""


def materialise(revision: str, folder: Path) -> Path:
    """The repository's files at `revision`, without touching this checkout."""
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def measure(code: Path, run_dir: Path) -> dict[str, tuple[float, float, int]]:
    """One fresh process on the code in `code`: phase -> (wall s since start, CPU s, minor faults)."""
    env = {**os.environ, "PYTHONPATH": str(code), "PROJECT_ROOT": str(code)}
    driver = f"IMPORTS = {IMPORTS!r}\n{DRIVER}"
    start = time.time()
    done = subprocess.run([sys.executable, "-c", driver, repr(start), str(run_dir), *OVERRIDES], cwd=code, env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return {name: (wall, cpu, faults) for name, wall, cpu, faults in json.loads(done.stdout.splitlines()[-1])}


def summary(stamps: dict[str, tuple[float, float, int]]) -> dict[str, float]:
    """Per phase: wall and CPU seconds since the phase before; per epoch: wall, CPU and page faults."""
    row: dict[str, float] = {}
    previous = (0.0, 0.0)
    for phase in PHASES:
        wall, cpu, _ = stamps[phase]
        row[f"{phase} wall"], row[f"{phase} cpu"] = wall - previous[0], cpu - previous[1]
        previous = (wall, cpu)
    row["start-up wall"], row["start-up cpu"] = stamps["first step"][0], stamps["first step"][1]
    for epoch in (1, 2, 3):
        (w0, c0, f0), (w1, c1, f1) = stamps[f"epoch {epoch} start"], stamps[f"epoch {epoch} end"]
        row[f"epoch {epoch} wall"], row[f"epoch {epoch} cpu"], row[f"epoch {epoch} faults"] = w1 - w0, c1 - c0, f1 - f0
    for kind in ("wall", "cpu", "faults"):
        row[f"later {kind}"] = (row[f"epoch 2 {kind}"] + row[f"epoch 3 {kind}"]) / 2
        row[f"first/later {kind}"] = row[f"epoch 1 {kind}"] / max(row[f"later {kind}"], 1e-9)
    return row


def median(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]}


def tables(results: dict[str, dict[str, float]], repeats: int) -> str:
    names = list(results)
    epochs = markdown_table(["", *names], [
        ["epoch 1: wall s / CPU s", *(f"{r['epoch 1 wall']:.2f} / {r['epoch 1 cpu']:.2f}" for r in results.values())],
        ["epochs 2-3 (mean): wall s / CPU s", *(f"{r['later wall']:.2f} / {r['later cpu']:.2f}"
                                                for r in results.values())],
        ["first / later: wall / CPU", *(f"{r['first/later wall']:.2f} / {r['first/later cpu']:.2f}"
                                        for r in results.values())],
        ["page faults: epoch 1 / later", *(f"{r['epoch 1 faults']:.0f} / {r['later faults']:.0f}"
                                           for r in results.values())],
    ])
    startup = markdown_table(["start-up phase: wall s / CPU s", *names], [
        *([phase, *(f"{r[f'{phase} wall']:.2f} / {r[f'{phase} cpu']:.2f}" for r in results.values())]
          for phase in PHASES),
        ["process start to first step", *(f"{r['start-up wall']:.2f} / {r['start-up cpu']:.2f}"
                                          for r in results.values())],
    ])
    return f"Medians of {repeats} fresh processes each.\n\n{epochs}\n\n{startup}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", help="git revision to measure too (e.g. the commit before the change)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--readme", type=Path, nargs="?", const=README,
                        help="write the section into this file (default: experiments/README.md)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="short_trials_") as tmp:
        codes = {}
        if args.before:
            (Path(tmp) / "before").mkdir()
            codes[f"before ({args.before})"] = materialise(args.before, Path(tmp) / "before")
        codes["after (this checkout)"] = ROOT
        load_before = os.getloadavg()
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in codes}
        for repeat in range(args.repeats):
            for name, code in codes.items():
                run_dir = Path(tmp) / "runs" / f"{repeat}_{list(codes).index(name)}"
                rows[name].append(summary(measure(code, run_dir)))
                print(f"{name} #{repeat}: epoch 1 / later CPU {rows[name][-1]['first/later cpu']:.2f}, start-up "
                      f"{rows[name][-1]['start-up wall']:.1f} s", flush=True)
        load_after = os.getloadavg()
    text = (f"{tables({name: median(found) for name, found in rows.items()}, args.repeats)}\n\n"
            f"Load average (1, 5, 15 min) {' '.join(f'{v:.2f}' for v in load_before)} before, "
            f"{' '.join(f'{v:.2f}' for v in load_after)} after.")
    print(text)
    if args.readme:
        write_run_section("short_trials", text, args.readme, "nice", "-n", "5")


if __name__ == "__main__":
    main()
