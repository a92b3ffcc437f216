"""The fill-level scale (empty, low, normal, full): the stock alerts' rule, so colours and alerts agree."""

from __future__ import annotations

import pytest

from helmet_cloud.domain.alert_rules import AlertKind, Stock, stock_alerts
from helmet_cloud.domain.fill_level import FillLevel, fill_level
from helmet_cloud.domain.station_counts import SlotCounts

E, L, N, F = FillLevel.EMPTY, FillLevel.LOW, FillLevel.NORMAL, FillLevel.FULL


def six(helmets: int, *, disabled: int = 0) -> SlotCounts:
    """A six-slot station with ``helmets`` in service and ``disabled`` empty slots out of service."""
    return SlotCounts(helmets_available=helmets, free_slots=6 - helmets - disabled, free_slots_disabled=disabled)


@pytest.mark.parametrize(
    ("helmets", "want"),
    [(0, E), (1, L), (2, N), (3, N), (4, N), (5, N), (6, F)],
)
def test_seventeen_percent_is_low_a_third_normal_and_a_full_station_full(helmets: int, want: FillLevel) -> None:
    """The case staff met: 1/6 and 6/6 painted alike, 2/6 green; with low_threshold 2 and high_threshold 1."""
    assert fill_level(six(helmets), low_threshold=2, high_threshold=1) is want


def test_the_defaults_thresholds_of_one_make_low_the_same_as_empty() -> None:
    assert [fill_level(six(h), low_threshold=1, high_threshold=1) for h in range(7)] == [E, N, N, N, N, N, F]


def test_the_level_holds_with_the_alerts_hysteresis() -> None:
    """An open "nearly full" alert holds until more free slots than the threshold; the level holds with it."""
    assert fill_level(six(5), low_threshold=1, high_threshold=1) is N
    assert fill_level(six(5), low_threshold=1, high_threshold=1, active={AlertKind.STATION_FULL.value}) is F
    assert fill_level(six(4), low_threshold=1, high_threshold=1, active={AlertKind.STATION_FULL.value}) is N
    assert fill_level(six(1), low_threshold=1, high_threshold=1, active={AlertKind.STATION_EMPTY.value}) is E
    assert fill_level(six(2), low_threshold=1, high_threshold=1, active={AlertKind.STATION_EMPTY.value}) is N


def test_no_usable_slot_has_no_level() -> None:
    assert fill_level(SlotCounts(), low_threshold=1, high_threshold=1) is None
    assert fill_level(six(0, disabled=6), low_threshold=1, high_threshold=1) is None
    assert fill_level(SlotCounts(helmets_disabled=6), low_threshold=1, high_threshold=1) is None


def test_disabled_slots_do_not_count_as_room_or_helmets() -> None:
    # 2 helmets, 1 free slot, 3 disabled: one free slot is not fewer than high_threshold 1.
    counts = SlotCounts(helmets_available=2, free_slots=1, free_slots_disabled=3)
    assert fill_level(counts, low_threshold=1, high_threshold=1) is N
    assert fill_level(counts, low_threshold=1, high_threshold=2) is F


def test_both_empty_and_full_is_empty_and_both_low_and_full_is_full() -> None:
    assert fill_level(SlotCounts(free_slots=1, free_slots_disabled=5), low_threshold=1, high_threshold=2) is E
    assert (
        fill_level(
            SlotCounts(helmets_available=1, free_slots=1, free_slots_disabled=4), low_threshold=2, high_threshold=2
        )
        is F
    )


@pytest.mark.parametrize("low", [0, 1, 2, 3, 6])
@pytest.mark.parametrize("high", [0, 1, 2, 3, 6])
@pytest.mark.parametrize("helmets", range(7))
def test_every_level_but_normal_is_an_alert_the_rule_raises(low: int, high: int, helmets: int) -> None:
    counts = six(helmets)
    raised = stock_alerts(Stock(helmets, 6 - helmets, 6), low_threshold=low, high_threshold=high, active=set())
    level = fill_level(counts, low_threshold=low, high_threshold=high)
    expected = {
        E: AlertKind.STATION_EMPTY,
        L: AlertKind.STATION_LOW,
        F: AlertKind.STATION_FULL,
    }
    if level is N:
        assert raised == set()
    else:
        assert level is not None and expected[level] in raised
