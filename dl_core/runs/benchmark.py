"""A benchmark's table from its run directories: `python -m dl_core.runs.benchmark render <sweep dir>...`.

A suite (conf/benchmark/<name>.yaml) is a multirun: `python train.py -m benchmark=ett_long` expands its grids
(dl_core/sweep/grids.py) over presets of conf/experiment/, and with `reuse=true` a job whose composed config
finished before is not trained again (dl_core/runs/reuse.py). The suite's `benchmark` node says how its runs
make a table: the config keys that set a block of rows (`setting`: file, mode, horizon), the rows (each a label
and the presets it chooses among), the metric the choice is made on (a validation metric: a test metric never
picks anything), the columns, and the published figures shown beside ours. Every figure of the table is read
from the jobs' run directories (metrics.json, the config in run.json); the renderer composes nothing and
trains nothing.

Per block and row: the candidate presets with finished runs are compared on the mean of `choose_on` over the
seeds they all ran, the best one is the row (its label names it when there were several), and its runs give
each column's mean ± sample std. The block's row with the best `choose_on` is marked as the model validation
picks. A job without metrics (failed, still running) is counted and named on the last line, never tabulated.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dl_core.errors import ConfigError, DLCoreError
from dl_core.tracking.multirun_summary import Spread, spread
from dl_core.tracking.run_index import finished_metrics, run_dirs, saved_choices, saved_config

# The file a multirun saves its composed config in (Hydra's sweepers, and hydra/sweeper=grids).
MULTIRUN_FILE = "multirun.yaml"


@dataclass(frozen=True)
class Row:
    """A row of the suite: its label, the presets (`experiment=` options) it chooses among on validation, and the
    published figure shown beside it (text: which paper, which configuration)."""

    label: str
    presets: tuple[str, ...]
    published: str | None = None


@dataclass(frozen=True)
class Suite:
    """The `benchmark` node of a suite (module docstring)."""

    name: str
    setting: dict[str, str]
    rows: tuple[Row, ...]
    choose_on: str
    direction: str
    columns: dict[str, str]
    digits: int
    published: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_config(cls, node: Any, where: str) -> Suite:
        """The suite of a composed `benchmark` node; a node that is missing or incomplete is refused by name."""
        if not isinstance(node, (dict, DictConfig)):
            raise ConfigError(f"benchmark: {where} holds no suite; render the sweep dir of "
                              f"`python train.py -m benchmark=<name>` (conf/benchmark/)")
        spec = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
        missing = [key for key in ("name", "setting", "rows", "choose_on", "columns") if spec.get(key) is None]
        if missing:
            raise ConfigError(f"benchmark.{missing[0]}: not set in {where}; every suite of conf/benchmark/ sets "
                              f"name, setting, rows, choose_on and columns")
        direction = spec.get("direction", "minimize")
        if direction not in ("minimize", "maximize"):
            raise ConfigError(f"benchmark.direction: minimize or maximize (got {direction!r})")
        rows = tuple(Row(str(row["label"]), tuple(str(p) for p in row["presets"]), row.get("published"))
                     for row in spec["rows"])
        return cls(str(spec["name"]), {str(k): str(v) for k, v in spec["setting"].items()}, rows,
                   str(spec["choose_on"]), direction, {str(k): str(v) for k, v in spec["columns"].items()},
                   int(spec.get("digits", 3)), tuple(spec.get("published") or ()))

    def row_of(self, preset: str | None) -> Row | None:
        return next((row for row in self.rows if preset in row.presets), None)

    def better(self, a: float, b: float) -> bool:
        return a < b if self.direction == "minimize" else a > b


@dataclass
class Found:
    """The finished jobs of a suite's sweep dirs by (setting, preset), and the jobs that did not finish."""

    runs: dict[tuple[tuple[Any, ...], str], list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    unfinished: list[Path] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)


def load_suite(sweep_dir: Path) -> Suite:
    """The suite a multirun ran, from the config its sweeper saved in the sweep dir."""
    path = sweep_dir / MULTIRUN_FILE
    if not path.is_file():
        raise ConfigError(f"{sweep_dir}: no {MULTIRUN_FILE}; name the sweep dir of a suite's multirun "
                          f"(outputs/benchmark_<name>/multiruns/<time>)")
    return Suite.from_config(OmegaConf.load(path).get("benchmark"), str(path))


def collect(suite: Suite, sweep_dirs: Sequence[Path]) -> Found:
    """Every job of the sweep dirs: its setting, preset, seed and metrics (those of the run it reused)."""
    found = Found()
    for sweep_dir in sweep_dirs:
        for job in run_dirs(sweep_dir):
            metrics = finished_metrics(job)
            if metrics is None:
                found.unfinished.append(job)
                continue
            preset = saved_choices(job).get("experiment")
            if suite.row_of(preset) is None:
                found.outside.append(f"{job.name} (experiment={preset})")
                continue
            config = OmegaConf.create(saved_config(job))
            setting = tuple(OmegaConf.select(config, key, default=None) for key in suite.setting.values())
            found.runs.setdefault((setting, str(preset)), []).append((int(config.seed), metrics))
    return found


def choose(suite: Suite, candidates: dict[str, list[tuple[int, dict[str, Any]]]]) -> str:
    """The candidate preset with the best mean `choose_on` over the seeds every candidate ran (over each one's
    own seeds where they share none)."""
    shared = set.intersection(*({seed for seed, _ in runs} for runs in candidates.values()))

    def score(preset: str) -> float:
        values = [m[suite.choose_on] for seed, m in candidates[preset] if not shared or seed in shared]
        if not values or any(not isinstance(v, (int, float)) for v in values):
            raise ConfigError(f"benchmark.choose_on: {suite.choose_on} is not a metric of the runs of "
                              f"experiment={preset}; name a key of their metrics.json")
        return spread(values).mean

    scores = {preset: score(preset) for preset in candidates}
    best = next(iter(scores))
    for preset, value in scores.items():
        best = preset if suite.better(value, scores[best]) else best
    return best


def _cell(runs: list[dict[str, Any]], column: str, digits: int) -> str:
    """Mean ± std of the column's metric over the runs, formatted as the column says (`key:.1f`) or to `digits`."""
    key, _, spec = column.partition(":")
    values = [run.get(key) for run in runs]
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and not math.isnan(float(v))]
    return format(spread(numbers), spec or f".{digits}f") if numbers else "–"


def table(suite: Suite, found: Found) -> str:
    """The suite's Markdown table: per block (sorted), its rows in the suite's order, then the published figures;
    below it, every candidate of the rows that chose among several, with the figure the choice was made on."""
    published_column = any(row.published for row in suite.rows)
    header = [*suite.setting, "model", "preset", "seeds", *suite.columns, "on validation",
              *(["published"] if published_column else [])]
    lines = [_markdown_row(header), _markdown_row(["---"] * len(header))]
    choices = [_markdown_row([*suite.setting, "model", "candidate", "seeds", suite.choose_on, "chosen"]),
               _markdown_row(["---"] * (len(suite.setting) + 5))]
    settings = sorted({setting for setting, _ in found.runs}, key=lambda s: tuple(map(str, s)))
    for setting in settings:
        chosen: dict[Row, tuple[str, Spread, int]] = {}
        for row in suite.rows:
            candidates = {p: found.runs[(setting, p)] for p in row.presets if (setting, p) in found.runs}
            if not candidates:
                continue
            preset = choose(suite, candidates)
            chosen[row] = (preset, spread(m[suite.choose_on] for _, m in candidates[preset]), len(candidates))
            if len(candidates) > 1:
                choices += [_markdown_row([*setting, row.label, f"`experiment={p}`", len(runs),
                                           _cell([m for _, m in runs], suite.choose_on, suite.digits),
                                           "**chosen**" if p == preset else ""]) for p, runs in candidates.items()]
        best = None
        for row, (_, score, _) in chosen.items():
            best = row if best is None or suite.better(score.mean, chosen[best][1].mean) else best
        for row, (preset, _, n_candidates) in chosen.items():
            runs = [m for _, m in found.runs[(setting, preset)]]
            label = row.label if n_candidates == 1 else f"{row.label}, best of {n_candidates} on validation"
            lines.append(_markdown_row([*setting, label, f"`experiment={preset}`", len(runs),
                                        *(_cell(runs, column, suite.digits) for column in suite.columns.values()),
                                        "**chosen**" if row == best else "",
                                        *([row.published or "–"] if published_column else [])]))
        for published in suite.published:
            if tuple(map(str, published["setting"])) == tuple(map(str, setting)):
                values = published.get("values", {})
                lines.append(_markdown_row([*setting, f"{published['label']}, published", "–", "–",
                                            *(f"{values[c]:.{suite.digits}f}" if c in values else "–"
                                              for c in suite.columns), "",
                                            *(["–"] if published_column else [])]))
    notes = [(f"Mean ± sample std over seeds. A row that chooses among presets takes the one with the best mean "
              f"`{suite.choose_on}` ({suite.direction}) over the seeds they share, and the block's **chosen** row is "
              f"picked on it too: no test figure chooses anything.")]
    if found.unfinished:
        notes.append(f"{len(found.unfinished)} job(s) without metrics, not tabulated: "
                     + ", ".join(job.name for job in found.unfinished))
    if found.outside:
        notes.append(f"{len(found.outside)} job(s) of presets no row names, not tabulated: " + ", ".join(found.outside))
    text = "\n".join(lines)
    if len(choices) > 2:
        text += "\n\nThe choices on validation:\n\n" + "\n".join(choices)
    return text + "\n\n" + "\n".join(notes)


def _markdown_row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def write_section(readme: Path, name: str, text: str) -> None:
    """Replace what lies between `<!-- benchmark:<name> -->` and `<!-- /benchmark:<name> -->` in `readme`."""
    begin, end = f"<!-- benchmark:{name} -->", f"<!-- /benchmark:{name} -->"
    current = readme.read_text()
    pattern = re.compile(rf"^{re.escape(begin)}\n.*?^{re.escape(end)}$", re.S | re.M)
    if len(pattern.findall(current)) != 1:
        raise ConfigError(f"--readme: {readme} needs one pair of lines '{begin}' ... '{end}' around the table")
    readme.write_text(pattern.sub(lambda _: f"{begin}\n{text.strip()}\n{end}", current))


def render(sweep_dirs: Sequence[Path]) -> str:
    """The table of the suite the first sweep dir ran, over the jobs of all of them (a suite run in parts)."""
    suite = load_suite(sweep_dirs[0])
    return table(suite, collect(suite, sweep_dirs))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dl_core.runs.benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    render_parser = commands.add_parser("render", help="the suite's table from its sweep dir(s)")
    render_parser.add_argument("sweep_dirs", nargs="+", type=Path)
    render_parser.add_argument("--readme", type=Path, help="also write it between the suite's markers in this file")
    args = parser.parse_args(argv)
    try:
        text = render(args.sweep_dirs)
        if args.readme:
            write_section(args.readme, load_suite(args.sweep_dirs[0]).name, text)
    except DLCoreError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(text)


if __name__ == "__main__":
    main()
