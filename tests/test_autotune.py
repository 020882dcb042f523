"""hardware=auto: which settings it times, how it chooses from timings, its cache, what it leaves alone, and
what a run records. The decisions are tested on fixed inputs (fixed timings, a fixed machine); nothing here
asserts a timing."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest
import torch

import dl_core
from dl_core.data import build_bundle
from dl_core.engine import resolve_hardware, settle_hardware
from dl_core.engine.autotune import (
    Candidate,
    Machine,
    ProbeCache,
    ProbeResult,
    candidates,
    choose,
    probe,
    signature,
    thread_counts,
)
from dl_core.engine.checkpoint import load_checkpoint
from dl_core.engine.hardware import DEFAULT_THREADS, choose_precision, supports_bf16
from dl_core.models.build import build_estimator
from dl_core.runs.pipeline import train
from helpers import TINY

CPU = torch.device("cpu")
AUTO = [*(o for o in TINY if not o.startswith("hardware")), "hardware=auto"]


def machine(cores: int = 2, busy: int = 0, runs: int = 1, bf16: bool = True, device: str = "cpu") -> Machine:
    return Machine(torch.device(device), "a test CPU", cores, busy, runs, bf16)


@pytest.mark.parametrize(("cores", "busy", "runs", "expected"), [
    (2, 0, 1, [1, 2]),
    (2, 1, 1, [1]),  # one core taken by another job: a second thread would wait for it (21x slower, measured)
    (2, 2, 1, [1]),  # never fewer than one
    (16, 0, 1, [1, 2, 4, 8, 16]),
    (16, 3, 1, [1, 2, 4, 8, 13]),  # the cores left, themselves a candidate
    (16, 0, 4, [1, 2, 4]),  # four runs side by side: a quarter each
    (2, 0, 2, [1]),
])
def test_the_thread_counts_timed_on_fixed_machines(cores, busy, runs, expected):
    assert thread_counts(cores, busy, runs) == expected


def test_candidates_vary_only_what_the_config_leaves_to_auto():
    quiet = machine()
    assert candidates("auto", "auto", quiet) == [Candidate(1, "32"), Candidate(1, "bf16-mixed"),
                                                 Candidate(2, "32"), Candidate(2, "bf16-mixed")]
    assert candidates(1, "auto", quiet) == [Candidate(1, "32"), Candidate(1, "bf16-mixed")]
    assert candidates("auto", 32, quiet) == [Candidate(1, "32"), Candidate(2, "32")]
    assert candidates(2, "bf16-mixed", quiet) == [Candidate(2, "bf16-mixed")]
    # emulated bf16 is slower than fp32 everywhere: not even timed
    assert candidates("auto", "auto", machine(bf16=False)) == [Candidate(1, "32"), Candidate(2, "32")]
    # on a GPU the threads only launch kernels: torch's default shared among the runs side by side, not timed
    gpu = candidates("auto", "auto", machine(cores=16, runs=4, device="cuda"))
    assert [c.precision for c in gpu] == ["32", "bf16-mixed"]
    assert {c.threads for c in gpu} == {max(1, DEFAULT_THREADS // 4)}


def test_an_explicit_16_mixed_off_cuda_is_refused_as_before():
    with pytest.raises(dl_core.errors.ConfigError, match=r"^hardware\.precision: 16-mixed needs a CUDA GPU"):
        candidates("auto", "16-mixed", machine())


def test_the_fastest_candidate_wins_and_a_tie_goes_to_fewer_threads_then_full_precision():
    timings = {Candidate(1, "32"): 0.020, Candidate(1, "bf16-mixed"): 0.012, Candidate(2, "32"): 0.015,
               Candidate(2, "bf16-mixed"): 0.013}
    assert choose(timings) == Candidate(1, "bf16-mixed")
    assert choose({**timings, Candidate(2, "bf16-mixed"): 0.011}) == Candidate(2, "bf16-mixed")
    tie = dict.fromkeys([Candidate(2, "bf16-mixed"), Candidate(1, "bf16-mixed"), Candidate(1, "32")], 0.01)
    assert choose(tie) == Candidate(1, "32")


def tiny_run(make_cfg, *overrides: str):
    """A tiny run's config, its data and its model, as the pipeline builds them."""
    cfg = make_cfg(*AUTO, *overrides)
    hw = resolve_hardware(cfg.hardware)
    bundle = build_bundle(cfg.data)
    return cfg, hw, bundle, build_estimator(cfg.model, bundle.spec, hw, cfg.trainer.eval_batch_size)


def fixed_result(fastest: Candidate, options: list[Candidate]) -> ProbeResult:
    seconds = {c: (0.001 if c == fastest else 0.002) for c in options}
    return ProbeResult(seconds, dict.fromkeys(options, 3), 0.5, 64)


def test_a_cached_answer_decides_without_timing_and_another_load_misses(make_cfg, tmp_path):
    cfg, hw, bundle, estimator = tiny_run(make_cfg, f"hardware.probe_cache={tmp_path / 'cache'}",
                                          "hardware.probe_seconds=0.2")
    quiet = machine()
    options = candidates("auto", "auto", quiet)
    key = signature(cfg.model, bundle, 64, cfg.trainer, quiet, options, 0.2)
    cache = ProbeCache(tmp_path / "cache")
    # a choice a real probe of this tiny model would hardly make: only the cache can have given it
    cache.put(key, fixed_result(Candidate(2, "32"), options))
    settled = settle_hardware(hw, cfg.hardware, estimator, bundle, cfg.trainer, cfg.model, machine=quiet)
    assert (settled.threads, settled.precision) == (2, "32") and torch.get_num_threads() == 2
    assert settled.probe["cached"] is True and settled.probe["chosen"] == {"threads": 2, "precision": "32"}
    assert [row["samples_per_s"] for row in settled.probe["candidates"]] == [32000, 32000, 64000, 32000]
    # one other busy core: another signature (and fewer candidates), so it is timed afresh and cached beside
    busy = machine(busy=1)
    assert cache.get(signature(cfg.model, bundle, 64, cfg.trainer, busy, candidates("auto", "auto", busy),
                               0.2)) is None
    timed = settle_hardware(hw, cfg.hardware, estimator, bundle, cfg.trainer, cfg.model, machine=busy)
    assert timed.probe["cached"] is False and timed.threads == 1
    assert len(list((tmp_path / "cache").glob("*.json"))) == 2


def test_an_unreadable_cache_file_is_a_miss_and_is_rewritten(make_cfg, tmp_path):
    cfg, hw, bundle, estimator = tiny_run(make_cfg, f"hardware.probe_cache={tmp_path}", "hardware.threads=1",
                                          "hardware.probe_seconds=0.1")
    quiet = machine()
    key = signature(cfg.model, bundle, 64, cfg.trainer, quiet, candidates(1, "auto", quiet), 0.1)
    path = ProbeCache(tmp_path).path(key)
    path.write_text('{"signature": {"tor')  # a torn write of an older, non-atomic writer
    settled = settle_hardware(hw, cfg.hardware, estimator, bundle, cfg.trainer, cfg.model, machine=quiet)
    assert settled.probe["cached"] is False
    assert json.loads(path.read_text())["result"]["candidates"][0]["threads"] == 1


def test_an_unwritable_cache_costs_the_cache_not_the_run(make_cfg, tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cfg, hw, bundle, estimator = tiny_run(make_cfg, f"hardware.probe_cache={blocker / 'cache'}", "hardware.threads=1",
                                          "hardware.probe_seconds=0.1")
    settled = settle_hardware(hw, cfg.hardware, estimator, bundle, cfg.trainer, cfg.model, machine=machine())
    assert settled.precision in ("32", "bf16-mixed")
    assert "hardware.probe_cache: cannot write" in caplog.text


def write_often(path: str, n: int) -> None:
    cache = ProbeCache(path)
    options = [Candidate(1, "32"), Candidate(1, "bf16-mixed")]
    for i in range(n):
        cache.put({"key": 1}, ProbeResult(dict.fromkeys(options, 0.001 * (i + 1)), dict.fromkeys(options, 1), 0.1,
                                          2 ** 14))  # a long record: a torn one would be caught by the reader


def test_concurrent_writers_never_leave_a_torn_file(tmp_path):
    """Two processes rewrite one entry while this one reads it: every read finds a whole record."""
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=write_often, args=(str(tmp_path), 300)) for _ in range(2)]
    for writer in writers:
        writer.start()
    cache, reads, hits = ProbeCache(tmp_path), 0, 0
    while any(writer.is_alive() for writer in writers) or reads == 0:
        path = cache.path({"key": 1})
        if path.exists():
            json.loads(path.read_text())  # raises on a torn file
            hits += cache.get({"key": 1}) is not None
        reads += 1
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    assert cache.get({"key": 1}) is not None and not list(tmp_path.glob(".*.tmp"))


def test_explicit_settings_are_not_timed(make_cfg, tmp_path):
    cfg, hw, bundle, estimator = tiny_run(make_cfg, "hardware.threads=1", "hardware.precision=32",
                                          f"hardware.probe_cache={tmp_path}")
    settled = settle_hardware(hw, cfg.hardware, estimator, bundle, cfg.trainer, cfg.model, machine=machine())
    assert (settled.threads, settled.precision, settled.compile, settled.probe) == (1, "32", False, None)
    assert not list(tmp_path.iterdir())


def test_a_run_resumed_from_before_auto_timed_keeps_the_rule_it_trained_under(make_cfg, tmp_path):
    """Its saved config says precision auto, which meant bf16-mixed where native: nothing is timed."""
    cfg, hw, bundle, estimator = tiny_run(make_cfg, "hardware.threads=1", f"hardware.probe_cache={tmp_path}")
    settled = settle_hardware(hw, cfg.hardware, estimator, bundle, cfg.trainer, cfg.model, resumed=True,
                              machine=machine())
    assert settled.precision == choose_precision("cpu", supports_bf16(CPU), "auto") and settled.probe is None


def test_the_probe_leaves_the_model_its_gradients_and_the_rng_as_they_were(make_cfg):
    cfg, _, bundle, estimator = tiny_run(make_cfg)
    module = estimator.module.eval()
    before = {key: value.clone() for key, value in module.state_dict().items()}
    rng = torch.get_rng_state()
    result = probe(module, bundle, cfg.trainer, CPU, [Candidate(1, "32"), Candidate(1, "bf16-mixed")], 0.05)
    assert set(result.seconds_per_step) == {Candidate(1, "32"), Candidate(1, "bf16-mixed")}
    assert all(n >= 3 for n in result.steps.values())  # a warm-up apart, one step per turn at least
    assert torch.equal(torch.get_rng_state(), rng)
    assert not module.training and all(p.grad is None for p in module.parameters())
    for key, value in module.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_a_run_with_hardware_auto_records_its_choice_and_alternatives(make_cfg, tmp_path):
    """Recorded in metrics.json (with what it was timed against) and in the checkpoint's config, which a
    resume takes: the resumed run is not timed again and keeps the choice."""
    cfg = make_cfg(*AUTO, "trainer.max_epochs=1", "hardware.probe_seconds=0.3", f"hardware.probe_cache={tmp_path}")
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    probed = metrics.get("hardware_probe")
    options = candidates("auto", "auto", machine(probed["cores"], probed["busy_cores"]) if probed else machine(1))
    if len(options) < 2:
        pytest.skip("one core and no native bf16: nothing for auto to choose from")
    assert [Candidate(row["threads"], row["precision"]) for row in probed["candidates"]] == options
    assert probed["chosen"] == {"threads": metrics["threads"], "precision": metrics["precision"]}
    best = max(probed["candidates"], key=lambda row: row["samples_per_s"])
    assert probed["chosen"] == {"threads": best["threads"], "precision": best["precision"]}
    assert probed["cached"] is False and Path(probed["cache_file"]).is_file()
    saved = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["config"]["hardware"]
    assert (saved["threads"], str(saved["precision"]), saved["compile"]) == (metrics["threads"], metrics["precision"],
                                                                             False)
    resumed = make_cfg(*AUTO, f"trainer.resume={run_dir}", run="resumed")
    train(resumed)
    again = json.loads((run_dir / "metrics.json").read_text())
    assert "hardware_probe" not in again
    assert (again["threads"], again["precision"]) == (metrics["threads"], metrics["precision"])


def test_a_model_the_engine_does_not_train_is_not_timed(make_cfg, tmp_path):
    cache = tmp_path / "cache"
    cfg = make_cfg(*(o for o in AUTO if not o.startswith("model.")), "model=naive", f"hardware.probe_cache={cache}")
    train(cfg)
    metrics = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert metrics["precision"] == "32" and "hardware_probe" not in metrics and not cache.exists()


def test_concurrent_runs_follow_the_joblib_launcher():
    """A job of a joblib multirun knows how many run beside it (n_jobs); -1 is one per core, as joblib counts."""
    from hydra.core.hydra_config import HydraConfig

    from dl_core.engine.hardware import concurrent_runs

    assert concurrent_runs() == 1  # no Hydra job: the Python API
    for launcher, expected in ((["hydra/launcher=joblib", "hydra.launcher.n_jobs=4"], 4),
                               (["hydra/launcher=joblib", "hydra.launcher.n_jobs=-1"], os.cpu_count()),
                               ([], 1)):  # the basic launcher: one job at a time
        HydraConfig.instance().set_config(dl_core.compose(*launcher, with_hydra=True))
        try:
            assert concurrent_runs() == expected
        finally:
            HydraConfig.instance().cfg = None
