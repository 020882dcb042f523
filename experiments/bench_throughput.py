"""Training throughput of the engine against its compute floor, side by side in one process.

Variants, all training the same initial weights with the same AdamW, gradient clipping (norm 1.0),
batch size and precision, and all running one validation pass per epoch:
  floor       bare loop over pre-built tensors, batches sliced with a permuted index
  engine      `dl_core.engine.fit` on a DataBundle, checkpointing as configured (best + last every epoch)
  dataloader  the usual hand-written loop over `DataLoader(TensorDataset, shuffle=True)`
  lightning   `lightning.Trainer` on a LightningModule around the same model (when installed)

Each measurement is the wall time of `--epochs` epochs on `--train-samples` samples, setup included,
after one untimed warm-up epoch per setting. The CPU is shared, so the variants run in short
interleaved repeats (rotating order) and the table reports medians.

    python experiments/bench_throughput.py --threads 1     # --smoke: tiny sizes, to check the script
    python experiments/bench_throughput.py --threads 1 --cases patchtst --batch-sizes 128
    python experiments/bench_throughput.py --device cuda --cases lstm patchtst --batch-sizes 128 --train-samples 8192

On a GPU every variant starts from the same tensors already on the device (the engine's bundle too,
as train.py moves it), and each measurement ends with a synchronisation, so the clock stops when the
last kernel has.

The engine variant calls `dl_core.engine.fit` itself (what is measured is the engine, not a whole
run), so unlike the other scripts this one imports dl_core's internals.
"""

from __future__ import annotations

import argparse
import copy
import functools
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

import dl_core
from common import ROOT, markdown_header, markdown_row
from dl_core.data import build_bundle
from dl_core.data.bundle import DataBundle
from dl_core.engine import FitContext, Hardware, fit
from dl_core.engine.loop import clip_gradients, parameter_groups
from dl_core.models.build import build_model
from dl_core.models.outputs import MEMBERS
from dl_core.task import LossFn, Regression
from dl_core.task.base import members_loss

DATA = ROOT / "data"
GRAD_CLIP = 1.0
LR = 1e-3


@dataclass
class Case:
    """One model on one data set: its bundle (for the engine), the same samples as plain tensors, and the
    training loss the bare loops compute (the engine takes it from the task and the model's output kind)."""

    name: str
    make_model: Callable[[], nn.Module]
    bundle: DataBundle
    train: tuple[tuple[torch.Tensor, ...], torch.Tensor]
    val: tuple[tuple[torch.Tensor, ...], torch.Tensor]
    loss: LossFn = F.mse_loss

    def to(self, device: torch.device) -> Case:
        def move(rows):
            inputs, target = rows
            return tuple(t.to(device) for t in inputs), target.to(device)

        return Case(self.name, self.make_model, self.bundle.to(device), move(self.train), move(self.val), self.loss)


class TensorSplit:
    """Minimal `dl_core.data.bundle.Split` over pre-built tensors (California's features, target)."""

    def __init__(self, features: tuple[torch.Tensor, ...], target: torch.Tensor):
        self.features, self.target = features, target

    def __len__(self) -> int:
        return len(self.target)

    def inputs(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(t[idx] for t in self.features)

    def batch(self, idx: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        return self.inputs(idx), self.target[idx]

    def to(self, device: torch.device) -> TensorSplit:
        return TensorSplit(tuple(t.to(device) for t in self.features), self.target.to(device))

    def targets(self) -> torch.Tensor:
        return self.target


@functools.lru_cache
def trainer_config(batch_size: int, epochs: int):
    """Composed once per setting and outside the timed region: composing is not training."""
    cfg = dl_core.compose(f"trainer.batch_size={batch_size}", f"trainer.max_epochs={epochs}",
                          f"trainer.patience={epochs + 1}", "trainer.progress_bar=false",
                          f"trainer.grad_clip={GRAD_CLIP}", f"trainer.lr={LR}")
    return cfg.trainer


def all_rows(split) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """Materialise every sample of a split (the floor and DataLoader variants start from these)."""
    return split.batch(torch.arange(len(split)))


def first_windows(bundle: DataBundle, n_train: int, n_val: int) -> DataBundle:
    """The bundle cut to its first n_train training and n_val validation (and test) windows."""
    splits = {name: type(split)(split.x, split.y, split.starts[:n], split.sequence_length, split.horizon, split.keys)
              for (name, split), n in zip(bundle.splits.items(), (n_train, n_val, n_val), strict=True)}
    return DataBundle(bundle.task, splits, bundle.spec, bundle.preprocessor)


def lstm_case(n_train: int, n_val: int) -> Case:
    """ETTh1 through the csv_timeseries data config: L=60, all 7 columns in, OT out."""
    cfg = dl_core.compose("data=csv_timeseries", "data.path=${paths.data_dir}/ETTh1.csv", "data.timestamp_column=date",
                          "data.target_column=OT", "data.sequence_length=60")
    bundle = first_windows(build_bundle(cfg.data), n_train, n_val)

    def make_model() -> nn.Module:
        return build_model(cfg.model, bundle.spec)  # model=lstm's defaults: 2 layers of 64

    return Case("LSTM", make_model, bundle, all_rows(bundle.splits["train"]), all_rows(bundle.splits["val"]))


def patchtst_case(n_train: int, n_val: int) -> Case:
    """ETTh1 as `experiment=ett_patchtst` reads it: all 7 channels, L=336, H=96, PatchTST/42 of the preset."""
    cfg = dl_core.compose("experiment=ett_patchtst")
    bundle = first_windows(build_bundle(cfg.data), n_train, n_val)

    def make_model() -> nn.Module:
        return build_model(cfg.model, bundle.spec)

    return Case("PatchTST", make_model, bundle, all_rows(bundle.splits["train"]), all_rows(bundle.splits["val"]))


def california_tensors(n_train: int, n_val: int) -> tuple[TensorSplit, TensorSplit, int]:
    """California Housing: 8 standardised numeric features + ocean_proximity, standardised target; the
    training and validation splits and the number of categories."""
    frame = pd.read_csv(DATA / "california_housing.csv").sample(frac=1.0, random_state=0)
    numeric = frame.drop(columns=["median_house_value", "ocean_proximity"])
    numeric = numeric.fillna(numeric.median())
    x = torch.tensor(((numeric - numeric.mean()) / numeric.std()).to_numpy(np.float32))
    codes, categories = pd.factorize(frame["ocean_proximity"])
    x_cat = torch.tensor(codes, dtype=torch.int64).unsqueeze(1)
    target = frame["median_house_value"].to_numpy(np.float32)
    y = torch.tensor((target - target.mean()) / target.std()).unsqueeze(1)
    train = TensorSplit((x[:n_train], x_cat[:n_train]), y[:n_train])
    val = TensorSplit((x[n_train:n_train + n_val], x_cat[n_train:n_train + n_val]), y[n_train:n_train + n_val])
    return train, val, len(categories)


def california_case(n_train: int, n_val: int) -> Case:
    """FT-Transformer, rtdl's default configuration, on California."""
    from rtdl_revisiting_models import FTTransformer

    train, val, n_categories = california_tensors(n_train, n_val)
    bundle = DataBundle(Regression(), {"train": train, "val": val, "test": val}, {}, None)

    def make_model() -> nn.Module:
        return FTTransformer(n_cont_features=train.features[0].shape[1], cat_cardinalities=[n_categories], d_out=1,
                             **FTTransformer.get_default_kwargs())

    return Case("FT-Transformer", make_model, bundle, all_rows(train), all_rows(val))


def tabm_case(n_train: int, n_val: int) -> Case:
    """TabM as experiment=california_tabm configures it (k members trained on the mean of their losses,
    averaged in eval mode), on California."""
    train, val, n_categories = california_tensors(n_train, n_val)
    bundle = DataBundle(Regression().with_outputs(MEMBERS), {"train": train, "val": val, "test": val}, {}, None)
    preset = dl_core.compose("experiment=california_tabm").model
    spec = {"n_cont_features": train.features[0].shape[1], "cat_cardinalities": [n_categories], "d_out": 1,
            "predicts_classes": False, "x_num_train": train.features[0]}

    def make_model() -> nn.Module:
        return build_model(preset, spec)

    return Case(f"TabM ({preset.arch_type}, k={preset.k}, {preset.n_blocks}x{preset.d_block}, "
                f"{preset.num_embeddings} embeddings)", make_model, bundle, all_rows(train), all_rows(val),
                members_loss(F.mse_loss))


def autocast(precision: str, device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, inputs, target, precision: str,
               loss_fn: LossFn) -> torch.Tensor:
    with autocast(precision, target.device):
        output = model(*inputs)
    loss = loss_fn(output.float(), target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    clip_gradients(model, GRAD_CLIP)
    optimizer.step()
    return loss.detach()


@torch.no_grad()
def validate(model: nn.Module, val, precision: str, batch_size: int = 1024) -> float:
    model.eval()
    inputs, target = val
    outputs = []
    for start in range(0, len(target), batch_size):
        with autocast(precision, target.device):
            outputs.append(model(*(t[start:start + batch_size] for t in inputs)).float())
    model.train()
    return float(F.mse_loss(torch.cat(outputs), target))


def run_floor(model: nn.Module, case: Case, batch_size: int, precision: str, epochs: int) -> None:
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.0), lr=LR)
    inputs, target = case.train
    shuffle = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(target), generator=shuffle).to(target.device)
        for start in range(0, len(target), batch_size):
            idx = perm[start:start + batch_size]
            train_step(model, optimizer, tuple(t[idx] for t in inputs), target[idx], precision, case.loss)
        validate(model, case.val, precision)


def run_dataloader(model: nn.Module, case: Case, batch_size: int, precision: str, epochs: int) -> None:
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.0), lr=LR)
    inputs, target = case.train
    loader = DataLoader(TensorDataset(*inputs, target), batch_size=batch_size, shuffle=True)
    model.train()
    for _ in range(epochs):
        for *batch_inputs, batch_target in loader:
            train_step(model, optimizer, batch_inputs, batch_target, precision, case.loss)
        validate(model, case.val, precision)


def run_engine(model: nn.Module, case: Case, batch_size: int, precision: str, epochs: int) -> None:
    hw = Hardware(case.train[1].device, precision, torch.get_num_threads(), False)
    with tempfile.TemporaryDirectory() as run_dir:
        fit(model, case.bundle, FitContext(trainer_config(batch_size, epochs), hw, Path(run_dir), 0, {}))


def run_lightning(model: nn.Module, case: Case, batch_size: int, precision: str, epochs: int) -> None:
    import lightning as L

    class Module(L.LightningModule):
        def __init__(self, net: nn.Module):
            super().__init__()
            self.net = net

        def training_step(self, batch, _):
            *inputs, target = batch
            return case.loss(self.net(*inputs).float(), target)

        def validation_step(self, batch, _):
            *inputs, target = batch
            self.log("val_loss", F.mse_loss(self.net(*inputs).float(), target))

        def configure_optimizers(self):
            return torch.optim.AdamW(parameter_groups(self.net, 0.0), lr=LR)

    inputs, target = case.train
    val_inputs, val_target = case.val
    train_loader = DataLoader(TensorDataset(*inputs, target), batch_size=batch_size, shuffle=True)
    val_loader = DataLoader(TensorDataset(*val_inputs, val_target), batch_size=1024)
    with tempfile.TemporaryDirectory() as run_dir:
        accelerator = "gpu" if target.is_cuda else "cpu"
        trainer = L.Trainer(max_epochs=epochs, accelerator=accelerator, devices=1, precision=precision,
                            gradient_clip_val=GRAD_CLIP, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                            default_root_dir=run_dir)
        trainer.fit(Module(model), train_loader, val_loader)


def lightning_available() -> bool:
    try:
        import lightning  # noqa: F401
    except ImportError:
        return False
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    return True


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(case: Case, batch_size: int, precision: str, epochs: int, repeats: int,
            variants: dict[str, Callable]) -> dict[str, float]:
    """Median training samples/s per variant, from interleaved repeats with a rotating order."""
    device = case.train[1].device
    torch.manual_seed(0)
    trainer_config(batch_size, epochs)
    initial = case.make_model().state_dict()
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    run_floor(case.make_model().to(device), case, batch_size, precision, 1)  # warm-up: kernels for these shapes
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            model = case.make_model()
            model.load_state_dict(copy.deepcopy(initial))
            model.to(device)
            torch.manual_seed(1)
            synchronize(device)
            tick = time.perf_counter()
            variants[name](model, case, batch_size, precision, epochs)
            synchronize(device)
            times[name].append(time.perf_counter() - tick)
    n = len(case.train[1]) * epochs
    return {name: n / statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (a GPU)")
    parser.add_argument("--train-samples", type=int, default=2048)
    parser.add_argument("--val-samples", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--precisions", nargs="+", default=["32", "bf16-mixed"])
    parser.add_argument("--cases", nargs="+", default=["lstm", "ft_transformer", "tabm", "patchtst"])
    parser.add_argument("--smoke", action="store_true", help="256 samples, one repeat, batch 64, fp32")
    args = parser.parse_args()
    if args.smoke:
        args.train_samples, args.val_samples, args.repeats = 256, 128, 1
        args.batch_sizes, args.precisions = [64], ["32"]
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    variants: dict[str, Callable] = {"floor": run_floor, "engine": run_engine, "dataloader": run_dataloader}
    if lightning_available():
        variants["lightning"] = run_lightning
    builders = {"lstm": lstm_case, "ft_transformer": california_case, "tabm": tabm_case, "patchtst": patchtst_case}
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{args.threads} CPU thread(s)"
    print(f"torch {torch.__version__}, {where}, {args.train_samples} train samples x "
          f"{args.epochs} epochs, median of {args.repeats} interleaved repeats")
    others = [v for v in variants if v != "floor"]
    print(markdown_header(["model", "batch", "precision", "floor samples/s", *(f"{v}/floor" for v in others)]))
    for key in args.cases:
        case = builders[key](args.train_samples, args.val_samples).to(device)
        for batch_size in args.batch_sizes:
            for precision in args.precisions:
                rates = measure(case, batch_size, precision, args.epochs, args.repeats, variants)
                print(markdown_row([case.name, batch_size, precision, f"{rates['floor']:.0f}",
                                    *(f"{rates[v] / rates['floor']:.2f}" for v in others)]), flush=True)


if __name__ == "__main__":
    main()
