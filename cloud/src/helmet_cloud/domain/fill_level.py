"""How full a station is, in four words (empty, low, normal, full): the one scale the pages colour and the alerts raise.

The level is read off the stock alerts' own rule (:func:`helmet_cloud.domain.alert_rules.stock_alerts`),
from the station's counts (:mod:`helmet_cloud.domain.station_counts`), its two thresholds and the stock
alerts open on it (their hysteresis), so a colour can never say something the alerts do not:

- empty: no helmet to lend (the "empty" alert);
- low: fewer helmets than ``low_threshold`` (the "nearly empty" alert);
- full: fewer free slots than ``high_threshold`` (the "nearly full" alert: returns may find no room);
- normal: none of these.

A station with no usable slot (no lockers yet, or every slot disabled or in fault) has no level (None):
nothing to lend and nowhere to return, which the pages say in words. When both "empty" and "nearly full"
hold (a station with fewer usable slots than its full threshold and no helmet), it is empty: a resident
coming to borrow is the one who would walk there for nothing. When both "nearly empty" and "nearly full"
hold (few usable slots), it is full: that alert is the warning, the other a notice.
"""

from __future__ import annotations

from collections.abc import Set
from enum import StrEnum

from helmet_cloud.domain.alert_rules import AlertKind, Stock, stock_alerts
from helmet_cloud.domain.station_counts import SlotCounts


class FillLevel(StrEnum):
    EMPTY = "empty"
    LOW = "low"
    NORMAL = "normal"
    FULL = "full"


def fill_level(
    counts: SlotCounts, *, low_threshold: int, high_threshold: int, active: Set[str] = frozenset()
) -> FillLevel | None:
    """The station's level now; ``active`` names the stock alerts open on it (kinds, as stored)."""
    usable = counts.helmets_available + counts.free_slots
    if usable == 0:
        return None
    stock = Stock(helmets=counts.helmets_available, free_slots=counts.free_slots, slots=counts.capacity)
    raised = stock_alerts(stock, low_threshold=low_threshold, high_threshold=high_threshold, active=set(active))
    if AlertKind.STATION_EMPTY in raised:
        return FillLevel.EMPTY
    if AlertKind.STATION_FULL in raised:
        return FillLevel.FULL
    if AlertKind.STATION_LOW in raised:
        return FillLevel.LOW
    return FillLevel.NORMAL
