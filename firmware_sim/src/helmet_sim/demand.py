"""When residents want helmets: a daily demand curve with morning and evening peaks.

Trips start as a non-homogeneous Poisson process whose rate follows
:data:`HOURLY` (relative demand per hour of the day, mean 1). A resident who
makes ``trips_per_day`` trips on average starts the next one at
:func:`next_trip`, drawn by thinning.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

# Relative demand per hour 0..23: quiet nights, a commute peak at 7-9 and a longer one at 16-19.
_RAW = [0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.9, 2.2, 2.6, 1.4, 0.9, 1.0,
        1.3, 1.1, 1.0, 1.2, 1.9, 2.5, 2.3, 1.5, 1.0, 0.7, 0.4, 0.2]  # fmt: skip
HOURLY = [w * 24 / sum(_RAW) for w in _RAW]
PEAK = max(HOURLY)


def rate(when: datetime) -> float:
    """Relative demand at ``when`` (1.0 is the daily mean)."""
    return HOURLY[when.hour]


def next_trip(rng: random.Random, after: datetime, trips_per_day: float) -> datetime:
    """The start of a resident's next trip after ``after``."""
    if trips_per_day <= 0:
        raise ValueError("trips_per_day must be > 0")
    top = trips_per_day * PEAK / 86400.0  # trips per simulated second at the busiest hour
    t = after
    while True:
        t += timedelta(seconds=-math.log(1.0 - rng.random()) / top)
        if rng.random() * PEAK <= rate(t):
            return t


def expected_trips(residents: int, trips_per_day: float, start: datetime, hours: float) -> float:
    """How many trips the town should see in ``hours`` from ``start`` (for sizing and tests)."""
    total, t, left = 0.0, start, hours
    while left > 0:
        step = min(1.0, left)
        total += residents * trips_per_day / 24 * rate(t) * step
        t += timedelta(hours=step)
        left -= step
    return total
