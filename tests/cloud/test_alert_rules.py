"""The alert rules as pure functions: hysteresis, windows, faults, loan ages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from helmet_cloud.domain.alert_rules import (
    AlertKind,
    LoanAges,
    Stock,
    active_fault,
    densest,
    locker_offline,
    stock_alerts,
)

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def walk(helmets: list[int], *, slots: int = 6, low: int = 1, high: int = 1) -> list[set[AlertKind]]:
    """Feed a station's helmet counts through the rule, carrying the active alerts along."""
    active: set[str] = set()
    out = []
    for h in helmets:
        now = stock_alerts(
            Stock(helmets=h, free_slots=slots - h, slots=slots), low_threshold=low, high_threshold=high, active=active
        )
        active = {k.value for k in now}
        out.append(now)
    return out


def test_empty_holds_through_one_helmet_and_clears_at_two() -> None:
    e = {AlertKind.STATION_EMPTY}
    assert walk([2, 1, 0, 1, 0, 1, 2, 1]) == [set(), set(), e, e, e, e, set(), set()]


def test_nearly_empty_gives_way_to_empty_and_comes_back_after_it() -> None:
    low, e = {AlertKind.STATION_LOW}, {AlertKind.STATION_EMPTY}
    assert walk([4, 3, 2, 3, 4, 0, 1, 2, 3, 4], low=3) == [set(), set(), low, low, set(), e, e, low, low, set()]


def test_full_uses_free_slots_with_the_same_hysteresis() -> None:
    f = {AlertKind.STATION_FULL}
    assert walk([4, 5, 6, 5, 4], high=1) == [set(), set(), f, f, set()]


def test_a_station_without_lockers_raises_nothing() -> None:
    assert stock_alerts(Stock(0, 0, 0), low_threshold=3, high_threshold=3, active=set()) == set()


def test_offline_by_will_or_silence_but_not_before_it_was_ever_heard() -> None:
    hb = timedelta(minutes=15)
    assert locker_offline(online=False, last_heard=None, now=T0, heartbeat=hb) is False
    assert locker_offline(online=False, last_heard=T0, now=T0, heartbeat=None) is True
    assert locker_offline(online=True, last_heard=T0, now=T0 + timedelta(minutes=15), heartbeat=hb) is False
    assert locker_offline(online=True, last_heard=T0, now=T0 + timedelta(minutes=16), heartbeat=hb) is True
    assert locker_offline(online=True, last_heard=T0, now=T0 + timedelta(days=9), heartbeat=None) is False


@pytest.mark.parametrize(
    ("events", "fault"),
    [
        ([], None),
        ([("slot.fault", "door_ajar")], "door_ajar"),
        ([("slot.fault", "door_ajar"), ("slot.cleared", "door_ajar")], None),
        ([("slot.fault", "sensor_conflict"), ("slot.cleared", None)], None),
        ([("slot.fault", "lock_jammed"), ("slot.enabled", None)], None),
        ([("slot.cleared", None), ("slot.fault", None)], "unknown"),
    ],
)
def test_a_slot_is_left_in_the_fault_of_its_last_fault_event(
    events: list[tuple[str, str | None]], fault: str | None
) -> None:
    assert active_fault(events) == fault


def test_densest_counts_the_most_events_in_any_window() -> None:
    minutes = [0, 1, 2, 20, 21, 22, 23, 30, 31]
    times = [T0 + timedelta(minutes=m) for m in minutes]
    assert densest(times, timedelta(minutes=10)) == 5  # 21..31
    assert densest(times, timedelta(minutes=1)) == 2
    assert densest([], timedelta(minutes=10)) == 0


def test_loan_marks_are_the_moments_each_age_was_passed() -> None:
    ages = LoanAges(overdue=timedelta(hours=24), missing=timedelta(days=3), lost=timedelta(days=14))
    assert ages.marks(T0, T0 + timedelta(hours=23)) == (None, None, None)
    assert ages.marks(T0, T0 + timedelta(days=4)) == (T0 + timedelta(hours=24), T0 + timedelta(days=3), None)
    assert ages.marks(T0, T0 + timedelta(days=30))[2] == T0 + timedelta(days=14)
