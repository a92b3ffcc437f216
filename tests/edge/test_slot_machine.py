"""One slot's state machine, driven the way the service drives it: raw sensor
readings at explicit monotonic times."""

from __future__ import annotations

import json

import pytest

from helmet_edge.slot_machine import EventDraft, Purpose, SlotMachine, SlotRecord, Step, Timing
from helmet_protocol.events import EventKind, FaultReason, SlotState

TIMING = Timing()  # unlock 20 s, door open 90 s, debounce 50 ms
TICK = 0.02  # the service polls at 50 Hz


class Slot:
    """A slot machine plus the door and presence sensor it reads.

    Records every event and where the lock was last told to go, as the
    service would.
    """

    def __init__(self, record: SlotRecord, *, door_closed: bool = True, present: bool | None = None) -> None:
        self.door_closed = door_closed
        self.present = record.state == SlotState.OCCUPIED if present is None else present
        self.machine = SlotMachine(record, TIMING, door_closed=self.door_closed, present=self.present)
        self.now = 100.0
        self.events: list[EventDraft] = []
        self.lock = False

    @classmethod
    def holding(cls, helmet_id: str = "H-0001") -> Slot:
        return cls(SlotRecord(slot=3, state=SlotState.OCCUPIED, helmet_id=helmet_id))

    @classmethod
    def empty(cls) -> Slot:
        return cls(SlotRecord(slot=3, state=SlotState.EMPTY))

    def state(self) -> SlotState:
        # A method, not a property: type checkers would otherwise narrow it across steps.
        return self.machine.state

    def apply(self, step: Step) -> Step:
        self.events.extend(step.events)
        if step.lock is not None:
            self.lock = step.lock
        return step

    def unlock(self, purpose: Purpose, **kwargs: str) -> None:
        self.apply(self.machine.unlock(self.now, purpose, **kwargs))

    def feed(self, *, door_closed: bool, present: bool) -> None:
        """One raw reading, then the clock moves on one poll."""
        self.apply(self.machine.step(self.now, door_closed=door_closed, present=present))
        self.now += TICK

    def wait(self, seconds: float) -> None:
        """Let time pass with the sensors steady at what they read now."""
        end = self.now + seconds
        while self.now < end:
            self.feed(door_closed=self.door_closed, present=self.present)

    def open_door(self) -> None:
        self.door_closed = False
        self.wait(0.2)

    def close_door(self) -> None:
        self.door_closed = True
        self.wait(0.2)

    def take_helmet(self) -> None:
        self.present = False
        self.wait(0.2)

    def put_helmet(self) -> None:
        self.present = True
        self.wait(0.2)

    def kinds(self) -> list[EventKind]:
        return [e.kind for e in self.events]


def only(events: list[EventDraft]) -> EventDraft:
    assert len(events) == 1, events
    return events[0]


# -- borrowing -------------------------------------------------------------------


def test_borrow_records_one_helmet_borrowed_and_empties_the_slot() -> None:
    slot = Slot.holding("H-0001")
    slot.unlock(Purpose.BORROW, pass_id="P-1", resident_id="R-42")
    assert slot.state() == SlotState.UNLOCKING
    assert slot.lock is True
    assert slot.events == []

    slot.open_door()
    assert slot.state() == SlotState.OPEN
    assert slot.lock is False, "the lock is released as soon as the door is open"

    slot.take_helmet()
    assert slot.events == [], "nothing is recorded until the door is shut again"
    slot.close_door()

    assert only(slot.events) == EventDraft(
        EventKind.HELMET_BORROWED, slot=3, helmet_id="H-0001", pass_id="P-1", resident_id="R-42"
    )
    assert slot.state() == SlotState.EMPTY
    assert slot.machine.record == SlotRecord(slot=3, state=SlotState.EMPTY)

    slot.wait(200)  # long past every timeout
    assert len(slot.events) == 1
    assert slot.lock is False


def test_helmet_left_in_is_borrow_cancelled_and_slot_keeps_its_helmet() -> None:
    slot = Slot.holding("H-0001")
    slot.unlock(Purpose.BORROW, pass_id="P-1", resident_id="R-42")
    slot.open_door()
    slot.close_door()

    assert only(slot.events) == EventDraft(
        EventKind.BORROW_CANCELLED, slot=3, helmet_id="H-0001", pass_id="P-1", resident_id="R-42"
    )
    assert slot.state() == SlotState.OCCUPIED
    assert slot.machine.record == SlotRecord(slot=3, state=SlotState.OCCUPIED, helmet_id="H-0001")


def test_door_never_opened_times_out_after_20_s_and_relocks() -> None:
    slot = Slot.holding("H-0001")
    slot.unlock(Purpose.BORROW, pass_id="P-1", resident_id="R-42")

    slot.wait(19.9)
    assert slot.state() == SlotState.UNLOCKING
    assert slot.lock is True
    assert slot.events == []

    slot.wait(0.2)
    assert only(slot.events) == EventDraft(
        EventKind.UNLOCK_TIMEOUT, slot=3, helmet_id="H-0001", pass_id="P-1", resident_id="R-42"
    )
    assert slot.lock is False, "the solenoid must not stay energised"
    assert slot.machine.record == SlotRecord(slot=3, state=SlotState.OCCUPIED, helmet_id="H-0001")


def test_opening_after_the_unlock_timed_out_is_a_forced_door() -> None:
    slot = Slot.holding("H-0001")
    slot.unlock(Purpose.BORROW, pass_id="P-1", resident_id="R-42")
    slot.wait(21)
    slot.open_door()
    assert slot.kinds() == [EventKind.UNLOCK_TIMEOUT, EventKind.SLOT_FAULT]
    assert slot.events[1].reason == FaultReason.LOCK_JAMMED


# -- door left open ------------------------------------------------------------------


def test_door_open_90_s_is_door_ajar_then_closing_clears_it() -> None:
    slot = Slot.holding("H-0001")
    slot.unlock(Purpose.BORROW, pass_id="P-1", resident_id="R-42")
    slot.open_door()
    slot.take_helmet()

    slot.wait(89.5)
    assert slot.events == []
    assert slot.state() == SlotState.OPEN

    slot.wait(0.5)
    fault = only(slot.events)
    assert (fault.kind, fault.reason, fault.helmet_id) == (EventKind.SLOT_FAULT, FaultReason.DOOR_AJAR, "H-0001")
    assert slot.state() == SlotState.FAULT

    slot.wait(300)
    assert len(slot.events) == 1, "one fault, however long the door stays open"

    slot.close_door()
    assert slot.kinds() == [EventKind.SLOT_FAULT, EventKind.HELMET_BORROWED, EventKind.SLOT_CLEARED]
    borrowed, cleared = slot.events[1:]
    assert (borrowed.helmet_id, borrowed.pass_id, borrowed.resident_id) == ("H-0001", "P-1", "R-42")
    assert cleared.reason == FaultReason.DOOR_AJAR
    assert slot.machine.record == SlotRecord(slot=3, state=SlotState.EMPTY)


def test_a_helmet_taken_from_a_door_left_open_is_borrowed_when_it_left() -> None:
    """The record waits for the door, but says when the helmet went: a return elsewhere may come first."""
    slot = Slot.holding("H-0001")
    slot.unlock(Purpose.BORROW, pass_id="P-1", resident_id="R-42")
    slot.open_door()
    slot.take_helmet()
    slot.wait(600)  # ten minutes until someone shuts it
    slot.close_door()
    borrowed = next(e for e in slot.events if e.kind == EventKind.HELMET_BORROWED)
    assert borrowed.earlier_s == pytest.approx(600.4, abs=0.3)


def test_a_quick_borrow_happened_when_it_is_recorded() -> None:
    slot = Slot.holding("H-0001")
    slot.unlock(Purpose.BORROW, pass_id="P-1", resident_id="R-42")
    slot.open_door()
    slot.take_helmet()
    slot.close_door()
    assert only(slot.events).earlier_s == pytest.approx(0.4, abs=0.2)


def test_door_ajar_with_helmet_left_in_clears_as_a_cancelled_borrow() -> None:
    slot = Slot.holding("H-0001")
    slot.unlock(Purpose.BORROW, pass_id="P-1", resident_id="R-42")
    slot.open_door()
    slot.wait(91)
    slot.close_door()
    assert slot.kinds() == [EventKind.SLOT_FAULT, EventKind.BORROW_CANCELLED, EventKind.SLOT_CLEARED]
    assert slot.machine.record == SlotRecord(slot=3, state=SlotState.OCCUPIED, helmet_id="H-0001")


# -- returning ---------------------------------------------------------------------


def test_return_by_sticker_records_helmet_returned_and_the_slot_holds_it() -> None:
    slot = Slot.empty()
    slot.unlock(Purpose.RETURN, incoming_helmet_id="H-0002")
    assert slot.lock is True
    slot.open_door()
    slot.put_helmet()
    slot.close_door()

    returned = only(slot.events)
    assert (returned.kind, returned.slot, returned.helmet_id) == (EventKind.HELMET_RETURNED, 3, "H-0002")
    assert slot.machine.record == SlotRecord(slot=3, state=SlotState.OCCUPIED, helmet_id="H-0002")
    assert slot.lock is False


def test_return_closed_without_a_helmet_is_return_cancelled() -> None:
    slot = Slot.empty()
    slot.unlock(Purpose.RETURN, incoming_helmet_id="H-0002")
    slot.open_door()
    slot.close_door()

    assert only(slot.events) == EventDraft(EventKind.RETURN_CANCELLED, slot=3, helmet_id="H-0002")
    assert slot.machine.record == SlotRecord(slot=3, state=SlotState.EMPTY)


# -- sensors that disagree or bounce --------------------------------------------------


def test_presence_lost_behind_a_shut_door_is_sensor_conflict_and_clears_when_it_comes_back() -> None:
    slot = Slot.holding("H-0001")
    slot.take_helmet()  # the door never opened: the sensor, not the helmet, changed

    fault = only(slot.events)
    assert (fault.kind, fault.reason, fault.helmet_id) == (EventKind.SLOT_FAULT, FaultReason.SENSOR_CONFLICT, "H-0001")
    assert fault.detail and "none" in fault.detail
    assert slot.state() == SlotState.FAULT

    slot.wait(200)
    assert len(slot.events) == 1

    slot.put_helmet()
    cleared = slot.events[-1]
    assert (cleared.kind, cleared.helmet_id, cleared.reason) == (EventKind.SLOT_CLEARED, "H-0001", None)
    assert slot.machine.record == SlotRecord(slot=3, state=SlotState.OCCUPIED, helmet_id="H-0001")
    assert slot.lock is False


def test_presence_appearing_in_a_shut_empty_slot_is_sensor_conflict() -> None:
    slot = Slot.empty()
    slot.put_helmet()
    assert only(slot.events).reason == FaultReason.SENSOR_CONFLICT
    slot.take_helmet()
    assert slot.kinds() == [EventKind.SLOT_FAULT, EventKind.SLOT_CLEARED]
    assert slot.machine.record == SlotRecord(slot=3, state=SlotState.EMPTY)


def test_presence_flicker_shorter_than_debounce_is_ignored() -> None:
    slot = Slot.holding()
    for _ in range(50):
        slot.feed(door_closed=True, present=False)
        slot.feed(door_closed=True, present=True)
    assert slot.events == []
    assert slot.state() == SlotState.OCCUPIED


def bounce(slot: Slot, settle_closed: bool, *, present: bool, times: int = 15) -> None:
    """A reed switch chattering every poll (20 ms, under the 50 ms debounce), then settling."""
    for i in range(times):
        slot.feed(door_closed=bool(i % 2) == settle_closed, present=present)
    slot.door_closed = settle_closed
    slot.wait(0.2)


def test_bouncing_reed_switch_gives_one_borrow_and_no_faults() -> None:
    slot = Slot.holding("H-0001")
    slot.unlock(Purpose.BORROW, pass_id="P-1", resident_id="R-42")
    bounce(slot, settle_closed=False, present=True)
    assert slot.state() == SlotState.OPEN
    slot.take_helmet()
    bounce(slot, settle_closed=True, present=False)
    # After the close, vibration makes the switch chatter again: still nothing new.
    for _ in range(5):
        bounce(slot, settle_closed=True, present=False)

    assert slot.kinds() == [EventKind.HELMET_BORROWED]
    assert slot.state() == SlotState.EMPTY


def test_chattering_switch_on_a_locked_door_is_not_a_forced_door() -> None:
    slot = Slot.holding()
    for _ in range(10):
        bounce(slot, settle_closed=True, present=True)
    assert slot.events == []
    assert slot.state() == SlotState.OCCUPIED


# -- forced doors ----------------------------------------------------------------------


def test_door_forced_open_while_locked_is_lock_jammed() -> None:
    slot = Slot.holding("H-0001")
    slot.open_door()

    fault = only(slot.events)
    assert (fault.kind, fault.reason, fault.helmet_id) == (EventKind.SLOT_FAULT, FaultReason.LOCK_JAMMED, "H-0001")
    assert slot.state() == SlotState.FAULT
    assert slot.lock is False, "a forced door never energises the lock"

    slot.close_door()
    assert slot.kinds() == [EventKind.SLOT_FAULT, EventKind.SLOT_CLEARED]
    assert slot.events[1].reason == FaultReason.LOCK_JAMMED
    assert slot.machine.record == SlotRecord(slot=3, state=SlotState.OCCUPIED, helmet_id="H-0001")


def test_helmet_taken_through_a_forced_door_is_recorded_as_removed() -> None:
    slot = Slot.holding("H-0001")
    slot.open_door()
    slot.take_helmet()
    slot.close_door()
    assert slot.kinds() == [EventKind.SLOT_FAULT, EventKind.HELMET_REMOVED, EventKind.SLOT_CLEARED]
    assert slot.events[1].helmet_id == "H-0001"
    assert slot.machine.record == SlotRecord(slot=3, state=SlotState.EMPTY)


# -- after a power cut --------------------------------------------------------------------


def after_power_cut(record: SlotRecord, *, door_closed: bool, present: bool) -> Slot:
    """The record as the store kept it (through JSON), with what the sensors read at boot."""
    stored = SlotRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert stored == record
    return Slot(stored, door_closed=door_closed, present=present)


MID_BORROW = {
    "unlocking": SlotRecord(
        slot=3,
        state=SlotState.UNLOCKING,
        helmet_id="H-0001",
        purpose=Purpose.BORROW,
        pass_id="P-1",
        resident_id="R-42",
        resume_state=SlotState.OCCUPIED,
    ),
    "open": SlotRecord(
        slot=3,
        state=SlotState.OPEN,
        helmet_id="H-0001",
        purpose=Purpose.BORROW,
        pass_id="P-1",
        resident_id="R-42",
        resume_state=SlotState.OCCUPIED,
        present_at_open=True,
    ),
}
MID_RETURN = {
    "unlocking": SlotRecord(
        slot=3,
        state=SlotState.UNLOCKING,
        purpose=Purpose.RETURN,
        incoming_helmet_id="H-0002",
        resume_state=SlotState.EMPTY,
    ),
    "open": SlotRecord(
        slot=3,
        state=SlotState.OPEN,
        purpose=Purpose.RETURN,
        incoming_helmet_id="H-0002",
        resume_state=SlotState.EMPTY,
        present_at_open=False,
    ),
}


@pytest.mark.parametrize("stored", MID_BORROW.values(), ids=MID_BORROW.keys())
def test_power_cut_mid_borrow_with_helmet_gone_records_one_borrow(stored: SlotRecord) -> None:
    slot = after_power_cut(stored, door_closed=True, present=False)
    slot.apply(slot.machine.reconcile(slot.now))

    assert only(slot.events) == EventDraft(
        EventKind.HELMET_BORROWED, slot=3, helmet_id="H-0001", pass_id="P-1", resident_id="R-42"
    )
    assert slot.machine.record == SlotRecord(slot=3, state=SlotState.EMPTY)

    slot.wait(200)
    assert len(slot.events) == 1
    assert slot.lock is False


@pytest.mark.parametrize("stored", MID_RETURN.values(), ids=MID_RETURN.keys())
def test_power_cut_mid_return_with_helmet_in_records_one_return(stored: SlotRecord) -> None:
    slot = after_power_cut(stored, door_closed=True, present=True)
    slot.apply(slot.machine.reconcile(slot.now))

    returned = only(slot.events)
    assert (returned.kind, returned.helmet_id) == (EventKind.HELMET_RETURNED, "H-0002")
    assert slot.machine.record == SlotRecord(slot=3, state=SlotState.OCCUPIED, helmet_id="H-0002")
    slot.wait(200)
    assert len(slot.events) == 1


def test_power_cut_during_unlock_with_nothing_changed_is_unlock_timeout() -> None:
    slot = after_power_cut(MID_BORROW["unlocking"], door_closed=True, present=True)
    step = slot.apply(slot.machine.reconcile(slot.now))

    timeout = only(slot.events)
    assert (timeout.kind, timeout.helmet_id, timeout.pass_id, timeout.resident_id) == (
        EventKind.UNLOCK_TIMEOUT,
        "H-0001",
        "P-1",
        "R-42",
    )
    assert timeout.detail and "restart" in timeout.detail
    assert step.lock is not True, "start-up never energises a lock"
    assert slot.machine.record == SlotRecord(slot=3, state=SlotState.OCCUPIED, helmet_id="H-0001")
    slot.wait(200)
    assert len(slot.events) == 1


def test_power_cut_with_door_still_open_resumes_and_records_on_close() -> None:
    slot = after_power_cut(MID_BORROW["unlocking"], door_closed=False, present=False)
    slot.apply(slot.machine.reconcile(slot.now))
    assert slot.events == []
    assert slot.state() == SlotState.OPEN

    slot.close_door()
    assert slot.kinds() == [EventKind.HELMET_BORROWED]


def test_power_cut_with_door_open_still_faults_after_90_s() -> None:
    slot = after_power_cut(MID_BORROW["open"], door_closed=False, present=True)
    slot.apply(slot.machine.reconcile(slot.now))
    slot.wait(89.5)
    assert slot.events == []
    slot.wait(1)
    assert only(slot.events).reason == FaultReason.DOOR_AJAR


def test_reconcile_of_a_settled_slot_records_nothing() -> None:
    for record, present in (
        (SlotRecord(slot=3, state=SlotState.OCCUPIED, helmet_id="H-0001"), True),
        (SlotRecord(slot=3, state=SlotState.EMPTY), False),
    ):
        slot = after_power_cut(record, door_closed=True, present=present)
        assert slot.machine.reconcile(slot.now).empty
        assert slot.machine.record == record


def test_helmet_missing_at_start_up_is_removed_and_one_found_is_stocked() -> None:
    gone = after_power_cut(
        SlotRecord(slot=3, state=SlotState.OCCUPIED, helmet_id="H-0001"), door_closed=True, present=False
    )
    gone.apply(gone.machine.reconcile(gone.now))
    assert (only(gone.events).kind, gone.events[0].helmet_id) == (EventKind.HELMET_REMOVED, "H-0001")
    assert gone.state() == SlotState.EMPTY

    found = after_power_cut(SlotRecord(slot=3, state=SlotState.EMPTY), door_closed=True, present=True)
    found.apply(found.machine.reconcile(found.now))
    assert only(found.events).kind == EventKind.HELMET_STOCKED
    assert found.state() == SlotState.OCCUPIED


def test_reconcile_twice_records_the_change_once() -> None:
    slot = after_power_cut(MID_BORROW["unlocking"], door_closed=True, present=False)
    slot.apply(slot.machine.reconcile(slot.now))
    slot.apply(slot.machine.reconcile(slot.now + 1))
    assert slot.kinds() == [EventKind.HELMET_BORROWED]


# -- disabling --------------------------------------------------------------------------


def test_disabled_slot_ignores_its_sensors_and_comes_back_by_presence() -> None:
    slot = Slot.holding("H-0001")
    slot.apply(slot.machine.set_disabled(True))
    assert slot.state() == SlotState.DISABLED
    slot.open_door()
    slot.take_helmet()
    slot.close_door()
    assert slot.kinds() == [EventKind.SLOT_DISABLED]

    slot.apply(slot.machine.set_disabled(False))
    assert slot.kinds() == [EventKind.SLOT_DISABLED, EventKind.HELMET_REMOVED, EventKind.SLOT_ENABLED]
    assert slot.events[1].helmet_id == "H-0001"
    assert slot.machine.record == SlotRecord(slot=3, state=SlotState.EMPTY)  # no longer names the helmet
    assert slot.machine.set_disabled(False).empty


def test_disabled_slot_that_kept_its_helmet_comes_back_occupied() -> None:
    slot = Slot.holding("H-0001")
    slot.apply(slot.machine.set_disabled(True))
    slot.apply(slot.machine.set_disabled(False))
    assert slot.kinds() == [EventKind.SLOT_DISABLED, EventKind.SLOT_ENABLED]
    assert slot.machine.record == SlotRecord(slot=3, state=SlotState.OCCUPIED, helmet_id="H-0001")
