"""Built-in multivariate time series, so the harness trains out of the box with no download.

Each series is trend + daily and weekly seasonality + a lagged response to exogenous drivers +
AR(1) noise. The lag makes the drivers' past genuinely useful to a sequence model, and the
seasonality makes the target's own past useful, so a model that learns beats a naive forecast.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def generate_series(n_series: int, length: int, n_drivers: int, noise: float, seed: int) -> pd.DataFrame:
    """Hourly rows for `n_series` entities: columns timestamp, series_id, driver_1..k, target."""
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float64)
    timestamps = pd.date_range("2020-01-01", periods=length, freq="h")
    frames = []
    for series in range(n_series):
        drivers = _drivers(rng, t, n_drivers)
        weights = rng.uniform(0.5, 1.5, size=n_drivers)
        lagged = np.zeros(length)
        for k in range(n_drivers):
            lagged += weights[k] * np.roll(drivers[:, k], 3 + 2 * k)
        level = rng.uniform(5.0, 15.0)
        slope = rng.uniform(-1.0, 1.0) / length * 4.0
        seasonal = 2.0 * np.sin(2 * np.pi * t / 24 + rng.uniform(0, 2 * np.pi)) \
            + 1.0 * np.sin(2 * np.pi * t / (24 * 7) + rng.uniform(0, 2 * np.pi))
        target = level + slope * t + seasonal + lagged + _ar_noise(rng, length, noise)
        frame = pd.DataFrame({"timestamp": timestamps, "series_id": f"s{series}"})
        for k in range(n_drivers):
            frame[f"driver_{k + 1}"] = drivers[:, k]
        frame["target"] = target
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _drivers(rng: np.random.Generator, t: np.ndarray, n_drivers: int) -> np.ndarray:
    """Smooth exogenous signals: a slow cycle plus a bounded random walk each."""
    out = np.empty((t.size, n_drivers))
    for k in range(n_drivers):
        walk = np.cumsum(rng.normal(0, 0.05, t.size))
        walk -= np.linspace(0, walk[-1], t.size)
        out[:, k] = np.sin(2 * np.pi * t / rng.uniform(40, 90)) + walk
    return out


def _ar_noise(rng: np.random.Generator, length: int, scale: float, phi: float = 0.6) -> np.ndarray:
    shocks = rng.normal(0, scale, length)
    noise = np.empty(length)
    noise[0] = shocks[0]
    for i in range(1, length):
        noise[i] = phi * noise[i - 1] + shocks[i]
    return noise
