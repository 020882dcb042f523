"""What the scripts in experiments/ share: runs launched through the dl_core API, finished runs reused,
seeds aggregated, Markdown tables, and the generated sections of experiments/README.md.

Seeds and folds are aggregated exactly as a multirun's summary does it (dl_core.tracking.multirun_summary:
`spread` gives mean ± sample std and n; `summary` folds runs into one row per configuration, the
swept-out keys apart), so a table made here and `summary.csv` of `train.py -m ... seed=0,1,2` agree.

A run is its list of overrides. It trains in `outputs/experiments/<study>/<key>/`, where the key is a
hash of that list, so the same overrides find the same finished run (its metrics.json) instead of
training it again, and a run killed before it finished continues from its last checkpoint. The
metrics are always the harness's own (metrics.json), never recomputed here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

import dl_core
from dl_core.tracking.multirun_summary import SWEPT_OUT, Job, parse_overrides, summarize
from dl_core.tracking.multirun_summary import Spread as Spread  # the scripts' aggregation: the summary's
from dl_core.tracking.multirun_summary import spread as spread

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "experiments" / "README.md"
# Tests point this elsewhere; scripts leave it alone.
RUNS_ENV = "DL_CORE_EXPERIMENT_RUNS"


def runs_root() -> Path:
    return Path(os.environ.get(RUNS_ENV, ROOT / "outputs" / "experiments"))


def run_key(overrides: Sequence[str]) -> str:
    """A name that only these overrides, in this order, get (a later override of a key wins, so order counts);
    sha256 rather than `hash()`, which changes with every interpreter."""
    return hashlib.sha256("\n".join(overrides).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Run:
    """One training run of a study: the overrides `train.py` would be given."""

    study: str
    overrides: tuple[str, ...]

    @property
    def run_dir(self) -> Path:
        return runs_root() / self.study / run_key(self.overrides)

    @property
    def finished(self) -> bool:
        return (self.run_dir / "metrics.json").is_file()

    def metrics(self) -> dict[str, Any]:
        return json.loads((self.run_dir / "metrics.json").read_text())


def train(overrides: Sequence[str], run_dir: Path) -> dict[str, Any]:
    """Compose and train one config in this process, exactly as `train.py` would; its metrics."""
    return dict(dl_core.run(dl_core.compose(*overrides, run_dir=run_dir)).metrics)


def launch(run: Run) -> dict[str, Any]:
    """The run's metrics: read back when it finished before, else trained (resumed if it has a checkpoint)."""
    if run.finished:
        return run.metrics()
    run.run_dir.mkdir(parents=True, exist_ok=True)
    (run.run_dir / "overrides.json").write_text(json.dumps(list(run.overrides), indent=1) + "\n")
    interrupted = (run.run_dir / "checkpoints" / "last.ckpt").is_file()
    metrics = train([*run.overrides, *(["trainer.resume=true"] if interrupted else [])], run.run_dir)
    print(f"done {run.run_dir.relative_to(runs_root())}: {' '.join(run.overrides)}", flush=True)
    return metrics


def launch_all(runs: Sequence[Run], workers: int = 1) -> list[dict[str, Any]]:
    """Every run's metrics, in order; the unfinished ones train `workers` at a time, each in its own process."""
    todo = [run for run in runs if not run.finished]
    if workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(launch, todo))
    else:
        for run in todo:
            launch(run)
    return [run.metrics() for run in runs]


def summary(runs: Sequence[Run], over: Sequence[str] = SWEPT_OUT) -> pd.DataFrame:
    """The finished runs as a multirun summary: one row per configuration (the overrides but `over`), with
    `runs`, the swept-out values and `<metric>_mean`, `<metric>_std`, `<metric>_n` of every numeric metric."""
    return summarize([Job(parse_overrides(run.overrides), run.metrics()) for run in runs if run.finished], over)


def seed_arguments(doc: str, smoke: str) -> argparse.ArgumentParser:
    """The command line every study over seeds has: `--seeds`, `--workers`, `--smoke` (what it trains: `smoke`),
    `--readme`."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=1, help="runs trained at once (each in its own process)")
    parser.add_argument("--smoke", action="store_true", help=smoke)
    parser.add_argument("--readme", type=Path, nargs="?", const=README,
                        help="write the section into this file (default: experiments/README.md)")
    return parser


def study_arguments(doc: str) -> argparse.ArgumentParser:
    """The command line of a study of rows x seeds (`launch_study`): `seed_arguments` and `--no-train`."""
    parser = seed_arguments(doc, "one epoch per row, seed 0, in a study of its own")
    parser.add_argument("--no-train", action="store_true", help="tabulate the finished runs only")
    return parser


def study_of(name: str, args: argparse.Namespace) -> str:
    """Where a study's runs go: `--smoke` runs go to a study of their own."""
    return f"{name}_smoke" if args.smoke else name


def launch_study(name: str, rows: Sequence[str], overrides: Callable[[str, int], Sequence[str]],
                 args: argparse.Namespace) -> dict[str, list[tuple[Run, dict[str, Any]]]]:
    """Each row's runs and metrics over the seeds `study_arguments` parsed into `args`, a run's overrides being
    `overrides(row, seed)` (with `--smoke`: seed 0, one epoch); the unfinished runs are trained, or left out
    with `--no-train`."""
    seeds, smoke = ([0], ["trainer.max_epochs=1"]) if args.smoke else (args.seeds, [])
    runs = {(row, seed): Run(study_of(name, args), (*overrides(row, seed), *smoke)) for row in rows for seed in seeds}
    if args.no_train:
        runs = {job: run for job, run in runs.items() if run.finished}
    found: dict[str, list[tuple[Run, dict[str, Any]]]] = {}
    for ((row, _), run), metrics in zip(runs.items(), launch_all(list(runs.values()), args.workers), strict=True):
        found.setdefault(row, []).append((run, metrics))
    return found


def publish(name: str, text: str, args: argparse.Namespace) -> None:
    """Print the results of the study `name`; with `--readme`, write them into its section with the command that
    regenerates them."""
    print(text)
    if args.readme:
        study = study_of(name, args)
        command = shlex.join(["python", f"experiments/{name}.py", *(a for a in sys.argv[1:] if a != "--no-train")])
        write_section(name, f"{text}\n\nRegenerate (finished runs are reused from outputs/experiments/{study}/, "
                            f"`--no-train` tabulates only those): `{command}`", args.readme)


def markdown_row(cells: Sequence[object]) -> str:
    return f"| {' | '.join(str(cell) for cell in cells)} |"


def markdown_header(header: Sequence[str], right_aligned: bool = False) -> str:
    """The header and rule lines, for a table printed row by row as its measurements come in."""
    return f"{markdown_row(header)}\n|" + ("---:|" if right_aligned else "---|") * len(header)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]], right_aligned: bool = False) -> str:
    return "\n".join([markdown_header(header, right_aligned), *map(markdown_row, rows)])


def section_markers(name: str) -> tuple[str, str]:
    return (f"<!-- begin {name}: generated by experiments/{name}.py from its runs; edit the script, not this -->",
            f"<!-- end {name} -->")


def write_run_section(name: str, text: str, readme: Path, *prefix: str) -> None:
    """`text` as the section `name` of `readme`, under the command that wrote it: this script as it was run
    (after `prefix`, e.g. `nice -n 5`)."""
    command = shlex.join([*prefix, "python", f"experiments/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    write_section(name, f"```bash\n{command}\n```\n\n{text}", readme)


def write_section(name: str, text: str, readme: Path = README) -> None:
    """Replace what lies between the section's markers in the README, and nothing else.

    The markers are placed by hand where the section belongs, so prose written around a generated
    table survives every regeneration.
    """
    begin, end = section_markers(name)
    current = readme.read_text()
    pattern = re.compile(rf"^{re.escape(begin)}\n.*?^{re.escape(end)}$", re.S | re.M)
    if len(pattern.findall(current)) != 1:
        raise SystemExit(f"{readme}: needs exactly one pair of lines '{begin}' ... '{end}' "
                         f"around the generated section of {name}")
    readme.write_text(pattern.sub(lambda _: f"{begin}\n{text.strip()}\n{end}", current))
