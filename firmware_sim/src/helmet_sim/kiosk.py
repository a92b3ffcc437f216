"""What a person does in front of a locker, at wall-clock speed, through the physical model only.

Hold a code to the camera, watch the LED blink (the code was read), open the
doors that were released, take or put helmets, shut the doors (or not).
Pauses are long enough for the locker's debounced sensors at its poll rate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from helmet_protocol.stickers import helmet_url
from helmet_sim.physical import PhysicalSlot
from helmet_sim.rig import SimLocker

PAUSE = 0.3  # seconds a door or helmet stays put: > 2 sensor polls at 10 Hz plus the 50 ms debounce
READ_TIMEOUT = 10.0  # a person holds the phone up this long before giving up


LOCKER_SEES_OPEN = 15.0  # at most this long a person waits for the lock to click off behind the opened door


def open_door(slot: PhysicalSlot) -> bool:
    """Pull the released door open and wait until the locker has seen it (the solenoid clicks off).

    A person at a real kiosk is slower than the locker; a locker starved of CPU in a big simulated
    town is not, and could miss a whole open-take-close. ``False`` if the lock never let go.
    """
    slot.open_door()
    deadline = time.monotonic() + LOCKER_SEES_OPEN
    while slot.released and time.monotonic() < deadline:
        time.sleep(0.05)
    return not slot.released


@dataclass
class Visit:
    """What came of one visit to the kiosk."""

    read: bool = False  # the LED blinked: the locker read the code
    opened: list[int] = field(default_factory=list)
    taken: list[str] = field(default_factory=list)
    left_open: list[PhysicalSlot] = field(default_factory=list)


def _show(rig: SimLocker, text: str, *, timeout: float) -> Visit:
    visit = Visit()
    rig.wait_quiet()
    already = {s.number for s in rig.physical.released()}
    seen = rig.feedback_count()
    rig.camera.show(text)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            released = [s for s in rig.physical.released() if s.number not in already]
            if released:
                time.sleep(0.1)  # the locker opens its slots one after another within one loop turn
                visit.opened = [s.number for s in rig.physical.released() if s.number not in already]
                visit.read = True
                return visit
            if rig.feedback_count() > seen:
                visit.read = True
                time.sleep(0.2)  # the LED blinks after the locks moved: look once more before walking away
                visit.opened = [s.number for s in rig.physical.released() if s.number not in already]
                return visit
            time.sleep(0.02)
        visit.read = rig.feedback_count() > seen
        return visit
    finally:
        rig.camera.clear()


def use_pass(rig: SimLocker, text: str, *, leave_open: bool = False, timeout: float = READ_TIMEOUT) -> Visit:
    """Show a borrow pass; take the helmet from every slot that opens; shut each door unless ``leave_open``."""
    visit = _show(rig, text, timeout=timeout)
    for n in visit.opened:
        slot = rig.physical.slots[n]
        open_door(slot)
        time.sleep(PAUSE)
        if slot.helmet is not None:
            visit.taken.append(slot.take_helmet())
        time.sleep(PAUSE)
        if leave_open:
            visit.left_open.append(slot)
        else:
            slot.close_door()
    if visit.opened:
        time.sleep(PAUSE)
    return visit


def try_code(rig: SimLocker, text: str, *, timeout: float = READ_TIMEOUT) -> Visit:
    """Show a code that should be refused: report whether anything opened (and shut it again)."""
    return _show(rig, text, timeout=timeout)


def put_back(rig: SimLocker, helmet_id: str, *, timeout: float = READ_TIMEOUT) -> int | None:
    """Hold the helmet's sticker up, put it into the slot that opens, shut the door. ``None``: nothing opened."""
    visit = _show(rig, helmet_url(rig.helmet_host, helmet_id), timeout=timeout)
    if not visit.opened:
        return None
    slot = rig.physical.slots[visit.opened[0]]
    open_door(slot)
    time.sleep(PAUSE)
    slot.put_helmet(helmet_id)
    time.sleep(PAUSE)
    slot.close_door()
    time.sleep(PAUSE)
    return slot.number


def stock(rig: SimLocker, technician_pass: str, helmets: list[str]) -> list[str]:
    """A technician opens maintenance mode, puts ``helmets`` in and shows the pass again to leave it.

    Returns the helmets that went in.
    """
    shown = time.monotonic()
    if not _show(rig, technician_pass, timeout=10.0).read:
        raise TimeoutError(f"{rig.locker_id} did not read the technician pass")
    stocked = []
    for helmet in helmets:
        if put_back(rig, helmet, timeout=10.0) is None:
            break
        stocked.append(helmet)
    # The kiosk acts on a code once per repeat window: the pass comes out of the pocket again after it.
    time.sleep(max(0.0, shown + rig.service.rules.repeat_window + 0.5 - time.monotonic()))
    if not rig.service.locker.in_maintenance(rig.service.clock.mono()):
        return stocked  # the window already ran out (a slow machine): showing the used pass would be a replay
    if not _show(rig, technician_pass, timeout=10.0).read:
        raise TimeoutError(f"{rig.locker_id} did not read the technician pass to leave maintenance mode")
    return stocked
