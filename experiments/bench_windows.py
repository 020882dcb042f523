"""Preparing training windows: dl_core's windows-as-views against a per-row pandas loop.

Frame: N rows x 8 float features (the 8th is also the target), L=96, horizon 1.
- "windows": our window step alone, the like-for-like counterpart of the loop: from the scaled row
  array to batchable windows (`split_starts` for train/val/test + one `WindowSplit` per split).
- "data step": the whole `build_timeseries_bundle` (copy, sort, duplicate/NaN checks,
  chronological split, scalers fit on train, transform, window index), which the loop does not do.
- "loop": how the original design built windows, `np.stack([df.iloc[i-L:i].to_numpy() ...])`,
  timed on the small sizes only and extrapolated linearly (its memory is computed: windows x L x
  features x 8 bytes).
Times are the median of --repeats. Peak memory is traced (tracemalloc: numpy and pandas buffers,
where the data lives; the split tensors are `torch.from_numpy` views) in a separate, untimed call,
since tracing slows allocation. "window MB" is what the splits keep alive (row tensors +
window-start indices), against the raw float32 array of N x 8.

    python experiments/bench_windows.py          # --smoke: small sizes, one repeat, to check the script
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np
import pandas as pd
import torch

import dl_core
from common import markdown_header, markdown_row
from dl_core.data.splits import SPLITS
from dl_core.data.timeseries import build_timeseries_bundle
from dl_core.data.windows import RowKeys, WindowSplit, split_starts

N_FEATURES = 8
SEQUENCE_LENGTH = 96


def make_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.standard_normal((rows, N_FEATURES)), columns=[f"f{i}" for i in range(N_FEATURES)])
    frame.insert(0, "t", np.arange(rows))
    return frame


def data_config():
    """`data=csv_timeseries` as a run composes it; the frame is passed to the data step directly."""
    return dl_core.compose("data=csv_timeseries", "data.timestamp_column=t", "data.target_column=f7",
                           f"data.sequence_length={SEQUENCE_LENGTH}").data


def median_seconds(step, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        tick = time.perf_counter()
        step()
        times.append(time.perf_counter() - tick)
    return statistics.median(times)


def window_step(x: torch.Tensor, y: torch.Tensor, bounds: tuple[int, int, int],
                keys: RowKeys) -> dict[str, WindowSplit]:
    """Scaled rows -> one batchable split of windows per split name (one series: offsets 0..N)."""
    starts = split_starts(np.array([0, len(x)]), [bounds], SEQUENCE_LENGTH, 1)
    return {name: WindowSplit(x, y, torch.from_numpy(starts[name]), SEQUENCE_LENGTH, 1, keys) for name in SPLITS}


def ours(frame: pd.DataFrame, repeats: int) -> dict[str, float]:
    """Seconds of the window step and of the data step, traced peak bytes, bytes the windows keep."""
    cfg = data_config()
    data_step = median_seconds(lambda: build_timeseries_bundle(cfg, frame), repeats)
    tracemalloc.start()
    bundle = build_timeseries_bundle(cfg, frame)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    train = bundle.splits["train"]
    kept = train.x.nbytes + train.y.nbytes + sum(s.starts.nbytes for s in bundle.splits.values())
    n_val, n_test = (len(bundle.splits[name]) for name in ("val", "test"))
    bounds = (len(frame) - n_val - n_test, len(frame) - n_test, len(frame))
    windows = median_seconds(lambda: window_step(train.x, train.y, bounds, train.keys), repeats)
    return {"windows": windows, "data_step": data_step, "peak": peak, "kept": kept}


def per_row_loop(frame: pd.DataFrame) -> tuple[float, int]:
    """(seconds, bytes of the stacked windows)."""
    values = frame[[f"f{i}" for i in range(N_FEATURES)]]
    tick = time.perf_counter()
    windows = np.stack([values.iloc[i - SEQUENCE_LENGTH:i].to_numpy() for i in range(SEQUENCE_LENGTH, len(values))])
    return time.perf_counter() - tick, windows.nbytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 200_000, 2_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-rows", type=int, nargs="+", default=[5_000, 20_000],
                        help="sizes the per-row loop actually runs on (others are extrapolated)")
    parser.add_argument("--smoke", action="store_true", help="small sizes and one repeat, to check the script")
    args = parser.parse_args()
    if args.smoke:
        args.rows, args.loop_rows, args.repeats = [2_000, 5_000], [1_000], 1

    loop_rate = []
    for rows in args.loop_rows:
        seconds, _ = per_row_loop(make_frame(rows))
        loop_rate.append(seconds / (rows - SEQUENCE_LENGTH))
        print(f"loop measured on {rows:>9,} rows: {seconds:.2f} s ({loop_rate[-1] * 1e6:.1f} us/window)")
    per_window = loop_rate[-1]

    print()
    print(markdown_header(["rows", "windows ms", "windows ns/row", "data step s", "data step us/row", "loop s",
                           "windows speed-up", "data step speed-up", "data step peak MB", "window MB", "raw MB",
                           "window/raw", "loop windows MB"]))
    for rows in args.rows:
        got = ours(make_frame(rows), args.repeats)
        n_windows = rows - SEQUENCE_LENGTH
        loop_s = per_window * n_windows
        measured = "" if rows in args.loop_rows else " (extrap.)"
        raw = rows * N_FEATURES * 4
        loop_mb = n_windows * SEQUENCE_LENGTH * N_FEATURES * 8 / 1e6
        print(markdown_row([
            f"{rows:,}", f"{got['windows'] * 1e3:.2f}", f"{got['windows'] / rows * 1e9:.1f}", f"{got['data_step']:.3f}",
            f"{got['data_step'] / rows * 1e6:.2f}", f"{loop_s:.1f}{measured}", f"{loop_s / got['windows']:,.0f}x",
            f"{loop_s / got['data_step']:,.0f}x", f"{got['peak'] / 1e6:.0f}", f"{got['kept'] / 1e6:.1f}",
            f"{raw / 1e6:.1f}", f"{got['kept'] / raw:.2f}", f"{loop_mb:,.0f}"]), flush=True)


if __name__ == "__main__":
    main()
