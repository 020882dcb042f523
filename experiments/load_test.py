"""Load test of the prediction service: throughput and p50/p99 latency, small and large requests.

Starts its own `serve.py` on 127.0.0.1 (a free port), sends a bounded number of requests from
1 and from 4 concurrent clients over loopback, prints one table, and stops the server.

    python experiments/load_test.py                      # trains a quick LSTM run first
    python experiments/load_test.py --run-dir <run> --requests 300

For a time-series run a request carries history rows of one series: the small request has exactly
one window of history (one forecast), the large one 256 predictions' worth of windows.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(ROOT))
sys.path.insert(0, str(ROOT))


def quick_run(run_dir: Path) -> Path:
    """One epoch of the default LSTM on the built-in series: weights do not matter for latency."""
    from hydra import compose, initialize_config_dir

    import dl_core  # noqa: F401  (registers the schemas)
    from dl_core.pipeline import train

    with initialize_config_dir(str(ROOT / "conf")):
        cfg = compose("train", overrides=[f"paths.output_dir={run_dir}", "trainer.max_epochs=1",
                                          "trainer.progress_bar=false", "hardware=cpu", "hardware.threads=1"])
    train(cfg)
    return run_dir


def start_server(run_dir: Path, threads: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(ROOT / "serve.py"), f"run_dir={run_dir}", "host=127.0.0.1",
                             f"port={port}", f"threads={threads}"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("serve.py did not come up")


def payloads(url: str) -> dict[str, tuple[dict, int]]:
    """Request bodies keyed by label, with the number of predictions each returns."""
    meta = httpx.get(f"{url}/metadata").json()
    names = [f["name"] for f in meta["features"]]
    rng = np.random.default_rng(0)
    if meta["task"] != "forecast":
        frame = pd.DataFrame({n: rng.normal(size=256) for n in names})
        rows = frame.to_dict("records")
        return {"1 row": ({"rows": rows[:1]}, 1), "256 rows": ({"rows": rows}, 256)}
    length, horizon = meta["sequence_length"], meta["horizon"]
    n = length + 256 + horizon - 2  # 255 complete windows + the forecast window
    frame = pd.DataFrame({column: rng.normal(size=n) for column in names})
    for column in meta["entity_columns"]:
        frame[column] = "s0"
    if meta["timestamp_column"]:
        frame[meta["timestamp_column"]] = pd.date_range("2024-01-01", periods=n, freq="h").astype(str)
    rows = frame[names].to_dict("records")
    return {f"1 prediction ({length} rows)": ({"rows": rows[-length:]}, 1),
            f"256 predictions ({n} rows)": ({"rows": rows}, 256)}


def measure(url: str, body: dict, requests: int, concurrency: int) -> dict[str, float]:
    with httpx.Client(base_url=url, timeout=60) as warm:
        for _ in range(5):
            warm.post("/predict", json=body).raise_for_status()

    def worker(count: int) -> list[float]:
        latencies = []
        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(count):
                tick = time.perf_counter()
                client.post("/predict", json=body).raise_for_status()
                latencies.append(time.perf_counter() - tick)
        return latencies

    shares = [requests // concurrency + (i < requests % concurrency) for i in range(concurrency)]
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = np.concatenate([np.array(part) for part in pool.map(worker, shares)])
    wall = time.perf_counter() - start
    return {"req_per_s": requests / wall, "p50_ms": 1e3 * np.percentile(latencies, 50),
            "p99_ms": 1e3 * np.percentile(latencies, 99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, help="a trained run (default: train a quick one)")
    parser.add_argument("--requests", type=int, default=200, help="requests per measurement (bounded)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run_dir or quick_run(Path(tmp) / "run")
        proc, url = start_server(run_dir, args.threads)
        try:
            results = []
            for label, (body, predictions) in payloads(url).items():
                for concurrency in (1, 4):
                    stats = measure(url, body, args.requests, concurrency)
                    results.append({"request": label, "clients": concurrency, "requests": args.requests,
                                    **stats, "predictions_per_s": stats["req_per_s"] * predictions})
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    table = pd.DataFrame(results)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))


if __name__ == "__main__":
    main()
