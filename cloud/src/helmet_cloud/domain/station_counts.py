"""What a station can lend and take back: the one rule the API, the pages, the public feed and the alerts share.

Every slot numbered 1 to the locker's registered ``slot_count`` is counted
once, in exactly one of four boxes, so the four always add up to the
station's capacity:

- a helmet available: the slot holds a helmet and is in service;
- a helmet out of service: it is in a slot that is disabled or in fault;
- a free slot: empty and in service, a return can go there;
- a free slot out of service: empty, but disabled or in fault.

A slot with no row yet is empty (as ingest derives it). A slot numbered past
``slot_count`` (a locker wired with more slots than it was registered with)
is not counted: the registration is what the town planned, and the
difference is shown as the locker's snapshot mismatch. A door that is open
counts as what the events say the slot holds; the borrow or return it is part
of moves the count when it completes. Helmets at an offline locker still
count (the locker checks passes offline), but the station is not said to be
renting or returning through that locker.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from helmet_protocol.events import SlotState

OUT_OF_SERVICE = frozenset({SlotState.DISABLED.value, SlotState.FAULT.value})


@dataclass(frozen=True, slots=True)
class SlotView:
    """One slot as the cloud derived it from the locker's events."""

    slot: int
    state: str
    has_helmet: bool


@dataclass(frozen=True, slots=True)
class LockerView:
    slot_count: int
    online: bool
    slots: Sequence[SlotView]


@dataclass(frozen=True, slots=True)
class SlotCounts:
    helmets_available: int = 0
    helmets_disabled: int = 0
    free_slots: int = 0
    free_slots_disabled: int = 0
    renting: bool = False  # an online locker here has a helmet to lend
    returning: bool = False  # an online locker here has a free slot

    @property
    def disabled_slots(self) -> int:
        """Slots out of service, with or without a helmet in them."""
        return self.helmets_disabled + self.free_slots_disabled

    @property
    def capacity(self) -> int:
        return self.helmets_available + self.helmets_disabled + self.free_slots + self.free_slots_disabled

    def __add__(self, other: SlotCounts) -> SlotCounts:
        return SlotCounts(
            helmets_available=self.helmets_available + other.helmets_available,
            helmets_disabled=self.helmets_disabled + other.helmets_disabled,
            free_slots=self.free_slots + other.free_slots,
            free_slots_disabled=self.free_slots_disabled + other.free_slots_disabled,
            renting=self.renting or other.renting,
            returning=self.returning or other.returning,
        )


def locker_counts(locker: LockerView) -> SlotCounts:
    """One locker's slots, each in one of the four boxes."""
    by_number = {s.slot: s for s in locker.slots if 1 <= s.slot <= locker.slot_count}
    available = disabled_helmets = free = disabled_free = 0
    for number in range(1, locker.slot_count + 1):
        s = by_number.get(number)
        held = s is not None and (s.state == SlotState.OCCUPIED.value or s.has_helmet)
        if s is not None and s.state in OUT_OF_SERVICE:
            disabled_helmets += held
            disabled_free += not held
        else:
            available += held
            free += not held
    return SlotCounts(
        helmets_available=available,
        helmets_disabled=disabled_helmets,
        free_slots=free,
        free_slots_disabled=disabled_free,
        renting=locker.online and available > 0,
        returning=locker.online and free > 0,
    )


def station_counts(lockers: Iterable[LockerView]) -> SlotCounts:
    """A station's counts: its lockers' summed."""
    total = SlotCounts()
    for lk in lockers:
        total += locker_counts(lk)
    return total
