"""The physical side of a locker, on gpiozero mock pins.

A solenoid that holds the door shut unless energised, a door a person can open
only while it is released, and a presence sensor that follows the helmet. The
edge sees only pin levels, exactly as on a Pi.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from helmet_edge.profile import PinProfile, SlotPins
from helmet_sim.pins import ExpanderMockFactory


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
    on_change: Callable[[], None] = field(default=lambda: None, repr=False)

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
        """Record the physical state, then drive the sensor pins from it."""
        with self._lock:
            self.on_change()
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
    """All slots of one simulated locker, on one private MockFactory.

    With ``state_file``, the physical world outlives the process: every change
    is saved before the pins show it, and a new process starts from it, as a
    real locker's doors and helmets stay put when its Pi loses power.
    """

    def __init__(
        self, profile: PinProfile, helmets: dict[int, str] | None = None, *, state_file: Path | None = None
    ) -> None:
        self.profile = profile
        self.factory: MockFactory = ExpanderMockFactory()  # the Pi's header, plus MCP23017 pins
        self.state_file = state_file
        saved: dict[str, dict[str, object]] = {}
        if state_file is not None and state_file.exists():
            saved = json.loads(state_file.read_text())
        helmets = helmets or {}
        self.slots: dict[int, PhysicalSlot] = {}
        for s in profile.slots:
            was = saved.get(str(s.slot), {})
            helmet = was["helmet"] if "helmet" in was else helmets.get(s.slot)
            self.slots[s.slot] = PhysicalSlot(
                self.factory,
                s,
                profile,
                helmet=helmet if isinstance(helmet, str) else None,
                door_open=bool(was.get("door_open", False)),
                on_change=self._save,
            )
        self._save()

    def _save(self) -> None:
        # Called from each slot's sync(); skipped until every slot exists.
        if self.state_file is None or len(getattr(self, "slots", {})) < len(self.profile.slots):
            return
        data = {str(n): {"helmet": s.helmet, "door_open": s.door_open} for n, s in self.slots.items()}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.state_file)

    def close_all_doors(self) -> None:
        for s in self.slots.values():
            if s.door_open:
                s.close_door()

    def sync(self) -> None:
        """Re-drive sensor pins (after the edge created its devices and pulls were applied)."""
        for s in self.slots.values():
            s.sync()

    def released(self) -> list[PhysicalSlot]:
        return [s for s in self.slots.values() if s.released]

    def helmets(self) -> dict[int, str | None]:
        return {n: s.helmet for n, s in self.slots.items()}
