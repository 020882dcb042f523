"""`hardware=auto`: the CPU threads and the precision that train this model fastest on this machine, as it is now.

No rule gets this right for every model: on one CPU bf16-mixed trained the LSTM 1.65x faster and PatchTST
slower; a second thread slowed a small LSTM down on a quiet machine and made an FT-Transformer epoch 21x
slower beside one other busy job; on a GPU bf16 lost 6-8 % for small, launch-bound models
(experiments/README.md). So the candidates are timed: each trains a few steps of the run's own model on
the run's own batches through the loop's own `train_step` (forward, backward, clipping, optimizer; eager,
as a run without `hardware.compile` trains), after one untimed warm-up step. They take short turns in
rounds, so a change of load falls on all of them alike, and the fastest median step wins. The model, its
gradients and the RNG are left exactly as they were: the run then trains as it would have with the
winning settings given explicitly.

Candidates: precision `32`, and `bf16-mixed` where the device computes bf16 natively (emulated bf16 is
slower than fp32 everywhere); threads (on the CPU; on a GPU they only launch kernels and follow
`hardware.rule_threads`) 1 and the powers of two up to the cores this run may use: its cores, divided among
the runs a joblib launcher starts beside it, less the cores other processes keep busy now. More threads
than idle cores is what made that FT-Transformer epoch 21x slower (a thread waits for a core another
process holds), so such counts are not even tried. A setting the config gives explicitly is not timed.

The answer is cached per model signature (model config, input shapes, batch size, loss, torch version,
CPU model or GPU name, core count, busy cores, runs side by side, candidates): a sweep or a seeds multirun
pays the probe once, and a run started while another job is busy gets its own answer. One file per key,
written to a temporary file and renamed over, so concurrent runs never read a torn file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import nn

from dl_core.data.bundle import DataBundle, Split
from dl_core.engine.estimator import Estimator, TorchEstimator
from dl_core.engine.hardware import Hardware, choose_precision, rule_threads, supports_bf16, usable_cores
from dl_core.engine.loop import parameter_groups, train_step

log = logging.getLogger(__name__)

# Bumped when the probe measures differently, so that answers of an older probe are not reused.
PROBE_VERSION = 1
MIN_ROUNDS = 3  # timed turns per candidate at least, however slow its steps: a median of three survives one bad turn
TURN_S = 0.05  # the shortest turn: fast models take many turns within the budget
PRECISIONS = ("32", "bf16-mixed")


@dataclass(frozen=True, order=True)
class Candidate:
    """One setting hardware=auto may choose: fewer threads and full precision first (the tie-break)."""

    threads: int
    precision: str

    def label(self) -> str:
        return f"{self.threads} thread{'s' if self.threads > 1 else ''}, {self.precision}"


@dataclass(frozen=True)
class Machine:
    """What the probe's answer depends on besides the model: which processor, how many of its cores this run
    may use, how many of those other processes keep busy, and how many runs the launcher starts side by side."""

    device: torch.device
    processor: str
    cores: int
    busy_cores: int
    concurrent_runs: int
    native_bf16: bool


def thread_counts(cores: int, busy_cores: int, concurrent_runs: int) -> list[int]:
    """1 and the powers of two up to the cores this run has to itself (its share of the machine's cores among
    the runs side by side, less those busy with other work), and that count itself."""
    usable = max(1, cores // max(1, concurrent_runs) - busy_cores)
    counts = [1]
    while counts[-1] * 2 <= usable:
        counts.append(counts[-1] * 2)
    return sorted({*counts, usable})


def candidates(requested_threads: int | str | None, requested_precision: int | str,
               machine: Machine) -> list[Candidate]:
    """The settings to time: every combination of the thread counts and precisions the config leaves to auto,
    with what it fixes held fixed. One candidate means nothing to choose (and nothing to time)."""
    requested_precision = str(requested_precision)  # the schema's int 32 is "32" like the other names
    if requested_threads == "auto" and machine.device.type == "cpu":
        threads = thread_counts(machine.cores, machine.busy_cores, machine.concurrent_runs)
    else:
        threads = [rule_threads(requested_threads, machine.concurrent_runs)]
    if requested_precision == "auto":
        precisions = [p for p in PRECISIONS if p == "32" or machine.native_bf16]
    else:
        precisions = [choose_precision(machine.device.type, machine.native_bf16, requested_precision)]
    return sorted(Candidate(t, p) for t in threads for p in precisions)


def choose(seconds_per_step: dict[Candidate, float]) -> Candidate:
    """The fastest candidate; an exact tie goes to fewer threads, then full precision."""
    return min(seconds_per_step, key=lambda candidate: (seconds_per_step[candidate], candidate))


@dataclass(frozen=True)
class ProbeResult:
    """Median seconds per training step of each candidate, by which clock, and the cost of finding out."""

    seconds_per_step: dict[Candidate, float]
    steps: dict[Candidate, int]
    probe_s: float
    batch_size: int
    clock: str = "wall"  # or "thread" (CPU time of the training thread)

    @property
    def chosen(self) -> Candidate:
        return choose(self.seconds_per_step)

    def to_json(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "probe_s": round(self.probe_s, 3), "clock": self.clock,
                "candidates": [{**asdict(c), "samples_per_s": round(self.batch_size / s, 2), "steps": self.steps[c]}
                               for c, s in sorted(self.seconds_per_step.items())]}

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> ProbeResult:
        rows = record["candidates"]
        batch = record["batch_size"]
        return cls({Candidate(r["threads"], r["precision"]): batch / r["samples_per_s"] for r in rows},
                   {Candidate(r["threads"], r["precision"]): r["steps"] for r in rows}, record["probe_s"], batch,
                   record["clock"])


def time_candidates(step: Callable[[Candidate], None], options: Sequence[Candidate], budget_s: float,
                    synchronize: Callable[[], None], batch_size: int, thread_clock: bool = False) -> ProbeResult:
    """Time `step` under each candidate: one untimed warm-up step each (first calls build kernels and thread
    pools), then rounds of turns in rotating order, each turn at least one step and `TURN_S` seconds, until the
    budget is spent and at least `MIN_ROUNDS` rounds are done. A candidate's figure is the median of its turns'
    mean step times: many short turns side by side, so that a burst of another process's work spoils a few turns
    of every candidate rather than all of one. The device is synchronised around each turn only, as the loop
    never waits for it between steps. With `thread_clock` the turns are measured in this thread's CPU time
    (the budget is wall time either way)."""
    clock = time.thread_time if thread_clock else time.perf_counter
    tick = time.perf_counter()
    turns: dict[Candidate, list[float]] = {c: [] for c in options}
    steps = dict.fromkeys(options, 0)
    threads = torch.get_num_threads()
    try:
        for candidate in options:
            torch.set_num_threads(candidate.threads)
            step(candidate)
        r = 0
        while r < MIN_ROUNDS or time.perf_counter() - tick < budget_s:
            for candidate in [*options[r % len(options):], *options[:r % len(options)]]:
                torch.set_num_threads(candidate.threads)
                synchronize()
                start, started, n = time.perf_counter(), clock(), 0
                while n == 0 or time.perf_counter() - start < TURN_S:
                    step(candidate)
                    n += 1
                synchronize()
                turns[candidate].append((clock() - started) / n)
                steps[candidate] += n
            r += 1
    finally:
        torch.set_num_threads(threads)
    return ProbeResult({c: statistics.median(t) for c, t in turns.items()}, steps, time.perf_counter() - tick,
                       batch_size, "thread" if thread_clock else "wall")


def probe(module: nn.Module, bundle: DataBundle, trainer: Any, device: torch.device, options: Sequence[Candidate],
          budget_s: float) -> ProbeResult:
    """Time training steps of `module` on its own training batches under each candidate, and leave the module,
    its gradients, its train/eval mode and every RNG as they were."""
    split: Split = bundle.splits["train"]
    batch_size = min(int(trainer.batch_size), len(split))
    loss_fn = bundle.task.loss()
    saved = {key: value.to("cpu", copy=True) for key, value in module.state_dict().items()}
    was_training = module.training
    draw = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(parameter_groups(module, trainer.weight_decay), lr=trainer.lr)
    scaler = torch.amp.GradScaler(device.type, enabled=False)

    def step(candidate: Candidate) -> None:
        hw = Hardware(device, candidate.precision, candidate.threads, False)
        idx = torch.randperm(len(split), generator=draw)[:batch_size].to(device)
        train_step(module, split.batch(idx), loss_fn, optimizer, scaler, trainer.grad_clip, hw)

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    # One thread each on a CPU: its own CPU time ranks them as wall time would, without the noise of sharing
    # the cores with other processes (the loaded case, where every candidate has one thread).
    single = device.type == "cpu" and all(c.threads == 1 for c in options)
    module.train()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            return time_candidates(step, options, budget_s, synchronize, batch_size, single)
    finally:
        module.load_state_dict(saved)
        module.zero_grad(set_to_none=True)
        module.train(was_training)


def signature(model: Any, bundle: DataBundle, batch_size: int, trainer: Any, machine: Machine,
              options: Sequence[Candidate], budget_s: float) -> dict[str, Any]:
    """What the probe's answer depends on (`model` is the run's conf/model): the same signature finds the same
    answer in the cache."""
    split = bundle.splits["train"]
    inputs, target = split.batch(torch.arange(min(2, len(split)), device=machine.device))
    shapes = [None if t is None else [list(t.shape[1:]), str(t.dtype)] for t in (*inputs, target)]
    return {"probe_version": PROBE_VERSION, "model": OmegaConf.to_container(model, resolve=True),
            "inputs": shapes, "batch_size": batch_size, "task": type(bundle.task).__name__,
            "grad_clip": trainer.grad_clip is not None,
            "torch": torch.__version__, "device": machine.device.type, "processor": machine.processor,
            "cores": machine.cores, "busy_cores": machine.busy_cores, "concurrent_runs": machine.concurrent_runs,
            "candidates": [asdict(c) for c in options], "budget_s": budget_s}


class ProbeCache:
    """Probe answers in `directory`, one JSON file per signature. A missing, unreadable or stale file is a miss;
    a directory that cannot be written costs the cache, not the run (a warning says so)."""

    def __init__(self, directory: str | Path | None):
        self.directory = None if directory is None else Path(directory)

    def path(self, key: dict[str, Any]) -> Path | None:
        if self.directory is None:
            return None
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]
        return self.directory / f"{digest}.json"

    def get(self, key: dict[str, Any]) -> ProbeResult | None:
        path = self.path(key)
        try:
            record = json.loads(path.read_text()) if path is not None else None
            if record is None or record.get("signature") != json.loads(json.dumps(key, default=str)):
                return None
            return ProbeResult.from_json(record["result"])
        except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
            return None

    def put(self, key: dict[str, Any], result: ProbeResult) -> None:
        path = self.path(key)
        if path is None:
            return
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"signature": key, "result": result.to_json(),
                                       "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1, default=str))
            os.replace(tmp, path)
        except OSError as err:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            log.warning("hardware.probe_cache: cannot write %s (%s); the next run probes again", path, err.strerror)


def processor_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name (/proc/cpuinfo on Linux)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def busy_cores(interval_s: float = 0.25) -> int:
    """How many of this process's cores other processes keep busy now: their busy share over `interval_s`
    (from /proc/stat), summed and rounded. Now, not the load average, whose minute-long memory would hide a
    job started seconds ago. 0 where /proc/stat is missing (not Linux)."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    before, own = _cpu_times(cores), time.process_time()
    if not before:
        return 0
    time.sleep(interval_s)
    after, own = _cpu_times(cores), time.process_time() - own
    busy = 0.0
    for cpu, (busy_before, total_before) in before.items():
        busy_after, total_after = after[cpu]
        busy += (busy_after - busy_before) / max(1, total_after - total_before)
    return max(0, round(busy - own / interval_s))


def _cpu_times(cores: Sequence[int]) -> dict[int, tuple[int, int]]:
    """cpu -> (busy jiffies, all jiffies) from /proc/stat, for the given cpus (iowait counts as idle)."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return {}
    times = {}
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores:
            ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
            times[int(name[3:])] = (sum(ticks) - ticks[3] - ticks[4], sum(ticks))
    return times


def describe_machine(device: torch.device, concurrent_runs: int) -> Machine:
    return Machine(device, processor_name(device), usable_cores(), busy_cores() if device.type == "cpu" else 0,
                   concurrent_runs, supports_bf16(device))


def settle_hardware(hw: Hardware, cfg: Any, estimator: Estimator, bundle: DataBundle, trainer: Any, model: Any, *,
                    concurrent_runs: int = 1, distributed: bool = False, resumed: bool = False,
                    machine: Machine | None = None) -> Hardware:
    """The hardware the run trains with: what `cfg` (conf/hardware) fixes, and for what it leaves to `auto`, the
    probe's answer (from the cache where this signature was probed before); torch's thread count is set to it.

    `trainer` is the run's conf/trainer (its batch size resolved), `model` its conf/model (in the signature);
    `machine` is this machine now unless given. Nothing is timed where nothing is left to choose; nor for a
    model the epoch engine does not train (trees, or one without trainable parameters), which runs in full
    precision; nor under DDP, where every rank must train alike and `choose_precision`'s rule decides. A
    resumed run's config holds what its first start chose; one saved before auto timed anything says `auto`
    and keeps that rule, which it trained under.
    """
    module = estimator.module if isinstance(estimator, TorchEstimator) else None
    precision = str(cfg.precision)
    if precision == "auto" and (distributed or resumed):
        precision = choose_precision(hw.device.type, supports_bf16(hw.device), precision)
    if distributed or not _trainable(module):
        return _applied(replace(hw, precision="32" if precision == "auto" else precision))
    machine = machine or describe_machine(hw.device, concurrent_runs)
    options = candidates(cfg.threads, precision, machine)
    if len(options) == 1:
        return _applied(replace(hw, precision=options[0].precision, threads=options[0].threads))
    budget = float(cfg.probe_seconds)
    key = signature(model, bundle, int(trainer.batch_size), trainer, machine, options, budget)
    cache = ProbeCache(cfg.probe_cache)
    result = cache.get(key)
    cached = result is not None
    if result is None:
        result = probe(module, bundle, trainer, hw.device, options, budget)
        cache.put(key, result)
    chosen = result.chosen
    where = cache.path(key)
    record = {"chosen": asdict(chosen), **result.to_json(), "cached": cached, "cores": machine.cores,
              "busy_cores": machine.busy_cores, "concurrent_runs": machine.concurrent_runs,
              "cache_file": None if where is None else str(where)}
    rates = ", ".join(f"{c.label()} {result.batch_size / s:.0f}" for c, s in sorted(result.seconds_per_step.items()))
    how = f"as cached in {where}" if cached else f"timed in {result.probe_s:.1f} s"
    per = " per CPU second" if result.clock == "thread" else ""
    log.info("hardware=auto: %s (training samples/s%s, %s: %s; %d of %d cores busy with other work, %d run(s) "
             "side by side)", chosen.label(), per, how, rates, machine.busy_cores, machine.cores,
             machine.concurrent_runs)
    return _applied(replace(hw, precision=chosen.precision, threads=chosen.threads, probe=record))


def _applied(hw: Hardware) -> Hardware:
    torch.set_num_threads(hw.threads)
    return hw


def _trainable(module: nn.Module | None) -> bool:
    return module is not None and any(p.requires_grad for p in module.parameters())

