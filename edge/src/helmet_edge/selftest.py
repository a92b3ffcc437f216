"""The locker self-test: pulse each lock, read each sensor, compare with what is stored.

Used by ``helmet-edge selftest`` on site and by the cloud's ``selftest`` command.
A slot that is open or unlocking for someone is left alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

from helmet_edge.ports import SlotBank
from helmet_protocol.events import SlotState

BUSY = (SlotState.UNLOCKING, SlotState.OPEN)


@dataclass(frozen=True, slots=True)
class SlotCheck:
    slot: int
    state: str
    door_closed: bool
    present: bool
    lock_pulsed: bool
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def run_selftest(
    slots: SlotBank,
    states: Mapping[int, SlotState],
    *,
    pulse: float = 0.3,
    sleep: Callable[[float], None] = time.sleep,
) -> list[SlotCheck]:
    """Check every slot; the lock is released for ``pulse`` seconds and locked again."""
    readings = slots.read()
    checks = []
    for n in sorted(states):
        state = states[n]
        closed, present = readings[n]
        problems: list[str] = []
        pulsed = False
        if state in BUSY:
            problems.append(f"skipped: slot is {state}")
        else:
            slots.set_lock(n, True)
            energised = slots.lock_energised(n)
            sleep(pulse)
            slots.set_lock(n, False)
            pulsed = energised and not slots.lock_energised(n)
            if not pulsed:
                problems.append("lock output did not follow")
            if not closed:
                problems.append("door reads open")
            if state == SlotState.OCCUPIED and not present:
                problems.append("stored occupied, presence reads empty")
            if state == SlotState.EMPTY and present:
                problems.append("stored empty, presence reads a helmet")
        checks.append(SlotCheck(n, str(state), closed, present, pulsed, tuple(problems)))
    return checks


def summary(checks: list[SlotCheck]) -> str:
    """One line for the ``locker.selftest`` event's detail (at most 1024 characters)."""
    bad = [c for c in checks if not c.ok]
    if not bad:
        return f"{len(checks)} slots ok"
    text = f"{len(checks) - len(bad)}/{len(checks)} slots ok; " + "; ".join(
        f"slot {c.slot}: {', '.join(c.problems)}" for c in bad
    )
    return text[:1024]


def as_table(checks: list[SlotCheck]) -> str:
    rows = [("slot", "state", "door", "helmet", "lock", "result")]
    for c in checks:
        rows.append(
            (
                str(c.slot),
                c.state,
                "closed" if c.door_closed else "OPEN",
                "yes" if c.present else "no",
                "ok" if c.lock_pulsed else "-",
                "ok" if c.ok else "; ".join(c.problems),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows)


def as_data(checks: list[SlotCheck]) -> dict[str, object]:
    return {"ok": all(c.ok for c in checks), "slots": json.loads(json.dumps([asdict(c) for c in checks]))}
