"""The benchmark suites (conf/benchmark/): rows from presets only, grids expanded as the suite says, and the table
rendered from real tiny run directories of `train.py -m benchmark=ett_long`, with finished runs reused."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dl_core import compose
from dl_core.errors import ConfigError
from dl_core.runs.benchmark import Suite
from dl_core.sweep.grids import expand
from dl_core.tracking.identity import fingerprint
from helpers import ROOT, run_entry

SUITES = sorted(path.stem for path in (ROOT / "conf" / "benchmark").glob("*.yaml"))
PRESETS = {str(path.relative_to(ROOT / "conf" / "experiment").with_suffix(""))
           for path in (ROOT / "conf" / "experiment").rglob("*.yaml")}
# What a suite may set besides its grids and its table: how its runs are launched and shown, never what a model
# is or how it trains (that is a preset's: conf/experiment/).
SUITE_KEYS = {"defaults", "task_name", "reuse", "hardware", "trainer", "hydra", "benchmark"}
SUITE_DEFAULTS = {"override /hydra/sweeper", "override /hardware", "override /data", "_self_"}
SUITE_VALUES = {"hardware": {"threads"}, "trainer": {"progress_bar"}, "hydra": {"sweeper"}}


def suite_jobs(name: str, *arguments: str) -> tuple[Suite, list[dict[str, str]]]:
    cfg = compose(f"benchmark={name}", with_hydra=True)
    sweeper = cfg.hydra.sweeper
    jobs = expand({str(k): str(v) for k, v in sweeper.params.items()},
                  [{str(k): str(v) for k, v in grid.items()} for grid in sweeper.grids], arguments)
    return Suite.from_config(cfg.benchmark, name), [dict(o.split("=", 1) for o in job) for job in jobs]


@pytest.mark.parametrize("name", SUITES)
def test_a_suites_rows_come_from_presets_only(name: str) -> None:
    """A suite names presets, data files, horizons and seeds: no model or training setting of its own, so the
    configuration behind every figure of its table is a preset anyone can read and run."""
    raw = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "benchmark" / f"{name}.yaml"))
    assert set(raw) <= SUITE_KEYS, set(raw) - SUITE_KEYS
    for key, allowed in SUITE_VALUES.items():
        assert set(raw.get(key, {})) <= allowed, (key, raw[key])
    defaults = {next(iter(entry)) if isinstance(entry, dict) else entry for entry in raw["defaults"]}
    assert defaults <= SUITE_DEFAULTS, defaults - SUITE_DEFAULTS
    suite, jobs = suite_jobs(name)
    axes = {"experiment", "seed", *suite.setting.values()}
    assert jobs and all(set(job) <= axes for job in jobs), [set(job) - axes for job in jobs]
    rows = {preset for row in suite.rows for preset in row.presets}
    assert rows <= PRESETS, rows - PRESETS
    assert {job["experiment"] for job in jobs} == rows  # every job is a row's, every row has jobs
    settings = {tuple(job[key] for key in suite.setting.values()) for job in jobs}
    published = {tuple(map(str, entry["setting"])) for entry in suite.published}
    assert published <= settings, published - settings  # a published figure stands beside a row of ours


def test_the_ett_suite_is_the_published_grid() -> None:
    """Three seeds at H=96, one at the longer horizons, the deterministic naive forecast once per setting."""
    _, jobs = suite_jobs("ett_long")
    count = {}
    for job in jobs:
        key = (job["experiment"], job["data.name"], job["data.horizon"])
        count[key] = count.get(key, 0) + 1
    assert count[("ett_dlinear", "ETTh2", "96")] == 3 and count[("ett/dlinear_lr05", "ETTh1", "720")] == 1
    assert count[("ett_naive", "ETTh1", "96")] == 1 and count[("ett/lstm_ci_336", "ETTh2", "336")] == 1
    assert len(jobs) == len({tuple(sorted(job.items())) for job in jobs})  # no job twice


def test_an_axis_on_the_command_line_replaces_it_in_every_grid() -> None:
    _, jobs = suite_jobs("ett_long", "data.name=ETTh2", "data.horizon=192", "seed=4", "experiment=ett_naive")
    assert jobs == [{"data.name": "ETTh2", "data.features": "M", "experiment": "ett_naive", "data.horizon": "192",
                     "seed": "4"}]


def test_grids_are_a_union_without_repeats_and_refuse_ranges() -> None:
    jobs = expand({"seed": "0,1"}, [{"a": "x"}, {"a": "x,y"}], [])
    assert jobs == [["seed=0", "a=x"], ["seed=1", "a=x"], ["seed=0", "a=y"], ["seed=1", "a=y"]]
    with pytest.raises(ConfigError, match=r"^lr: hydra/sweeper=grids takes lists of values"):
        expand({}, [{"lr": "interval(0.1, 1.0)"}], [])


def test_a_suite_without_its_table_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"^benchmark.choose_on: not set in here"):
        Suite.from_config({"name": "x", "setting": {}, "rows": [], "columns": {}}, "here")


# A tiny ETT suite: the real presets (naive, DLinear and one of its recipes) on a few hundred rows of ETTh1, mode M,
# one epoch, two seeds; every axis given here replaces the suite's own.
TINY_SUITE = ("benchmark=ett_long", "experiment=ett_naive,ett_dlinear,ett/dlinear_lr05", "data.name=ETTh1",
              "data.features=M", "data.horizon=96", "seed=0,1", "trainer=tiny", "trainer.max_epochs=1",
              "hardware=cpu1", "data.sequence_length=24", "data.split.train_rows=400", "data.split.val_rows=150",
              "data.split.test_rows=150")


def run_suite(tmp_path: Path, sweep: str) -> Path:
    sweep_dir = tmp_path / "logs" / sweep  # under paths.log_dir, whose index a rerun looks its configs up in
    done = run_entry("train.py", "-m", *TINY_SUITE, f"paths.log_dir={tmp_path / 'logs'}",
                     f"hydra.sweep.dir={sweep_dir}", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return sweep_dir


def render(*sweep_dirs: Path) -> str:
    done = run_entry("-m", "dl_core.runs.benchmark", "render", *map(str, sweep_dirs))
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def job_metrics(sweep_dir: Path) -> dict[str, list[dict]]:
    """Each preset's metrics.json files, read by the test itself from the job folders (named <n>_<model>_<data>)."""
    found: dict[str, list[dict]] = {}
    for job in sorted(sweep_dir.glob("[0-9]*_*_ETTh1")):
        record = json.loads((job / "run.json").read_text())
        target = job / record.get("reused", ".")
        found.setdefault(record["choices"]["experiment"], []).append(json.loads((target / "metrics.json").read_text()))
    return found


@pytest.mark.slow
def test_a_tiny_suite_renders_its_table_from_its_runs_and_a_rerun_trains_nothing(tmp_path: Path) -> None:
    first = run_suite(tmp_path, "first")
    assert sorted(path.name for path in first.glob("[0-9]*")) == [
        "0_naive_ETTh1", "1_naive_ETTh1", "2_dlinear_ETTh1", "3_dlinear_ETTh1", "4_dlinear_ETTh1", "5_dlinear_ETTh1"]
    found = job_metrics(first)
    table = render(first)
    lines = {line.split(" | ")[3]: line for line in table.splitlines() if line.startswith("| ETTh1 | M | 96 |")}
    val = {preset: statistics.fmean(m["val_mse_scaled"] for m in runs) for preset, runs in found.items()}
    chosen = min(("ett_dlinear", "ett/dlinear_lr05"), key=val.get)  # on validation, whatever test says
    dlinear = lines["DLinear (ours), best of 2 on validation"]
    assert f"`experiment={chosen}`" in dlinear
    test = [m["test_mse_scaled"] for m in found[chosen]]
    assert f"{statistics.fmean(test):.3f} ± {statistics.stdev(test):.3f}" in dlinear
    best_row = min(("naive (repeat last value)", "DLinear (ours), best of 2 on validation"),
                   key=lambda label: val["ett_naive" if label.startswith("naive") else chosen])
    assert lines[best_row].endswith("| **chosen** |")
    assert "| DLinear (Zeng et al. 2023), published | – | – | – | 0.375 | 0.399 |" in table
    readme = tmp_path / "README.md"  # --readme writes the table between the suite's markers, and nothing else
    readme.write_text((ROOT / "experiments" / "README.md").read_text())
    written = run_entry("-m", "dl_core.runs.benchmark", "render", str(first), "--readme", str(readme))
    assert written.returncode == 0, written.stderr[-3000:]
    text = readme.read_text()
    assert f"<!-- benchmark:ett_long -->\n{table.strip()}\n<!-- /benchmark:ett_long -->" in text
    assert text.replace(table.strip() + "\n", "") == (ROOT / "experiments" / "README.md").read_text()

    second = run_suite(tmp_path, "second")  # the same composed configs: every job reuses the first's run
    for job in sorted(second.glob("[0-9]*_*")):
        record = json.loads((job / "run.json").read_text())
        assert (job / record["reused"]).resolve().parent == first.resolve(), job
        assert not (job / "metrics.json").exists() and not (job / "checkpoints").exists()
    assert render(second).split("\n\n")[0] == table.split("\n\n")[0]


def fingerprint_of(*overrides: str) -> str:
    return fingerprint(OmegaConf.to_container(compose(*overrides), resolve=True))


@pytest.mark.slow
def test_the_suites_presets_compose_the_configs_the_published_tables_were_made_with(monkeypatch) -> None:
    """Each preset of a suite, with the suite's settings, is the very config the scripts of experiments/ trained
    for the tables of experiments/README.md (their overrides), so a suite run reproduces those figures."""
    monkeypatch.syspath_prepend(str(ROOT / "experiments"))
    import california_tabular
    import ett_benchmark

    ett = ["benchmark=ett_long", "data.name=ETTh2", "data.features=M", "data.horizon=192", "seed=1"]
    recipes = ett_benchmark.RECIPES["dlinear"]
    scripts = {"ett_naive": ("naive", []), "ett_dlinear": ("dlinear", []),
               "ett/dlinear_lr05": ("dlinear", recipes["lr 0.05, cosine"]),
               "ett/dlinear_halving": ("dlinear", recipes["lr 0.005, halved per epoch"]),
               "ett/dlinear_lr05_halving": ("dlinear", recipes["lr 0.05, halved per epoch"]),
               "ett_patchtst": ("patchtst", []), "ett/lstm_ci": ("lstm_ci", []), "ett/lstm_ci_336": ("lstm_ci_336", [])}
    suite, _ = suite_jobs("ett_long")
    assert set(scripts) == {preset for row in suite.rows for preset in row.presets}
    for preset, (model, recipe) in scripts.items():
        script = fingerprint_of(*ett_benchmark.overrides(model, "ETTh2", "M", 192, 1), *recipe)
        assert fingerprint_of(f"experiment={preset}", *ett) == script, preset

    table = ["hardware=cpu", "hardware.threads=1", "hardware.precision=32"]  # the California table's command line
    for preset, data in [("california_mlp", None), ("california_catboost", None),
                         ("california/catboost_raw", "california_housing"),
                         ("california/xgboost_raw", "california_housing"),
                         ("california/lightgbm_raw", "california_housing")]:
        model = preset.split("/")[-1].removeprefix("california_").removesuffix("_raw")
        (run,) = california_tabular.runs_of(model, [2], False, [*table, *([f"data={data}"] if data else [])])
        assert fingerprint_of("benchmark=california", f"experiment={preset}", "seed=2") == fingerprint_of(
            *run.overrides), preset


@pytest.mark.slow
def test_the_quantile_and_covariate_suites_compose_their_scripts_configs(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "experiments"))
    import covariates_synthetic
    import ett_probabilistic

    ett = {"ett_dlinear": "dlinear", "ett/dlinear_quantiles": "dlinear_q", "ett/lstm_revin": "lstm",
           "ett/lstm_revin_quantiles": "lstm_q", "ett/lstm_revin_quantiles_calendar": "lstm_q_calendar",
           "ett/patchtst_30": "patchtst", "ett/patchtst_30_quantiles": "patchtst_q"}
    covariates = {"covariates/none": "none", "covariates/future": "future", "covariates/static": "static",
                  "covariates_lstm": "both", "covariates/normal": "normal", "covariates/student_t": "student_t",
                  "covariates/point_none": "point_none", "covariates/point": "point_both"}
    for suite, rows, script in [("ett_probabilistic", ett, ett_probabilistic), ("covariates", covariates,
                                                                                 covariates_synthetic)]:
        found, jobs = suite_jobs(suite)
        assert set(rows) == {preset for row in found.rows for preset in row.presets}
        for preset, name in rows.items():
            (job,) = [job for job in jobs if job["experiment"] == preset and job["seed"] == "1"]
            assert fingerprint_of(f"benchmark={suite}", *(f"{k}={v}" for k, v in job.items())) == fingerprint_of(
                *script.overrides(name, 1)), preset
