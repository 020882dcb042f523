"""What `torch.compile` gives a training step on this machine: compile time, eager against compiled step time,
and the epochs a run would need to pay the compile back.

For each experiment, its config, data and model as `train.py` builds them; two copies of the model from the
same weights, one eager and one wrapped in `torch.compile` (as the engine wraps it, `hardware.compile=true`).
The compiled copy's first steps are timed apart (they compile: forward and backward graphs); then both copies
train the run's own batches through the loop's `train_step`, alternating in turns of `--turn-steps` steps, so
load changes fall on both; the table shows median step times. Inductor's on-disk cache is a fresh directory
unless `--inductor-cache` names one: the first run pays a cold compile, a later run with the same directory
(a sweep's next trial) a warm one.

    python experiments/bench_compile.py --threads 1 --precisions 32 bf16-mixed     # PatchTST and FT-Transformer
    python experiments/bench_compile.py --experiments ett_patchtst --inductor-cache /tmp/inductor   # twice: warm
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
import warnings

import torch

import dl_core
from common import markdown_header, markdown_row
from dl_core.data import build_bundle
from dl_core.engine import Hardware
from dl_core.engine.loop import parameter_groups, train_step
from dl_core.models.build import build_model
from dl_core.models.outputs import declared_kind


def timed_steps(net, batches, loss_fn, optimizer, hw: Hardware, trainer) -> list[float]:
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    times = []
    for batch in batches:
        tick = time.perf_counter()
        train_step(net, batch, loss_fn, optimizer, scaler, trainer.grad_clip, hw)
        times.append(time.perf_counter() - tick)
    return times


def measure(experiment: str, precision: str, threads: int, turns: int, turn_steps: int) -> list[object]:
    cfg = dl_core.compose(*([] if experiment == "default" else [f"experiment={experiment}"]))
    torch.manual_seed(0)
    bundle = build_bundle(cfg.data)
    model = build_model(cfg.model, bundle.spec)
    split, batch_size = bundle.splits["train"], int(cfg.trainer.batch_size)
    draw = torch.Generator().manual_seed(0)

    def batches(n: int):
        return [split.batch(torch.randperm(len(split), generator=draw)[:batch_size]) for _ in range(n)]

    hw = Hardware(torch.device("cpu"), precision, threads, False)
    loss_fn = bundle.task.with_outputs(declared_kind(model)).loss()
    eager, compiled = copy.deepcopy(model).train(), copy.deepcopy(model).train()
    optimizers = {name: torch.optim.AdamW(parameter_groups(m, cfg.trainer.weight_decay), lr=cfg.trainer.lr)
                  for name, m in (("eager", eager), ("compiled", compiled))}
    net = torch.compile(compiled)
    timed_steps(eager, batches(2), loss_fn, optimizers["eager"], hw, cfg.trainer)
    tick = time.perf_counter()
    first = timed_steps(net, batches(2), loss_fn, optimizers["compiled"], hw, cfg.trainer)
    compile_s = time.perf_counter() - tick - first[-1]  # the second step runs compiled code only
    steps: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(turns):
        steps["eager"] += timed_steps(eager, batches(turn_steps), loss_fn, optimizers["eager"], hw, cfg.trainer)
        steps["compiled"] += timed_steps(net, batches(turn_steps), loss_fn, optimizers["compiled"], hw, cfg.trainer)
    step_s = {name: statistics.median(times) for name, times in steps.items()}
    per_epoch = -(-len(split) // batch_size)
    gain_per_epoch = (step_s["eager"] - step_s["compiled"]) * per_epoch
    payback = f"{compile_s / gain_per_epoch:.1f}" if gain_per_epoch > 0 else "never"
    return [experiment, precision, threads, batch_size, f"{compile_s:.1f}", f"{step_s['eager'] * 1e3:.1f}",
            f"{step_s['compiled'] * 1e3:.1f}", f"{step_s['eager'] / step_s['compiled']:.2f}",
            f"{step_s['eager'] * per_epoch:.1f}", f"{step_s['compiled'] * per_epoch:.1f}", payback]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", nargs="+", default=["ett_patchtst", "california_ft_transformer"],
                        help="experiment presets, or default (the default job)")
    parser.add_argument("--precisions", nargs="+", default=["32", "bf16-mixed"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--turn-steps", type=int, default=3)
    parser.add_argument("--inductor-cache", help="inductor's cache directory (default: a fresh one, cold)")
    args = parser.parse_args()
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = args.inductor_cache or tempfile.mkdtemp(prefix="inductor_")
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), inductor cache "
          f"{os.environ['TORCHINDUCTOR_CACHE_DIR']}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(markdown_header(["experiment", "precision", "threads", "batch", "compile s", "eager ms/step",
                           "compiled ms/step", "compiled speed-up", "eager s/epoch", "compiled s/epoch",
                           "epochs to pay back"]))
    for experiment in args.experiments:
        for precision in args.precisions:
            print(markdown_row(measure(experiment, precision, args.threads, args.turns, args.turn_steps)), flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
