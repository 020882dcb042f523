"""What the tests share besides fixtures: paths, tiny configs, starting the repository's scripts, a real
serve.py process. Configs are composed with `dl_core.compose`, the API users have.

A plain module (pytest puts tests/ on sys.path), so that test files import it once instead of importing
conftest a second time under another name.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"  # the benchmark files shipped with the repository

# Small enough to train in a second or two on one CPU core, big enough to learn something. The training settings
# every test shares are presets of the config tree: trainer=tiny (3 epochs, no progress bar), hardware=cpu1.
TINY = [
    "data.generator.length=400",
    "data.sequence_length=12",
    "model.hidden_dim=16",
    "model.num_layers=1",
    "trainer=tiny",
    "trainer.batch_size=64",
    "hardware=cpu1",
]


# The tiny LSTM on a CUDA GPU at the preset's precision (bf16-mixed where supported). Tests that use it carry
# `needs_gpu`: they run where a GPU is visible (`pytest tests -k gpu` on such a machine) and are skipped on CI,
# which has none.
TINY_GPU = [*(override for override in TINY if not override.startswith("hardware")), "hardware=gpu"]
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


# A one-block FT-Transformer of width 16 on a small synthetic table: seconds on one core.
TINY_TABULAR = [
    "model=ft_transformer",
    "model.n_blocks=1",
    "model.d_block=16",
    "model.attention_n_heads=2",
    "data=synthetic_tabular",
    "data.generator.n_rows=800",
    "trainer=tiny",
    "trainer.max_epochs=12",
    "trainer.batch_size=64",
    "trainer.lr=3e-3",
    "hardware=cpu1",
]


def entry_env(root: Path = ROOT) -> dict[str, str]:
    """The environment of every script a test starts: `root`'s dl_core importable (tests/ too, for test-only
    Hydra callbacks) ahead of any PYTHONPATH the suite was given (packages installed there, as on a machine
    whose environment cannot be changed), its PROJECT_ROOT, W&B offline and quiet."""
    path = [str(root), str(ROOT / "tests"), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), "PROJECT_ROOT": str(root),
            "WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def entry_command(script: str | Path, args: tuple[str, ...]) -> list[str]:
    """`script` is a file relative to the repository (train.py), an absolute path, or `-m`/`-c` and its operand."""
    head = str(script) if str(script).startswith("-") or Path(script).is_absolute() else str(ROOT / script)
    return [sys.executable, head, *args]


def run_entry(script: str | Path, *args: str, cwd: Path = ROOT, timeout: float = 300,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a script to its end and capture its text output; the test reads the exit status itself."""
    return subprocess.run(entry_command(script, args), cwd=cwd, env=env or entry_env(), capture_output=True,
                          text=True, timeout=timeout, check=False)


def start_entry(script: str | Path, *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None,
                stdout: int = subprocess.DEVNULL, stderr: int = subprocess.PIPE) -> subprocess.Popen[str]:
    """Start a script and return at once, for tests that signal, kill or race it."""
    return subprocess.Popen(entry_command(script, args), cwd=cwd, env=env or entry_env(), stdout=stdout,
                            stderr=stderr, text=True)


@contextmanager
def serving(run_dir: Path, *overrides: str) -> Iterator[httpx.Client]:
    """serve.py (with `overrides`) as a real process on 127.0.0.1 and a free port; yields an HTTP client bound
    to it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = start_entry("serve.py", f"run_dir={run_dir}", "host=127.0.0.1", f"port={port}", "threads=1", *overrides)
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
                raise RuntimeError(f"serve.py did not start: {proc.stderr.read()[-2000:]}")
            time.sleep(0.2)
        yield client
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=30)


def served_forecast(response: httpx.Response) -> pd.DataFrame:
    """A /predict forecast answer as predict.py's CSV reads back: dates as dates, `actual` (null beyond a series'
    last row) as floats."""
    assert response.status_code == 200, response.text
    served = pd.DataFrame(response.json()["predictions"])
    return served.assign(timestamp=pd.to_datetime(served["timestamp"]), actual=served["actual"].astype(float))


JSON = {"content-type": "application/json"}


def with_token(rows: list[dict], token: str) -> str:
    """The request's JSON text with each "@" cell written as `token` verbatim: Python's parser reads
    Infinity, NaN and 1e400, which a strict JSON writer never produces."""
    return json.dumps({"rows": rows}).replace('"@"', token)


def strict_json(text: str) -> Any:
    """Parse as strict JSON, in which NaN and Infinity are not values."""
    def refuse(token: str) -> None:
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def connection(response: httpx.Response) -> tuple[str, int]:
    """The client's address of the TCP connection that carried `response`."""
    return response.extensions["network_stream"].get_extra_info("client_addr")
