"""One locker's real decision code and real store, driven by hand on an accelerated clock.

What the locker service does each loop turn (sensor readings into
:class:`helmet_edge.locker.Locker`, outcomes committed to the
:class:`helmet_edge.store.Store`), without threads or real time, so a test can
hold a door open for minutes or bounce a sensor every 10 ms. Its outbox is
exactly what the forwarder sends once the locker is online.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.cloud_events import T0

from helmet_edge.locker import Locker, Outcome, Rules
from helmet_edge.slot_machine import SlotMachine, SlotRecord, Timing
from helmet_edge.store import Store
from helmet_protocol.events import SlotState
from helmet_protocol.passes import Role, issue_pass

KEY = Ed25519PrivateKey.generate()
HOST = "helmets.example.org"
RULES = Rules(keys={"k1": KEY.public_key()}, helmet_host=HOST, max_quantity=4)


def genuine(
    *, quantity: int = 1, role: Role = Role.RESIDENT, holder: str = "R-42", now: datetime = T0, key: Any = KEY
) -> str:
    """A pass as the cloud signs it (``KEY`` is the key the kiosk trusts as ``k1``)."""
    return issue_pass(
        signing_key=key, kid="k1", holder_id=holder, quantity=quantity, now=now, ttl=timedelta(minutes=5), role=role
    )


def machines(helmets: dict[int, str | None], timing: Timing) -> dict[int, SlotMachine]:
    return {
        n: SlotMachine(
            SlotRecord(slot=n, state=SlotState.OCCUPIED if h else SlotState.EMPTY, helmet_id=h),
            timing,
            door_closed=True,
            present=h is not None,
        )
        for n, h in helmets.items()
    }


class Kiosk:
    """A locker whose clock runs only when the test says: ``wall`` is ``start`` plus the monotonic time."""

    def __init__(
        self,
        locker_id: str,
        data_dir: Path,
        helmets: dict[int, str | None],
        *,
        timing: Timing | None = None,
        rules: Rules = RULES,
        start: datetime = T0,
    ) -> None:
        self.locker = Locker(machines(helmets, timing or Timing()), rules)
        self.store = Store(data_dir / f"{locker_id}.db", locker_id)
        self.start = start
        self.mono = 0.0
        self.readings = {n: (True, h is not None) for n, h in helmets.items()}  # (door closed, helmet present)

    @property
    def wall(self) -> datetime:
        return self.start + timedelta(seconds=self.mono)

    def apply(self, out: Outcome | None) -> Outcome | None:
        if out is not None and out.durable:
            self.store.commit(records=out.records.values(), events=out.events, honour=out.honour, now=self.wall)
        return out

    def show(self, data: str | bytes) -> Outcome | None:
        """A code in front of the camera (after the previous one's repeat window)."""
        self.mono += self.locker.rules.repeat_window + 1
        raw = data.encode() if isinstance(data, str) else data
        return self.apply(self.locker.scan(raw, wall=self.wall, mono=self.mono, honoured=self.store.is_honoured))

    def run(self, seconds: float, step: float = 0.02) -> None:
        """Time passes with the sensors reading what they read now."""
        end = self.mono + seconds
        while self.mono < end:
            self.mono = min(end, self.mono + step)
            self.apply(self.locker.tick(self.mono, dict(self.readings)))

    def sense(self, slot: int, *, door_closed: bool | None = None, present: bool | None = None) -> None:
        closed, here = self.readings[slot]
        self.readings[slot] = (closed if door_closed is None else door_closed, here if present is None else present)

    def take(self, slot: int) -> None:
        """Open the released door, take the helmet, shut the door."""
        for reading in ({"door_closed": False}, {"present": False}, {"door_closed": True}):
            self.sense(slot, **reading)
            self.run(0.5)

    def put(self, slot: int) -> None:
        for reading in ({"door_closed": False}, {"present": True}, {"door_closed": True}):
            self.sense(slot, **reading)
            self.run(0.5)

    def published(self) -> list[tuple[str, bytes]]:
        """What the forwarder sends once the locker is online: the outbox, in seq order."""
        return [(f"helmet/v1/{self.store.locker_id}/events", p) for _, p in self.store.unsent(1, 100_000)]

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(p) for _, p in self.published()]
