"""When a resident should bring a helmet back (no I/O): the overdue limit after the borrow, and how close it is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Due(StrEnum):
    IN_TIME = "in_time"
    SOON = "soon"  # within the warning margin before the limit
    OVERDUE = "overdue"


@dataclass(frozen=True, slots=True)
class ReturnBy:
    at: datetime
    due: Due


def warning_margin(overdue: timedelta) -> timedelta:
    """How long before the limit a loan is 'due soon': the last tenth of the time allowed, at least an hour."""
    return max(timedelta(hours=1), overdue / 10)


def return_by(borrowed_at: datetime, overdue: timedelta, now: datetime) -> ReturnBy:
    """A loan from ``borrowed_at`` is overdue ``overdue`` later (settings ``loan_overdue_hours``, as the alerts)."""
    at = borrowed_at + overdue
    if now >= at:
        return ReturnBy(at, Due.OVERDUE)
    return ReturnBy(at, Due.SOON if now >= at - warning_margin(overdue) else Due.IN_TIME)
