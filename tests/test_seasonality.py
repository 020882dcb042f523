"""data.seasonality: as given, or the customary period of one time step."""

from __future__ import annotations

import pytest

from dl_core.data.seasonality import resolve_seasonality
from dl_core.data.timestep import TimeStep


@pytest.mark.parametrize(("step", "m"), [("h", 24), ("D", 7), ("W-SUN", 52), ("MS", 12), ("ME", 12),
                                         ("QS-JAN", 4), ("QE-DEC", 4), ("15min", 1), ("2h", 1), ("B", 1),
                                         ("YS-JAN", 1)])
def test_the_period_follows_from_one_time_step(step, m):
    assert resolve_seasonality(None, TimeStep(step)) == m


def test_a_given_period_wins_and_numbers_or_no_timestamps_have_none():
    assert resolve_seasonality(5, TimeStep("h")) == 5
    assert resolve_seasonality(None, TimeStep(1.0)) == 1
    assert resolve_seasonality(None, None) == 1
