"""Helmet, loan and slot state, derived from raw events so arrival order does not matter.

A helmet's location and loans are a fold over *all* its events sorted by
``(ts, locker_id, seq)``; a slot's state is a fold over its locker's events
sorted by ``seq``. Recomputing the touched helmets and slots after each batch
gives the same end state whatever order the events arrived in, and a duplicate
changes nothing because it is never stored twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session, col, select

from helmet_cloud.models import Helmet, Loan, RawEvent, Slot
from helmet_cloud.timeutil import aware
from helmet_protocol.events import EventKind, SlotState

HELMET_KINDS = {
    EventKind.HELMET_BORROWED,
    EventKind.HELMET_RETURNED,
    EventKind.HELMET_STOCKED,
    EventKind.HELMET_REMOVED,
}
SLOT_KINDS = HELMET_KINDS | {EventKind.SLOT_DISABLED, EventKind.SLOT_ENABLED}


@dataclass(slots=True)
class _LoanDraft:
    loan: Loan
    open: bool = True


def recompute_helmets(session: Session, helmet_ids: Iterable[str]) -> None:
    for helmet_id in sorted(set(helmet_ids)):
        _recompute_helmet(session, helmet_id)


def _recompute_helmet(session: Session, helmet_id: str) -> None:
    events = session.exec(
        select(RawEvent)
        .where(RawEvent.helmet_id == helmet_id, col(RawEvent.kind).in_([k.value for k in HELMET_KINDS]))
        .order_by(col(RawEvent.ts), col(RawEvent.locker_id), col(RawEvent.seq))
    ).all()
    helmet = session.get(Helmet, helmet_id) or Helmet(id=helmet_id)
    helmet.status, helmet.locker_id, helmet.slot, helmet.holder_id, helmet.since = "unknown", None, None, None, None
    loans: list[Loan] = []
    current: Loan | None = None
    for e in events:
        ts = aware(e.ts)
        if e.kind == EventKind.HELMET_BORROWED:
            if current is not None:  # a return we never heard of: close at the next borrow
                current.status, current.returned_at = "returned", ts
            current = Loan(
                id=e.event_id,
                helmet_id=helmet_id,
                resident_id=e.resident_id,
                pass_id=e.pass_id,
                borrowed_at=ts,
                borrow_locker_id=e.locker_id,
            )
            loans.append(current)
            helmet.status, helmet.locker_id, helmet.slot, helmet.holder_id = "on_loan", None, None, e.resident_id
        elif e.kind in (EventKind.HELMET_RETURNED, EventKind.HELMET_STOCKED):
            if current is not None:
                current.status, current.returned_at, current.return_locker_id = "returned", ts, e.locker_id
                current = None
            helmet.status, helmet.locker_id, helmet.slot, helmet.holder_id = "in_slot", e.locker_id, e.slot, None
        else:  # removed by a technician
            helmet.status, helmet.locker_id, helmet.slot, helmet.holder_id = "removed", None, None, None
        helmet.since = ts
    session.add(helmet)
    existing = {loan.id: loan for loan in session.exec(select(Loan).where(Loan.helmet_id == helmet_id)).all()}
    for loan in loans:
        row = existing.pop(loan.id, None) or Loan(
            id=loan.id, helmet_id=helmet_id, borrowed_at=loan.borrowed_at, borrow_locker_id=loan.borrow_locker_id
        )
        for field in (
            "resident_id",
            "pass_id",
            "borrowed_at",
            "borrow_locker_id",
            "returned_at",
            "return_locker_id",
            "status",
        ):
            setattr(row, field, getattr(loan, field))
        session.add(row)
    for stale in existing.values():
        session.delete(stale)


def recompute_slots(session: Session, slots: Iterable[tuple[str, int]]) -> None:
    for locker_id, slot in sorted(set(slots)):
        events = session.exec(
            select(RawEvent)
            .where(
                RawEvent.locker_id == locker_id,
                RawEvent.slot == slot,
                col(RawEvent.kind).in_([k.value for k in SLOT_KINDS]),
            )
            .order_by(col(RawEvent.seq))
        ).all()
        row = session.get(Slot, (locker_id, slot)) or Slot(locker_id=locker_id, slot=slot)
        state, helmet_id, disabled = SlotState.EMPTY, None, False
        for e in events:
            if e.kind in (EventKind.HELMET_BORROWED, EventKind.HELMET_REMOVED):
                state, helmet_id = SlotState.EMPTY, None
            elif e.kind in (EventKind.HELMET_RETURNED, EventKind.HELMET_STOCKED):
                state, helmet_id = SlotState.OCCUPIED, e.helmet_id
            elif e.kind == EventKind.SLOT_DISABLED:
                disabled = True
            elif e.kind == EventKind.SLOT_ENABLED:
                disabled = False
        row.state = SlotState.DISABLED if disabled else state
        row.helmet_id = helmet_id
        session.add(row)
