"""The run index: run.json, the fingerprint of what a run computes, `reuse=true`, and run directory names, on real
tiny train.py runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dl_core import compose
from dl_core.tracking.identity import fingerprint
from helpers import TINY, run_entry


def identity(*overrides: str) -> str:
    return fingerprint(OmegaConf.to_container(compose(*TINY, *overrides), resolve=True))


def test_the_fingerprint_ignores_where_a_run_writes_and_its_threads_not_what_it_computes(tmp_path: Path) -> None:
    base = identity()
    assert identity(f"paths.log_dir={tmp_path}", "hardware.threads=2", "task_name=other", "reuse=true") == base
    assert identity("trainer.lr=0.02") != base
    assert identity("seed=1") != base


def train(log_dir: Path, *overrides: str) -> tuple[Path, str]:
    """One tiny train.py run under `log_dir`; its run dir and its log."""
    before = set((log_dir / "train" / "runs").glob("*"))
    done = run_entry("train.py", *TINY, f"paths.log_dir={log_dir}", *overrides)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = set((log_dir / "train" / "runs").glob("*")) - before
    return run_dir, done.stdout + done.stderr


@pytest.mark.slow
def test_a_run_with_reuse_true_reads_the_finished_run_of_its_config_and_trains_nothing(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    first, _ = train(logs)
    assert first.name.endswith("_lstm_synthetic")  # the run dir says what ran: time, model, data
    record = json.loads((first / "run.json").read_text())
    assert record["choices"]["model"] == "lstm" and record["config"]["model"]["hidden_dim"] == 16
    second, log = train(logs, "reuse=true", "hardware.threads=1")
    reused = json.loads((second / "run.json").read_text())
    assert (second / reused["reused"]).resolve() == first.resolve() and reused["fingerprint"] == record["fingerprint"]
    assert "reused, not trained again" in log
    assert not (second / "metrics.json").exists() and not (second / "checkpoints").exists()
    third, _ = train(logs, "reuse=true", "seed=3")  # another config: trained
    assert (third / "metrics.json").is_file() and "reused" not in json.loads((third / "run.json").read_text())
    fourth, _ = train(logs)  # reuse is off by default: trained again
    assert (fourth / "metrics.json").is_file()
