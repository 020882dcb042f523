"""Load test of the prediction service: throughput and p50/p99 latency, then a mixed burst of bad requests.

Starts its own `serve.py` on 127.0.0.1 (a free port), sends a bounded number of requests from
1 and from 4 concurrent clients over loopback and prints their table, runs the burst and prints its
tables, and stops the server.

    python experiments/load_test.py                      # trains a quick LSTM run first
    python experiments/load_test.py --data tabular       # ... or a quick FT-Transformer on a table
    python experiments/load_test.py --run-dir <run> --requests 300
    python experiments/load_test.py --requests 0 --burst 800   # the mixed burst only
    python experiments/load_test.py --smoke                    # 10 requests, a burst of 26: checks the script

For a time-series run a request carries history rows of one series: the small request has exactly
one window of history (one forecast), the large one 256 predictions' worth of windows.

The mixed burst: 8 clients, each on one keep-alive connection, alternate a good small request with
each kind of bad request that once answered 500 (Infinity tokens and strings, 1e400, NaN, a request
over max_rows with a NaN inside, one row with a NaN and a missing column, ...). It counts answers by
status, 5xx, connection resets, connections the server closed and TCP connections used (8 = each
client kept its one), good-request p50/p99, and the server's resident memory (VmRSS) before and
after; it exits 1 on any 5xx, reset or closed connection.
"""

from __future__ import annotations

import argparse
import json
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

from common import ROOT, markdown_table, train

QUICK = {"timeseries": [],  # the default LSTM on the built-in series
         "tabular": ["model=ft_transformer", "data=synthetic_tabular"]}
CLIENTS = 8


def quick_run(run_dir: Path, data: str) -> Path:
    """One epoch of a default model: weights do not matter for latency or for input checks."""
    train([*QUICK[data], "trainer.max_epochs=1", "trainer.progress_bar=false", "hardware=cpu", "hardware.threads=1"],
          run_dir)
    return run_dir


def start_server(run_dir: Path, threads: int, max_rows: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(ROOT / "serve.py"), f"run_dir={run_dir}", "host=127.0.0.1",
                             f"port={port}", f"threads={threads}", f"max_rows={max_rows}"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
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
        frame = pd.DataFrame({f["name"]: rng.normal(size=256) if f["type"] == "number" else "a"
                              for f in meta["features"]})
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


def burst_bodies(url: str, good: dict, max_rows: int) -> dict[str, bytes]:
    """The good small request and each bad kind, as JSON text: "@" marks the cell written verbatim."""
    meta = httpx.get(f"{url}/metadata").json()
    numbers = [f["name"] for f in meta["features"] if f["type"] == "number"]
    rows = good["rows"]

    def marked(token: str, column: str = numbers[0], base: list[dict] = rows) -> bytes:
        copy = [dict(row) for row in base]
        copy[len(copy) // 2][column] = "@"
        return json.dumps({"rows": copy}).replace('"@"', token).encode()

    over = (rows * (max_rows // len(rows) + 1))[:max_rows + 1]
    one_row = [{key: value for key, value in rows[0].items() if key != numbers[-1]}]
    text = json.dumps(good).encode()
    return {
        "good": text,
        "Infinity": marked("Infinity"), "-Infinity": marked("-Infinity", numbers[-1]),
        '"Infinity" string': marked('"Infinity"'), "1e400": marked("1e400", numbers[-1]),
        "NaN": marked("NaN"), '"NaN" string': marked('"NaN"', numbers[-1]), "1e39": marked("1e39"),
        f"{max_rows + 1} rows, NaN inside": marked("NaN", base=over),
        "1 row: NaN + missing column": marked("NaN", base=one_row),
        "wrong type": marked('"abc"'),
        "missing column": json.dumps({"rows": [{k: v for k, v in row.items() if k != numbers[0]}
                                               for row in rows]}).encode(),
        "truncated JSON": text[:len(text) // 2],
    }


def rss_mib(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def mixed_burst(url: str, bodies: dict[str, bytes], requests: int) -> tuple[pd.DataFrame, int]:
    """`CLIENTS` clients, each on its own keep-alive connection, alternate the good request with each bad kind.

    Returns one row per request (kind, status or "reset", latency) and the number of TCP connections opened.
    """
    bad = [kind for kind in bodies if kind != "good"]
    headers = {"content-type": "application/json"}

    def worker(client_index: int) -> tuple[list[dict], set]:
        answers, connections = [], set()
        with httpx.Client(base_url=url, timeout=120) as client:
            for i in range(client_index, requests, CLIENTS):
                kind = "good" if i % 2 == 0 else bad[(i // 2) % len(bad)]
                tick = time.perf_counter()
                closed = False
                try:
                    response = client.post("/predict", content=bodies[kind], headers=headers)
                    status: int | str = response.status_code
                    try:
                        connections.add(response.extensions["network_stream"].get_extra_info("client_addr"))
                    except OSError:  # the server closed the connection with this answer
                        closed = True
                except httpx.TransportError:
                    status = "reset"
                answers.append({"kind": kind, "status": status, "closed": closed,
                                "ms": 1e3 * (time.perf_counter() - tick)})
        return answers, connections

    with ThreadPoolExecutor(CLIENTS) as pool:
        parts = list(pool.map(worker, range(CLIENTS)))
    answers = pd.DataFrame([a for answers, _ in parts for a in answers])
    answers["kind"] = pd.Categorical(answers["kind"], categories=list(bodies))  # report in this order
    return answers, sum(len(c) for _, c in parts)


def burst_report(answers: pd.DataFrame, connections: int, rss_before: float, rss_after: float) -> int:
    """Print the burst's tables; the number of 5xx answers, resets and dropped connections (0 is a pass)."""
    by_kind = answers.groupby(["kind", "status"], observed=True).size().unstack(fill_value=0)
    by_kind.columns = [str(c) for c in by_kind.columns]
    latency = answers.groupby("kind", observed=True)["ms"]
    by_kind["p50 ms"], by_kind["p99 ms"] = latency.quantile(0.5), latency.quantile(0.99)
    print(by_kind.to_string(float_format=lambda v: f"{v:.1f}"))
    statuses = answers["status"].astype(str)
    server_errors = int(statuses.str.startswith("5").sum())
    resets = int((statuses == "reset").sum())
    closed = int(answers["closed"].sum())
    good = answers.loc[answers["kind"] == "good", "ms"]
    summary = {
        "requests": len(answers), "clients": CLIENTS,
        "by status": {status: int(n) for status, n in statuses.value_counts().sort_index().items()},
        "5xx": server_errors, "connection resets": resets, "connections closed by the server": closed,
        f"TCP connections (of {CLIENTS} clients)": connections,
        "good p50 ms": round(float(good.quantile(0.5)), 1), "good p99 ms": round(float(good.quantile(0.99)), 1),
        "server RSS MiB before -> after": f"{rss_before:.0f} -> {rss_after:.0f}",
        "load average": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }
    for key, value in summary.items():
        print(f"{key:>32}: {value}")
    return server_errors + resets + closed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, help="a trained run (default: train a quick one)")
    parser.add_argument("--data", choices=sorted(QUICK), default="timeseries", help="what the quick run trains on")
    parser.add_argument("--requests", type=int, default=200,
                        help="requests per throughput measurement (bounded; 0 skips them)")
    parser.add_argument("--burst", type=int, default=400, help="requests in the mixed burst (0 skips it)")
    parser.add_argument("--max-rows", type=int, default=10_000, help="the server's max_rows (serve.py's default)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the server")
    parser.add_argument("--smoke", action="store_true", help="10 requests per measurement and a burst of 26")
    args = parser.parse_args()
    if args.smoke:
        args.requests, args.burst = 10, 26
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run_dir or quick_run(Path(tmp) / "run", args.data)
        proc, url = start_server(run_dir, args.threads, args.max_rows)
        try:
            results, requests = [], payloads(url)
            small = next(iter(requests.values()))[0]
            for label, (body, predictions) in requests.items() if args.requests else ():
                for concurrency in (1, 4):
                    stats = measure(url, body, args.requests, concurrency)
                    results.append({"request": label, "clients": concurrency, "requests": args.requests,
                                    **stats, "predictions_per_s": stats["req_per_s"] * predictions})
            if results:
                cells = ([f"{v:.1f}" if isinstance(v, float) else v for v in row.values()] for row in results)
                print(markdown_table(list(results[0]), cells))
            if args.burst:
                bodies = burst_bodies(url, small, args.max_rows)
                measure(url, small, 8, 1)  # warm-up before the memory baseline
                before = rss_mib(proc.pid)
                answers, connections = mixed_burst(url, bodies, args.burst)
                failures = burst_report(answers, connections, before, rss_mib(proc.pid))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
