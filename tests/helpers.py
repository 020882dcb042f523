"""What the tests share besides fixtures: paths, tiny configs, composing a config, a real serve.py process.

A plain module (pytest puts tests/ on sys.path), so that test files import it once instead of importing
conftest a second time under another name.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"  # the benchmark files shipped with the repository
os.environ.setdefault("PROJECT_ROOT", str(ROOT))
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import dl_core  # noqa: E402,F401  (registers the schemas)

# Small enough to train in a second or two on one CPU core, big enough to learn something.
TINY = [
    "data.generator.length=400",
    "data.sequence_length=12",
    "model.hidden_dim=16",
    "model.num_layers=1",
    "trainer.max_epochs=3",
    "trainer.batch_size=64",
    "hardware=cpu",
    "hardware.threads=1",
]


# A one-block FT-Transformer of width 16 on a small synthetic table: seconds on one core.
TINY_TABULAR = [
    "model=ft_transformer",
    "model.n_blocks=1",
    "model.d_block=16",
    "model.attention_n_heads=2",
    "data=synthetic_tabular",
    "data.generator.n_rows=800",
    "trainer.max_epochs=12",
    "trainer.batch_size=64",
    "trainer.lr=3e-3",
    "hardware=cpu",
    "hardware.threads=1",
]


def compose_config(overrides: list[str], run_dir: Path, with_hydra: bool = False) -> DictConfig:
    """`with_hydra` keeps the `hydra` node (sweeper, launcher), as a multirun would see it."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(ROOT / "conf")):
            return compose("train", overrides=[f"paths.output_dir={run_dir}", "trainer.progress_bar=false",
                                               *overrides], return_hydra_config=with_hydra)
    finally:
        GlobalHydra.instance().clear()


@contextmanager
def serving(run_dir: Path) -> Iterator[httpx.Client]:
    """serve.py as a real process on 127.0.0.1 and a free port; yields an HTTP client bound to it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(ROOT / "serve.py"), f"run_dir={run_dir}", "host=127.0.0.1",
                             f"port={port}", "threads=1"], env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve.py did not start: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
        yield client
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=30)
