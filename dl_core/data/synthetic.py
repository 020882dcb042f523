"""Built-in multivariate time series, so the harness trains out of the box with no download.

Each series is trend + daily and weekly seasonality + a lagged response to exogenous drivers +
AR(1) noise. The lag makes the drivers' past genuinely useful to a sequence model, and the
seasonality makes the target's own past useful, so a model that learns beats a naive forecast.

Three effects that only covariates foretell can be switched on (all off by default, which leaves the
series exactly as before): a weekend shift (`calendar_effect`, known from the timestamp), planned
events (`event_effect`: a 0/1 column `event`, on for a few hours at random, known in advance) and a
level per region (`static_effect`: a per-series category `region` with its own offset). They draw
from a random stream of their own, so switching them on leaves the rest of each series unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dl_core.errors import require_at_least

REGIONS = ("north", "south", "east")
EVENT_START = 1 / 48  # chance that an event starts in a given hour
EVENT_HOURS = (3, 9)  # its duration in hours: from, to (exclusive)
AR_PHI = 0.6  # the noise's autocorrelation from one hour to the next


def generate_series(n_series: int, length: int, n_drivers: int, noise: float, seed: int, *,
                    calendar_effect: float = 0.0, event_effect: float = 0.0,
                    static_effect: float = 0.0) -> pd.DataFrame:
    """Hourly rows for `n_series` entities: columns timestamp, series_id, driver_1..k, target; `event` when
    `event_effect` is not 0 and `region` when `static_effect` is not 0."""
    rng = np.random.default_rng(seed)
    covariate_rng = np.random.default_rng([seed, 1])
    t = np.arange(length, dtype=np.float64)
    timestamps = pd.date_range("2020-01-01", periods=length, freq="h")
    weekend = np.asarray(timestamps.day_of_week >= 5, np.float64)
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
        events, region = _events(covariate_rng, length), int(covariate_rng.integers(len(REGIONS)))
        target += calendar_effect * weekend + event_effect * events + static_effect * (region - 1)
        frame = pd.DataFrame({"timestamp": timestamps, "series_id": f"s{series}"})
        for k in range(n_drivers):
            frame[f"driver_{k + 1}"] = drivers[:, k]
        if event_effect:
            frame["event"] = events
        if static_effect:
            frame["region"] = REGIONS[region]
        frame["target"] = target
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _events(rng: np.random.Generator, length: int) -> np.ndarray:
    """0/1 per hour: planned events that start at random and last a few hours."""
    out = np.zeros(length)
    starts = np.flatnonzero(rng.random(length) < EVENT_START)
    for start, hours in zip(starts, rng.integers(*EVENT_HOURS, size=starts.size), strict=True):
        out[start:start + hours] = 1.0
    return out


def _drivers(rng: np.random.Generator, t: np.ndarray, n_drivers: int) -> np.ndarray:
    """Smooth exogenous signals: a slow cycle plus a bounded random walk each."""
    out = np.empty((t.size, n_drivers))
    for k in range(n_drivers):
        walk = np.cumsum(rng.normal(0, 0.05, t.size))
        walk -= np.linspace(0, walk[-1], t.size)
        out[:, k] = np.sin(2 * np.pi * t / rng.uniform(40, 90)) + walk
    return out


def _ar_noise(rng: np.random.Generator, length: int, scale: float, phi: float = AR_PHI) -> np.ndarray:
    shocks = rng.normal(0, scale, length)
    noise = np.empty(length)
    noise[0] = shocks[0]
    for i in range(1, length):
        noise[i] = phi * noise[i - 1] + shocks[i]
    return noise


@dataclass
class SyntheticConfig:
    """What the settings of the built-in generators share.

    Attributes:
        noise: scale of the noise on the target.
        seed: generator seed; fixed by default so every training seed sees the same data.
    """

    noise: float = 0.3
    seed: int = 0

    def validate(self, prefix: str) -> None:
        require_at_least(self, prefix, noise=0)


@dataclass
class GeneratorConfig(SyntheticConfig):
    """Parameters of the built-in synthetic time-series generator (data=synthetic).

    Attributes:
        noise: scale of the AR(1) noise added to the target.
        n_series: number of independent series (entities, column `series_id`).
        length: hourly rows per series.
        n_drivers: exogenous driver columns whose lagged values move the target.
        calendar_effect: shift of the target on Saturdays and Sundays (known from the timestamp: see
            `data.calendar_features`); 0 leaves it out.
        event_effect: shift of the target while a planned event is on: adds the 0/1 column `event`, on
            for 3-8 hours at a time, about every other day (known in advance: see `data.future_covariates`); 0
            leaves it out.
        static_effect: level offset of each series' region (-1, 0 or +1 times this): adds the per-series
            column `region` (see `data.static_columns`); 0 leaves it out.
    """

    n_series: int = 2
    length: int = 2000
    n_drivers: int = 2
    calendar_effect: float = 0.0
    event_effect: float = 0.0
    static_effect: float = 0.0

    def validate(self, prefix: str) -> None:
        require_at_least(self, prefix, n_series=1, length=10, n_drivers=0)
        super().validate(prefix)
