"""The physical side of a locker, on gpiozero mock pins.

A solenoid that holds the door shut unless energised, a door a person can open
only while it is released, and a presence sensor that follows the helmet. The
edge sees only pin levels, exactly as on a Pi.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from gpiozero.pins.mock import MockFactory

from helmet_edge.profile import PinProfile, SlotPins


class PhysicalError(RuntimeError):
    """Something a person cannot do (open a locked door, take from an empty slot)."""


@dataclass
class PhysicalSlot:
    factory: MockFactory
    pins: SlotPins
    profile: PinProfile
    helmet: str | None = None
    door_open: bool = False
    jammed: bool = False

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self.sync()

    @property
    def number(self) -> int:
        return self.pins.slot

    @property
    def released(self) -> bool:
        """The solenoid is energised: the door can be pulled open."""
        state = bool(self.factory.pin(self.pins.lock).state)
        return state == self.profile.lock_active_high

    def sync(self) -> None:
        """Drive the sensor pins from the physical state."""
        with self._lock:
            self._drive(self.pins.door, active=not self.door_open, active_low=self.profile.door_closed_level == "low")
            self._drive(
                self.pins.presence, active=self.helmet is not None, active_low=self.profile.presence_level == "low"
            )

    def _drive(self, pin_name: str, *, active: bool, active_low: bool) -> None:
        pin = self.factory.pin(pin_name)
        if active == active_low:
            pin.drive_low()
        else:
            pin.drive_high()

    def open_door(self) -> None:
        with self._lock:
            if self.door_open:
                return
            if not self.released or self.jammed:
                raise PhysicalError(f"slot {self.number} is locked")
            self.door_open = True
            self.sync()

    def close_door(self) -> None:
        with self._lock:
            self.door_open = False
            self.sync()

    def take_helmet(self) -> str:
        with self._lock:
            if not self.door_open or self.helmet is None:
                raise PhysicalError(f"nothing to take from slot {self.number}")
            helmet, self.helmet = self.helmet, None
            self.sync()
            return helmet

    def put_helmet(self, helmet_id: str) -> None:
        with self._lock:
            if not self.door_open or self.helmet is not None:
                raise PhysicalError(f"cannot put a helmet into slot {self.number}")
            self.helmet = helmet_id
            self.sync()


class PhysicalLocker:
    """All slots of one simulated locker, on one private MockFactory."""

    def __init__(self, profile: PinProfile, helmets: dict[int, str] | None = None) -> None:
        self.profile = profile
        self.factory = MockFactory()
        helmets = helmets or {}
        self.slots = {s.slot: PhysicalSlot(self.factory, s, profile, helmet=helmets.get(s.slot)) for s in profile.slots}

    def sync(self) -> None:
        """Re-drive sensor pins (after the edge created its devices and pulls were applied)."""
        for s in self.slots.values():
            s.sync()

    def released(self) -> list[PhysicalSlot]:
        return [s for s in self.slots.values() if s.released]

    def helmets(self) -> dict[int, str | None]:
        return {n: s.helmet for n, s in self.slots.items()}
