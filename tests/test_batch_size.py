"""trainer.batch_size=auto: the search on its own, and the CPU and GPU paths end to end through train()."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
import yaml

from dl_core.data import build_bundle
from dl_core.engine import resolve_hardware
from dl_core.engine.batch_size import DEFAULT_BATCH_SIZE, largest_batch, search_batch_size
from dl_core.engine.checkpoint import load_checkpoint, seed_everything
from dl_core.models.build import build_model
from dl_core.runs.pipeline import train
from helpers import ROOT, TINY, TINY_GPU, TINY_TABULAR, needs_gpu


def probe_log(limit_that_fits: int) -> tuple[list[int], Callable[[int], bool]]:
    tried: list[int] = []

    def fits(size: int) -> bool:
        tried.append(size)
        return size <= limit_that_fits

    return tried, fits


def test_largest_batch_doubles_until_out_of_memory_and_keeps_the_last_fit():
    tried, fits = probe_log(300)
    assert largest_batch(fits, 32, 10_000) == 256
    assert tried == [32, 64, 128, 256, 512]


def test_largest_batch_never_exceeds_the_split():
    _, fits = probe_log(10_000)
    assert largest_batch(fits, 32, 100) == 100


def test_largest_batch_backs_off_below_the_start_when_the_start_does_not_fit():
    _, fits = probe_log(20)
    assert largest_batch(fits, 32, 10_000) == 16


def test_auto_batch_size_on_cpu_keeps_the_default_and_records_it(make_cfg):
    cfg = make_cfg(*TINY, "trainer.batch_size=auto", "trainer.max_epochs=1")
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["batch_size"] == DEFAULT_BATCH_SIZE == 32
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["config"]["trainer"]["batch_size"] == 32


@needs_gpu
def test_auto_batch_size_on_a_gpu_searches_and_trains_with_what_it_found(make_cfg):
    """The tiny split (a few hundred windows) fits on any GPU at once, so the search doubles from the default
    up to the whole split, and the run trains and is saved with that batch."""
    cfg = make_cfg(*TINY_GPU, "trainer.batch_size=auto", "trainer.max_epochs=1")
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["device"].startswith("cuda")
    assert metrics["batch_size"] == metrics["n_train_samples"] > DEFAULT_BATCH_SIZE
    saved = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["config"]["trainer"]["batch_size"]
    assert saved == metrics["batch_size"]


def test_auto_batch_search_on_binary_classification_with_a_memory_wall(make_cfg):
    """The search as it runs on CUDA, here on the CPU with a memory wall above 100 samples: the probe's
    forward + loss + backward are real (binary classification's loss once raised IndexError there, as it
    was called without the model's output size), only the out-of-memory error is simulated."""
    cfg = make_cfg(*TINY_TABULAR, "data.task=classification", "data.generator.n_classes=2")
    seed_everything(cfg.seed)
    bundle = build_bundle(cfg.data)
    model = build_model(cfg.model, bundle.spec)
    assert bundle.spec["d_out"] == 1  # one logit: the loss is binary cross-entropy
    probed: list[int] = []

    def memory_wall(module, inputs):
        probed.append(inputs[0].shape[0])
        if inputs[0].shape[0] > 100:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    model.register_forward_pre_hook(memory_wall)
    weights = {name: p.clone() for name, p in model.state_dict().items()}
    rng = torch.get_rng_state()
    assert search_batch_size(model, bundle, resolve_hardware(cfg.hardware)) == 64
    assert probed == [32, 64, 128]
    # probing leaves the run as it was: no gradients, the same weights and RNG state
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(weights[name], p) for name, p in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())


def test_the_default_batch_size_has_one_source(make_cfg):
    """`auto` off CUDA returns the schema's default; a YAML restating another value would contradict it."""
    for path in (ROOT / "conf" / "trainer").glob("*.yaml"):
        assert "batch_size" not in (yaml.safe_load(path.read_text()) or {}), path
    assert make_cfg().trainer.batch_size == DEFAULT_BATCH_SIZE
