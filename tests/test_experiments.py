"""experiments/common.py, the one way the experiment scripts launch, reuse and report runs, and the
scripts built on it (real runs through the dl_core API, in a runs folder under tmp_path)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from helpers import ROOT, TINY, run_entry

sys.path.insert(0, str(ROOT / "experiments"))  # experiments/ is a folder of scripts, not a package
import common

# Every script of experiments/ (they run only by hand, so importing them is what tells that they still load).
SCRIPTS = sorted(path.stem for path in (ROOT / "experiments").glob("*.py") if path.stem != "common")


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(common.RUNS_ENV, str(tmp_path / "runs"))
    return tmp_path / "runs"


def tiny_run(*extra: str) -> common.Run:
    return common.Run("study", (*TINY, *extra))


def test_a_run_is_named_by_a_hash_of_its_overrides_in_order(runs: Path) -> None:
    # A fixed value: the name must not change between interpreters (Python's hash() does).
    assert common.run_key(["a=1", "b=2"]) == "55c420c0f44ea4c6"
    assert common.run_key(["b=2", "a=1"]) != common.run_key(["a=1", "b=2"])  # a later override of a key wins
    assert common.Run("s", ("a=1", "b=2")).run_dir == runs / "s" / "55c420c0f44ea4c6"


def test_a_finished_run_is_read_back_not_trained_again(runs: Path) -> None:
    run = tiny_run()
    first = common.launch(run)
    written = (run.run_dir / "metrics.json").stat().st_mtime_ns
    assert json.loads((run.run_dir / "overrides.json").read_text()) == list(run.overrides)
    assert common.launch(run) == first
    assert (run.run_dir / "metrics.json").stat().st_mtime_ns == written
    assert tiny_run("seed=1").run_dir != run.run_dir


def test_a_run_killed_after_its_last_checkpoint_continues_from_it(runs: Path, caplog: pytest.LogCaptureFixture) -> None:
    run = tiny_run()
    finished = common.launch(run)
    (run.run_dir / "metrics.json").unlink()  # killed before the final evaluation was written
    with caplog.at_level(logging.INFO, logger="dl_core.runs.pipeline"):
        again = common.launch(run)
    assert any(record.getMessage().startswith("resuming") for record in caplog.records)
    assert {k: again[k] for k in ("epochs", "test_mse", "val_loss")} == \
        {k: finished[k] for k in ("epochs", "test_mse", "val_loss")}


def test_launch_all_trains_the_unfinished_runs_in_worker_processes(runs: Path) -> None:
    done, todo = tiny_run("seed=1"), [tiny_run("seed=2"), tiny_run("seed=3")]
    common.launch(done)
    metrics = common.launch_all([done, *todo], workers=2)
    assert len(metrics) == 3 and all(run.finished for run in todo)
    assert metrics[1] == todo[0].metrics() and metrics[1] != metrics[2]  # in the order given


def test_spread_is_the_mean_and_sample_std_and_formats_like_a_float() -> None:
    three = common.spread([1.0, 2.0, 3.0])
    assert (three.mean, three.std, three.n) == (2.0, 1.0, 3)
    assert f"{three:.3f}" == "2.000 ± 1.000"
    assert f"{common.spread([0.4794]):.2f}" == "0.48"  # one seed: no spread to show
    with pytest.raises(ValueError, match="no values"):
        common.spread([])


def test_markdown_table() -> None:
    assert common.markdown_table(["a", "b"], [[1, "x"], [2.5, ""]], right_aligned=True) == \
        "| a | b |\n|---:|---:|\n| 1 | x |\n| 2.5 |  |"


def test_write_section_replaces_only_the_text_between_its_markers(tmp_path: Path) -> None:
    begin, end = common.section_markers("demo")
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nProse before.\n\n{begin}\nold table\n{end}\n\nProse after.\n")
    common.write_section("demo", "new table\n\nwith a line", readme)
    common.write_section("demo", "newer table", readme)
    assert readme.read_text() == f"# Title\n\nProse before.\n\n{begin}\nnewer table\n{end}\n\nProse after.\n"
    readme.write_text("# No markers\n")
    with pytest.raises(SystemExit, match="begin demo"):
        common.write_section("demo", "table", readme)


def test_a_row_with_recipes_takes_the_one_lowest_on_validation_for_all_its_seeds(runs: Path) -> None:
    """DLinear's recipe is chosen on seed 0's validation MSE alone (never test), and the row's other seeds run
    that recipe; a row none of whose recipes finished is left out of a tabulation."""
    import ett_benchmark as bench

    row, other = ("dlinear", "ETTh2", "M", 96), ("dlinear", "ETTh1", "M", 96)
    for recipe, (val, test) in zip(bench.RECIPES["dlinear"].values(),
                                   [(0.30, 0.1), (0.20, 0.9), (0.25, 0.0), (0.40, 0.2)], strict=True):
        for seed in (0, 1):
            run = common.Run("study", (*bench.overrides(*row, seed), *recipe))
            run.run_dir.mkdir(parents=True)
            (run.run_dir / "metrics.json").write_text(json.dumps({"val_mse_scaled": val + seed,
                                                                  "test_mse_scaled": test + seed}))
    found, recipes = bench.results([(row, 0), (row, 1), (other, 0)], "study", [], workers=1, train=False)
    assert recipes == {row: "lr 0.05, cosine"}
    assert [m["test_mse_scaled"] for m in found[row]] == [0.9, 1.9] and other not in found


def test_the_readme_has_one_section_for_each_script_that_writes_one() -> None:
    text = (ROOT / "experiments" / "README.md").read_text()
    for name in ("ett_benchmark", "california_ft_transformer", "california_tabular", "covariates_synthetic",
                 "ett_probabilistic"):
        begin, end = common.section_markers(name)
        assert text.count(begin) == 1 and text.count(end) == 1 and text.index(begin) < text.index(end)
    assert "ANCHORS" not in text


def test_every_script_imports() -> None:
    """What the scripts import of dl_core still exists (they run only by hand, so nothing else would tell)."""
    done = run_entry("-c", f"import {', '.join(SCRIPTS)}", cwd=ROOT / "experiments")
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_california_smoke_writes_its_section_from_the_runs(runs: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    begin, end = common.section_markers("california_ft_transformer")
    readme.write_text(f"Prose.\n\n{begin}\n{end}\n")
    done = run_entry("experiments/california_ft_transformer.py", "--smoke", "--paper-features", "--seeds", "0", "1",
                     "--readme", str(readme), "--", "trainer.max_epochs=1")
    assert done.returncode == 0, done.stderr[-3000:]
    seeds = [common.Run("california_ft_transformer_smoke", tuple(json.loads(path.read_text())))
             for path in sorted((runs / "california_ft_transformer_smoke").glob("*/overrides.json"))]
    assert len(seeds) == 2 and all(run.finished for run in seeds)
    rmse = common.spread(run.metrics()["test_rmse"] for run in seeds)
    text = readme.read_text()
    assert text.startswith(f"Prose.\n\n{begin}\n```bash\npython experiments/california_ft_transformer.py --smoke")
    assert f"**{rmse:.4f}**" in text and f"Mean test RMSE {rmse:.4f} over 2 seeds" in text
    assert all(run.metrics()["epochs"] == 1 for run in seeds)  # the overrides after -- reach every run


@pytest.mark.slow
def test_seeds_packed_side_by_side_score_as_seeds_one_after_another(tmp_path: Path) -> None:
    """Two seeds as one joblib multirun (each job knows it shares the machine: hydra.launcher.n_jobs) and as a
    multirun of one job at a time: the same test MSE per seed, to the last bit (CPU, fixed threads)."""
    done = run_entry("experiments/packed_seeds.py", "--smoke", "--rtol", "0", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "largest relative difference of test_mse: 0.0e+00" in done.stdout
    logs = [path.read_text() for path in (tmp_path / "packed").glob("*/train.log")]  # job dirs: <num>_<label>
    assert len(logs) == 2 and all("2 runs side by side on this machine (hydra.launcher.n_jobs)" in log for log in logs)
    # The per-series table finds a multirun's jobs by those names (it once looked for <num> alone, and found none).
    import series_table

    rows = series_table.table(tmp_path / "packed").splitlines()[2:]
    assert len(rows) == 2 and all(row.startswith("| lstm | global | ") for row in rows)
