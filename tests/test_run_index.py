"""The run index: run.json, the fingerprint of what a run computes, `reuse=true`, and run directory names, on real
tiny train.py runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dl_core import compose
from dl_core.runs.pipeline import train as train_in_process
from dl_core.tracking.identity import fingerprint
from helpers import TINY, run_entry

# One xdist worker runs the whole module, so that the four train.py runs of `runs` are made once, not once per
# worker that runs one of its tests.
pytestmark = pytest.mark.xdist_group("test_run_index")


def identity(*overrides: str) -> str:
    return fingerprint(OmegaConf.to_container(compose(*TINY, *overrides), resolve=True))


def test_the_fingerprint_ignores_where_a_run_writes_and_its_threads_not_what_it_computes(tmp_path: Path) -> None:
    base = identity()
    assert identity(f"paths.log_dir={tmp_path}", "hardware.threads=2", "task_name=other", "reuse=true") == base
    assert identity(f"hardware.probe_cache={tmp_path}") == base  # where hardware=auto keeps its answers
    assert identity("trainer.lr=0.02") != base
    assert identity("seed=1") != base


def train(log_dir: Path, *overrides: str) -> tuple[Path, str]:
    """One tiny train.py run under `log_dir`; its run dir and its log."""
    before = set((log_dir / "train" / "runs").glob("*"))
    done = run_entry("train.py", *TINY, f"paths.log_dir={log_dir}", *overrides)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = set((log_dir / "train" / "runs").glob("*")) - before
    return run_dir, done.stdout + done.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], list[str]]:
    """Four tiny runs in one log dir: a first run, a rerun with reuse=true, another seed with reuse=true, and a rerun
    without it; their dirs and logs."""
    logs = tmp_path_factory.mktemp("index") / "logs"
    made = [train(logs), train(logs, "reuse=true", "hardware.threads=1"), train(logs, "reuse=true", "seed=3"),
            train(logs)]
    return logs, [run_dir for run_dir, _ in made], [log for _, log in made]


@pytest.mark.slow
def test_a_run_with_reuse_true_reads_the_finished_run_of_its_config_and_trains_nothing(runs) -> None:
    _, (first, second, third, fourth), logs = runs
    assert first.name.endswith("_lstm_synthetic")  # the run dir says what ran: time, model, data
    record = json.loads((first / "run.json").read_text())
    assert record["choices"]["model"] == "lstm" and record["config"]["model"]["hidden_dim"] == 16
    reused = json.loads((second / "run.json").read_text())
    assert (second / reused["reused"]).resolve() == first.resolve() and reused["fingerprint"] == record["fingerprint"]
    assert "reused, not trained again" in logs[1]
    assert not (second / "metrics.json").exists() and not (second / "checkpoints").exists()
    assert (third / "metrics.json").is_file() and "reused" not in json.loads((third / "run.json").read_text())
    assert (fourth / "metrics.json").is_file()  # reuse is off by default: trained again


@pytest.mark.slow
def test_list_shows_every_finished_run_and_compare_the_keys_two_runs_differ_in(runs, tmp_path: Path) -> None:
    logs, (first, second, third, _), _ = runs
    listed = run_entry("-m", "dl_core.runs", "list", str(logs))
    assert listed.returncode == 0, listed.stderr
    lines = [line for line in listed.stdout.splitlines() if "_lstm_synthetic" in line]
    assert len(lines) == 4 and sum("(reused)" in line for line in lines) == 1
    metrics = json.loads((third / "metrics.json").read_text())
    (line,) = [line for line in lines if third.name in line]
    assert "| lstm | synthetic | 3 |" in line and f"val_loss {metrics['val_loss']:.4g}" in line

    plot = tmp_path / "compare.png"
    compared = run_entry("-m", "dl_core.runs", "compare", str(first), str(second), str(third), "--plot", str(plot))
    assert compared.returncode == 0, compared.stderr
    header, _, *rows = compared.stdout.splitlines()[:5]
    assert header.startswith("| run | seed | val_loss | test_") and len(rows) == 3  # seed: the only difference
    first_metrics = json.loads((first / "metrics.json").read_text())
    assert rows[1].startswith(f"| {second.name} | 42 | {first_metrics['val_loss']:.4g} |")  # through the reused run
    assert rows[2].startswith(f"| {third.name} | 3 | {metrics['val_loss']:.4g} |")
    assert plot.stat().st_size > 1000

    missing = run_entry("-m", "dl_core.runs", "compare", str(first), "--metrics", "nope")
    assert missing.returncode == 2 and missing.stderr.startswith("error: --metrics: no run has nope")


def test_a_resumed_run_keeps_the_fingerprint_it_started_with(make_cfg) -> None:
    """The checkpoint's config holds what the run resolved (hardware=auto's precision and compile, the batch
    size): a resume computes what the run's composed config asked, so its run.json and index entry keep the
    fingerprint of that config, where a later `reuse=true` run of the same command looks."""
    auto = [*(o for o in TINY if not o.startswith("hardware")), "hardware=auto", "hardware.threads=1"]
    cfg = make_cfg(*auto, "trainer.max_epochs=1")
    train_in_process(cfg)
    run_dir = Path(cfg.paths.output_dir)
    started = json.loads((run_dir / "run.json").read_text())["fingerprint"]
    assert started == fingerprint(OmegaConf.to_container(make_cfg(*auto, "trainer.max_epochs=1"), resolve=True))
    train_in_process(make_cfg(*auto, f"trainer.resume={run_dir}", run="resumed"))
    assert json.loads((run_dir / "run.json").read_text())["fingerprint"] == started
