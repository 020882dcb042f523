"""Calibrated intervals: conformalized quantile regression (CQR; Romano, Patterson & Candès, NeurIPS 2019).

A model's quantiles at the levels (q, 1 - q) give a central interval [lo(x), hi(x)] that claims to cover
1 - alpha = 1 - 2q of the targets; a model that fits its training rows closely covers fewer held-out ones.
CQR scores each of n calibration samples, unseen by the weights (the validation split), by how far its
target lies outside the interval, E_i = max(lo(x_i) - y_i, y_i - hi(x_i)) (negative inside), and moves both
ends of every interval out by Q, the ceil((n + 1)(1 - alpha))-th smallest score: the ceil((n + 1)(1 - alpha))/n
empirical quantile of the scores. For a new sample exchangeable with the calibration ones, [lo - Q, hi + Q]
covers it with probability at least 1 - alpha (their Theorem 1). Q is negative where the model over-covers,
and the interval narrows.

Each central interval gets its own Q per horizon step and target (a forecast's errors grow with the step),
from the n windows of the validation split; a table's regression one Q per interval, from its n validation
rows; the median never moves. Q is kept on the standardised target
scale, where the task reads outputs: the scaling is increasing and affine per target, so scores, their
order statistic and the interval all map to original units exactly.

NOTE[DIFF]: the paper calibrates one interval of an exchangeable sample. A table's rows, split at random, are
one, and the guarantee holds as the paper states it (marginally, over rows). The windows of a series overlap
and follow each other in time, so there the guarantee is approximate: it holds as far as the test period
behaves like the validation one. And where the levels hold several central intervals, or an interval narrows past
the median, the calibrated quantiles are made monotone again by widening only (`widen_to_monotone`), which
keeps every interval's coverage at least what CQR gave it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from dl_core.errors import ConfigError
from dl_core.models.outputs import MEDIAN, interval_name, interval_pairs


@dataclass(frozen=True, eq=False)
class IntervalCalibration:
    """The CQR offsets of a run's central intervals, fitted on its validation split.

    `pairs` holds the (lower, upper) positions in `levels` of each central interval, `offsets` its Q per
    position of the outputs' other axes, on the standardised target scale: (pairs, horizon, targets) for a
    forecast, (pairs, 1) for a table's regression; `n` is the number of calibration samples (validation
    windows or rows) the offsets come from.
    """

    levels: tuple[float, ...]
    pairs: tuple[tuple[int, int], ...]
    offsets: np.ndarray
    n: int

    def apply(self, quantiles: np.ndarray) -> np.ndarray:
        """Calibrated quantiles from raw ones (samples, ..., levels), ascending along the levels."""
        adjusted = quantiles.astype(np.float64)
        for (low, high), offset in zip(self.pairs, self.offsets, strict=True):
            adjusted[..., low] -= offset
            adjusted[..., high] += offset
        return widen_to_monotone(adjusted, self.levels.index(MEDIAN))


def fit_calibration(quantiles: np.ndarray, actual: np.ndarray, levels: tuple[float, ...]) -> IntervalCalibration:
    """The CQR offsets of every central interval of `levels`, from the raw quantiles (samples, ..., levels) of
    held-out samples and their targets (samples, ...): one offset per interval and per position of the
    other axes (for a forecast: per horizon step and target)."""
    n = len(quantiles)
    pairs, offsets = [], []
    actual = actual.astype(np.float64)
    for low, high, _ in interval_pairs(levels):
        scores = np.maximum(quantiles[..., low] - actual, actual - quantiles[..., high])
        rank = conformal_rank(n, levels[low], levels[high])
        if rank > n:
            raise ValueError(f"{n} calibration samples are too few for a {interval_name(levels[high] - levels[low])} "
                             f"% interval (check_calibration_size refuses this before training)")
        offsets.append(np.partition(scores, rank - 1, axis=0)[rank - 1])
        pairs.append((low, high))
    return IntervalCalibration(tuple(levels), tuple(pairs), np.stack(offsets), n)


def conformal_rank(n: int, low: float, high: float) -> int:
    """k = ceil((n + 1)(1 - alpha)), the rank of the score CQR widens by, with 1 - alpha = high - low.

    In exact arithmetic on the levels as written (0.08, 0.92): in floats, (n + 1)(1 - alpha) can land a hair
    above a whole number ((0.92 - 0.08) * 25 = 21.000000000000004), and its ceiling one rank too high."""
    coverage = decimal(high) - decimal(low)
    return math.ceil((n + 1) * coverage)


def decimal(level: float) -> Fraction:
    """A level as the decimal it was written as (0.1 is 1/10, not the float nearest it)."""
    return Fraction(str(float(level)))


def calibration_size_needed(levels: tuple[float, ...]) -> int:
    """The fewest calibration samples that bound every central interval of `levels`: ceil((n + 1)(1 - alpha))
    <= n holds from n >= (1 - alpha) / alpha on (4 for an 80 % interval, 19 for a 95 % one); with fewer, the
    CQR interval is the whole line."""
    needed = 0
    for low, high, _ in interval_pairs(levels):
        coverage = decimal(levels[high]) - decimal(levels[low])
        needed = max(needed, math.ceil(coverage / (1 - coverage)))
    return needed


def check_calibration_size(levels: tuple[float, ...], n: int) -> None:
    """Refuse, before training, a validation split too small to calibrate the intervals of `levels` on."""
    needed = calibration_size_needed(levels)
    if n < needed:
        raise ConfigError(f"trainer.calibrate_intervals: the validation split has {n} samples, too few to calibrate "
                          f"the intervals of model.quantiles {list(levels)} (they need {needed}); enlarge data.split "
                          f"val, or set trainer.calibrate_intervals=false")


def widen_to_monotone(quantiles: np.ndarray, median: int) -> np.ndarray:
    """Quantiles ascending again after calibration, by moving each level below the median down to the
    lowest value at or inside it, and each level above up to the highest: values only move outwards, so
    every central interval still holds the one CQR gave it (sorting instead could pull a lower end up)."""
    lower = np.minimum.accumulate(quantiles[..., median::-1], axis=-1)[..., ::-1]
    upper = np.maximum.accumulate(quantiles[..., median:], axis=-1)
    return np.concatenate([lower[..., :-1], upper], axis=-1)
