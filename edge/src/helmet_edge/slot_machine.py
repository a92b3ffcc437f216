"""One slot as a state machine driven by debounced sensor readings.

Pure logic: no GPIO, no clock of its own, no I/O. The service feeds it readings
and a monotonic time; it answers with a :class:`Step` saying what changed,
which events to record and where the lock must go. The caller records the
change and its events in one transaction *before* it moves the lock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from helmet_protocol.events import EventKind, FaultReason, SlotState


class Purpose(StrEnum):
    """Why a slot was unlocked; decides what closing the door means."""

    BORROW = "borrow"
    RETURN = "return"
    STOCK = "stock"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Timing:
    unlock_timeout: float = 20.0
    door_open_fault: float = 90.0
    debounce: float = 0.05


@dataclass(frozen=True, slots=True)
class SlotRecord:
    """What the locker stores about a slot; survives a power cut."""

    slot: int
    state: SlotState
    helmet_id: str | None = None
    purpose: Purpose | None = None
    pass_id: str | None = None
    resident_id: str | None = None
    incoming_helmet_id: str | None = None
    resume_state: SlotState | None = None
    fault: FaultReason | None = None
    present_at_open: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SlotRecord:
        return cls(
            slot=int(data["slot"]),
            state=SlotState(data["state"]),
            helmet_id=data.get("helmet_id"),
            purpose=Purpose(data["purpose"]) if data.get("purpose") else None,
            pass_id=data.get("pass_id"),
            resident_id=data.get("resident_id"),
            incoming_helmet_id=data.get("incoming_helmet_id"),
            resume_state=SlotState(data["resume_state"]) if data.get("resume_state") else None,
            fault=FaultReason(data["fault"]) if data.get("fault") else None,
            present_at_open=data.get("present_at_open"),
        )


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An event before the store gives it an id, a seq and a timestamp."""

    kind: EventKind
    slot: int | None = None
    helmet_id: str | None = None
    pass_id: str | None = None
    resident_id: str | None = None
    reason: str | None = None
    detail: str | None = None
    # How long before it is recorded it happened: a helmet taken out of a door left open is borrowed when
    # it left, not when someone finally shuts the door (the cloud orders a helmet's events by time).
    earlier_s: float = field(default=0.0, compare=False)


@dataclass(slots=True)
class Step:
    record: SlotRecord | None = None
    events: list[EventDraft] = field(default_factory=list)
    lock: bool | None = None

    @property
    def empty(self) -> bool:
        return self.record is None and not self.events and self.lock is None


class Debounced:
    """A boolean input that changes only after holding a new value for ``hold`` seconds."""

    __slots__ = ("_candidate", "_since", "value")

    def __init__(self, value: bool) -> None:
        self.value = value
        self._candidate = value
        self._since = 0.0

    def feed(self, raw: bool, now: float, hold: float) -> bool:
        if raw == self.value:
            self._candidate = raw
        elif raw != self._candidate:
            self._candidate, self._since = raw, now
        elif now - self._since >= hold:
            self.value = raw
        return self.value


class SlotMachine:
    """The life of one slot: occupied, empty, unlocking, open, disabled, fault."""

    def __init__(self, record: SlotRecord, timing: Timing, *, door_closed: bool, present: bool) -> None:
        self.record = record
        self.timing = timing
        self.door_closed = Debounced(door_closed)
        self.present = Debounced(present)
        self.deadline: float | None = None
        self._presence_changed_at: float | None = None  # monotonic time of the last settled change

    @property
    def state(self) -> SlotState:
        return self.record.state

    def _set(self, step: Step, **changes: Any) -> None:
        self.record = replace(self.record, **changes)
        step.record = self.record

    def _draft(self, kind: EventKind, **fields: Any) -> EventDraft:
        return EventDraft(kind=kind, slot=self.record.slot, **fields)

    def unlock(
        self,
        now: float,
        purpose: Purpose,
        *,
        pass_id: str | None = None,
        resident_id: str | None = None,
        incoming_helmet_id: str | None = None,
    ) -> Step:
        """Release the lock for one person; the caller checked that it makes sense."""
        step = Step(lock=True)
        self.deadline = now + self.timing.unlock_timeout
        self._set(
            step,
            state=SlotState.UNLOCKING,
            purpose=purpose,
            pass_id=pass_id,
            resident_id=resident_id,
            incoming_helmet_id=incoming_helmet_id,
            resume_state=self.record.state,
            present_at_open=None,
        )
        return step

    def reconcile(self, now: float) -> Step:
        """After a restart: compare the stored state with what the sensors read now.

        The lock is de-energised during start-up, so an interrupted unlock is
        over; whatever physically changed meanwhile is recorded once.
        """
        rec, closed, here = self.record, self.door_closed.value, self.present.value
        step = Step()
        if rec.state == SlotState.UNLOCKING:
            had = rec.resume_state == SlotState.OCCUPIED
            self._set(step, present_at_open=had)
            if not closed:
                self.deadline = now + self.timing.door_open_fault
                self._set(step, state=SlotState.OPEN)
            elif here == had:
                step.events.append(
                    self._draft(
                        EventKind.UNLOCK_TIMEOUT,
                        helmet_id=rec.helmet_id,
                        pass_id=rec.pass_id,
                        resident_id=rec.resident_id,
                        detail="interrupted by a restart",
                    )
                )
                self._finish(step, rec.resume_state or SlotState.EMPTY)
            else:
                self._door_closed(step, here, now)
        elif rec.state == SlotState.OPEN or (rec.state == SlotState.FAULT and rec.fault != FaultReason.SENSOR_CONFLICT):
            if closed:
                self._door_closed(step, here, now)
                if rec.state == SlotState.FAULT:
                    step.events.append(
                        self._draft(EventKind.SLOT_CLEARED, reason=rec.fault, helmet_id=self.record.helmet_id)
                    )
            else:
                self.deadline = now + self.timing.door_open_fault
        elif rec.state in (SlotState.OCCUPIED, SlotState.EMPTY) and closed:
            if rec.state == SlotState.OCCUPIED and not here:
                step.events.append(
                    self._draft(EventKind.HELMET_REMOVED, helmet_id=rec.helmet_id, detail="missing at start-up")
                )
                self._finish(step, SlotState.EMPTY, helmet_id=None)
            elif rec.state == SlotState.EMPTY and here:
                step.events.append(self._draft(EventKind.HELMET_STOCKED, detail="found at start-up"))
                self._finish(step, SlotState.OCCUPIED, helmet_id=None)
        return step

    def set_disabled(self, disabled: bool) -> Step:
        step = Step()
        if disabled and self.state != SlotState.DISABLED:
            self._set(step, state=SlotState.DISABLED, resume_state=None)
            step.events.append(self._draft(EventKind.SLOT_DISABLED, helmet_id=self.record.helmet_id))
        elif not disabled and self.state == SlotState.DISABLED:
            if self.present.value:
                self._set(step, state=SlotState.OCCUPIED)
            else:
                # Taken out while disabled: the slot must stop naming it (its sticker would be refused).
                if self.record.helmet_id:
                    step.events.append(
                        self._draft(
                            EventKind.HELMET_REMOVED,
                            helmet_id=self.record.helmet_id,
                            detail="gone while the slot was disabled",
                        )
                    )
                self._set(step, state=SlotState.EMPTY, helmet_id=None)
            step.events.append(self._draft(EventKind.SLOT_ENABLED, helmet_id=self.record.helmet_id))
        return step

    def step(self, now: float, *, door_closed: bool, present: bool) -> Step:
        """Feed one raw reading of the door and presence sensors."""
        closed = self.door_closed.feed(door_closed, now, self.timing.debounce)
        was_here = self.present.value
        here = self.present.feed(present, now, self.timing.debounce)
        if here != was_here:
            self._presence_changed_at = now
        step = Step()
        state = self.state
        if state == SlotState.UNLOCKING:
            if not closed:
                self.deadline = now + self.timing.door_open_fault
                self._set(step, state=SlotState.OPEN, present_at_open=here)
                step.lock = False
            elif self.deadline is not None and now >= self.deadline:
                resume = self.record.resume_state or (SlotState.OCCUPIED if here else SlotState.EMPTY)
                step.events.append(
                    self._draft(
                        EventKind.UNLOCK_TIMEOUT,
                        helmet_id=self.record.helmet_id,
                        pass_id=self.record.pass_id,
                        resident_id=self.record.resident_id,
                    )
                )
                self._finish(step, resume)
                step.lock = False
        elif state == SlotState.OPEN:
            if closed:
                self._door_closed(step, here, now)
            elif self.deadline is not None and now >= self.deadline:
                self._set(step, state=SlotState.FAULT, fault=FaultReason.DOOR_AJAR)
                step.events.append(
                    self._draft(EventKind.SLOT_FAULT, reason=FaultReason.DOOR_AJAR, helmet_id=self.record.helmet_id)
                )
        elif state == SlotState.FAULT:
            self._fault_step(step, closed, here, now)
        elif state in (SlotState.OCCUPIED, SlotState.EMPTY):
            if not closed:
                # The door opened while locked: forced, or the lock failed.
                self.deadline = now + self.timing.door_open_fault
                self._set(
                    step,
                    state=SlotState.FAULT,
                    fault=FaultReason.LOCK_JAMMED,
                    purpose=Purpose.SERVICE,
                    present_at_open=state == SlotState.OCCUPIED,
                )
                step.events.append(
                    self._draft(EventKind.SLOT_FAULT, reason=FaultReason.LOCK_JAMMED, helmet_id=self.record.helmet_id)
                )
            elif here != (state == SlotState.OCCUPIED):
                self._set(step, state=SlotState.FAULT, fault=FaultReason.SENSOR_CONFLICT, resume_state=state)
                step.events.append(
                    self._draft(
                        EventKind.SLOT_FAULT,
                        reason=FaultReason.SENSOR_CONFLICT,
                        helmet_id=self.record.helmet_id,
                        detail=f"door closed and locked, but presence reads {'helmet' if here else 'none'}",
                    )
                )
        return step

    def _fault_step(self, step: Step, closed: bool, here: bool, now: float) -> None:
        fault = self.record.fault
        if fault == FaultReason.SENSOR_CONFLICT:
            expected = self.record.resume_state == SlotState.OCCUPIED
            if closed and here == expected:
                self._set(step, state=self.record.resume_state or SlotState.EMPTY, fault=None, resume_state=None)
                step.events.append(self._draft(EventKind.SLOT_CLEARED, helmet_id=self.record.helmet_id))
        elif closed:  # door_ajar or lock_jammed: the door is shut again
            self._door_closed(step, here, now)
            step.events.append(self._draft(EventKind.SLOT_CLEARED, reason=fault, helmet_id=self.record.helmet_id))

    def _door_closed(self, step: Step, here: bool, now: float) -> None:
        """The door shut after being open: decide what happened inside (and when: the presence change)."""
        rec = self.record
        had = bool(rec.present_at_open)
        moved = now - self._presence_changed_at if self._presence_changed_at is not None and had != here else 0.0
        if rec.purpose == Purpose.BORROW and had:
            if here:
                step.events.append(
                    self._draft(
                        EventKind.BORROW_CANCELLED,
                        helmet_id=rec.helmet_id,
                        pass_id=rec.pass_id,
                        resident_id=rec.resident_id,
                    )
                )
                self._finish(step, SlotState.OCCUPIED)
            else:
                step.events.append(
                    self._draft(
                        EventKind.HELMET_BORROWED,
                        helmet_id=rec.helmet_id,
                        pass_id=rec.pass_id,
                        resident_id=rec.resident_id,
                        earlier_s=moved,
                    )
                )
                self._finish(step, SlotState.EMPTY, helmet_id=None)
        elif rec.purpose in (Purpose.RETURN, Purpose.STOCK) and not had:
            if here:
                kind = EventKind.HELMET_RETURNED if rec.purpose == Purpose.RETURN else EventKind.HELMET_STOCKED
                step.events.append(
                    self._draft(
                        kind,
                        helmet_id=rec.incoming_helmet_id,
                        resident_id=rec.resident_id,
                        pass_id=rec.pass_id,
                        earlier_s=moved,
                    )
                )
                self._finish(step, SlotState.OCCUPIED, helmet_id=rec.incoming_helmet_id)
            else:
                step.events.append(self._draft(EventKind.RETURN_CANCELLED, helmet_id=rec.incoming_helmet_id))
                self._finish(step, SlotState.EMPTY)
        elif had and not here:
            step.events.append(
                self._draft(
                    EventKind.HELMET_REMOVED,
                    helmet_id=rec.helmet_id,
                    resident_id=rec.resident_id,
                    pass_id=rec.pass_id,
                    earlier_s=moved,
                )
            )
            self._finish(step, SlotState.EMPTY, helmet_id=None)
        elif here and not had:
            step.events.append(
                self._draft(
                    EventKind.HELMET_STOCKED,
                    helmet_id=rec.incoming_helmet_id,
                    detail="helmet found in slot" if not rec.incoming_helmet_id else None,
                )
            )
            self._finish(step, SlotState.OCCUPIED, helmet_id=rec.incoming_helmet_id)
        else:
            self._finish(step, SlotState.OCCUPIED if here else SlotState.EMPTY)

    def _finish(self, step: Step, state: SlotState, **changes: Any) -> None:
        self.deadline = None
        self._set(
            step,
            state=state,
            purpose=None,
            pass_id=None,
            resident_id=None,
            incoming_helmet_id=None,
            resume_state=None,
            fault=None,
            present_at_open=None,
            **changes,
        )
