"""The seasonal period m of a run's series (`data.seasonality`): what the seasonal naive forecast repeats and
what MASE scales by (dl_core/task/series_metrics.py).

Set, it is taken as it is; null, it follows from the run's time step, with the periods the M4 competition
and the forecasting libraries use for a single step of each kind: a day of hours (24), a week of days
(7), a year of weeks (52), months (12) or quarters (4). Any other step (15 minutes, business days, two
hours, numbers) has no customary period, so m = 1: the seasonal naive forecast is then the naive one,
and MASE scales by the one-step naive error, Hyndman & Koehler's (2006) non-seasonal MASE.
"""

from __future__ import annotations

import pandas as pd
from pandas.tseries.frequencies import to_offset

from dl_core.data.timestep import TimeStep

PERIODS: tuple[tuple[tuple[type, ...], int], ...] = (
    ((pd.offsets.Hour,), 24),
    ((pd.offsets.Day,), 7),
    ((pd.offsets.Week,), 52),
    ((pd.offsets.MonthBegin, pd.offsets.MonthEnd), 12),
    ((pd.offsets.QuarterBegin, pd.offsets.QuarterEnd), 4),
)


def resolve_seasonality(given: int | None, step: TimeStep | None) -> int:
    """`given`, or the customary period of one `step` (1 where there is none, or no time step)."""
    if given is not None:
        return given
    if step is None or not isinstance(step.step, str):
        return 1
    offset = to_offset(step.step)
    if offset.n != 1:
        return 1
    return next((period for kinds, period in PERIODS if isinstance(offset, kinds)), 1)
