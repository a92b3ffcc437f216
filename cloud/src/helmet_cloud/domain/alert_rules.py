"""Alert rules as pure functions of stored state: no database, no clock of their own.

Each rule answers "should this alert be active now?" from values the caller
read from the database, so the answer depends on what is stored, never on the
order events arrived in. Stock alerts also take which alerts are active now:
that is their hysteresis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from helmet_protocol.events import EventKind, RejectReason


class AlertKind(StrEnum):
    LOCKER_OFFLINE = "locker_offline"
    STATION_EMPTY = "station_empty"
    STATION_LOW = "station_low"
    STATION_FULL = "station_full"
    DOOR_AJAR = "door_ajar"
    SLOT_FAULT = "slot_fault"
    PASS_OVERUSE = "pass_overuse"  # noqa: S105 (not a password)
    FORGED_PASSES = "forged_passes"
    HELMET_OVERDUE = "helmet_overdue"
    HELMET_LOST = "helmet_lost"
    HELMET_FOUND = "helmet_found"
    HELMET_RETIRED = "helmet_retired"  # a retired helmet is in a slot (helmet_cloud.services.helmets)


# Rejections that mean someone showed a pass the cloud never signed (docs/mqtt.md, "Reject reasons").
FORGED_REASONS = frozenset({RejectReason.BAD_SIGNATURE, RejectReason.UNKNOWN_KEY, RejectReason.MALFORMED})
# Events that start or end a slot fault; slot.enabled puts the slot back by its sensors.
FAULT_KINDS = frozenset({EventKind.SLOT_FAULT, EventKind.SLOT_CLEARED, EventKind.SLOT_ENABLED})


def below(value: int, threshold: int, *, active: bool) -> bool:
    """Hysteresis: start when ``value < threshold``; once active, hold until ``value > threshold``.

    So a station that goes 0 -> 1 -> 0 helmets raises "empty" once, and it
    takes two helmets (one past the threshold of one) to clear it.
    """
    return value <= threshold if active else value < threshold


@dataclass(frozen=True, slots=True)
class Stock:
    """A station's slots by state, summed over its lockers."""

    helmets: int
    free_slots: int
    slots: int


def stock_alerts(stock: Stock, *, low_threshold: int, high_threshold: int, active: set[str]) -> set[AlertKind]:
    """Which of empty, low and full should be active; "empty" replaces "low" rather than doubling it."""
    if stock.slots == 0:
        return set()  # no lockers yet: nothing to run out of
    out: set[AlertKind] = set()
    if below(stock.helmets, 1, active=AlertKind.STATION_EMPTY in active):
        out.add(AlertKind.STATION_EMPTY)
    elif below(stock.helmets, low_threshold, active=AlertKind.STATION_LOW in active):
        out.add(AlertKind.STATION_LOW)
    if below(stock.free_slots, high_threshold, active=AlertKind.STATION_FULL in active):
        out.add(AlertKind.STATION_FULL)
    return out


def locker_offline(*, online: bool, last_heard: datetime | None, now: datetime, heartbeat: timedelta | None) -> bool:
    """Offline by its Last Will, or silent for longer than the heartbeat; never heard of means not installed yet."""
    if last_heard is None:
        return False
    if not online:
        return True
    return heartbeat is not None and now - last_heard > heartbeat


def active_fault(events: Iterable[tuple[str, str | None]]) -> str | None:
    """The fault a slot is left in by its fault events ``(kind, reason)`` in seq order, if any."""
    fault: str | None = None
    for kind, reason in events:
        if kind == EventKind.SLOT_FAULT:
            fault = reason or "unknown"
        elif kind in FAULT_KINDS:
            fault = None
    return fault


def pass_overused(quantity: int, borrows_by_locker: Mapping[str, int]) -> bool:
    """More helmets taken on one pass than it is for, or helmets taken at more than one locker.

    A pass is good once, fleet-wide: a second locker honours it only when it was offline while the pass
    was used elsewhere (or before the cloud's config reached it), and that is what staff should see.
    """
    return sum(borrows_by_locker.values()) > quantity or sum(1 for n in borrows_by_locker.values() if n) > 1


def densest(times: Sequence[datetime], window: timedelta) -> int:
    """The most of the sorted ``times`` that fit in any span of length ``window``."""
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


@dataclass(frozen=True, slots=True)
class LoanAges:
    """How long an open loan may run before it is overdue, missing and lost."""

    overdue: timedelta
    missing: timedelta
    lost: timedelta

    def marks(self, borrowed_at: datetime, now: datetime) -> tuple[datetime | None, datetime | None, datetime | None]:
        """When a loan still open at ``now`` became overdue, missing and lost (None: not yet)."""
        due = [borrowed_at + age for age in (self.overdue, self.missing, self.lost)]
        overdue, missing, lost = (t if now >= t else None for t in due)
        return overdue, missing, lost
