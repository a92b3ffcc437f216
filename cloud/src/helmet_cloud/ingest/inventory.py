"""Helmet, loan and slot state, derived from raw events so arrival order does not matter.

A helmet's location and loans are a fold over *all* its events sorted by
``(ts, locker_id, seq)``; a slot's state is a fold over its locker's events
for that slot sorted by ``seq`` (:mod:`helmet_cloud.ingest.slot_state`). Each helmet
and slot row stores the sort key of the last event folded into it
(``applied_*``), so a batch whose new events all sort after it continues the
fold from the stored state and its open loan, reading no history. A helmet or
slot that gets an event sorting before what it has applied (a late event: a
return heard before its borrow, an old event from a locker that was offline),
or has no stored key yet, is folded again from all its events. Both paths end
in the state a full fold gives, so the end state does not depend on the order
events arrived in, and a duplicate changes nothing because it is never stored
twice. The rows are read ``FOR UPDATE``: ingest workers that share a helmet
take turns, each continuing from the other's committed fold.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from helmet_cloud.domain.states import HelmetStatus, LoanStatus
from helmet_cloud.ingest.derived import Fact, HelmetKey, chunks, read_facts, save
from helmet_cloud.models import Helmet, Loan, RawEvent
from helmet_cloud.timeutil import aware
from helmet_protocol.events import EventKind

HELMET_KINDS = frozenset(
    {EventKind.HELMET_BORROWED, EventKind.HELMET_RETURNED, EventKind.HELMET_STOCKED, EventKind.HELMET_REMOVED}
)
SLOT_KINDS = HELMET_KINDS | {
    EventKind.SLOT_DISABLED,
    EventKind.SLOT_ENABLED,
    EventKind.SLOT_FAULT,
    EventKind.SLOT_CLEARED,
}
BACK = (EventKind.HELMET_RETURNED, EventKind.HELMET_STOCKED)

HELMET_FIELDS = (
    *("id", "status", "locker_id", "slot", "holder_id", "since"),
    *("applied_ts", "applied_locker_id", "applied_seq"),
)
# Every field of a loan that the events decide; the lifecycle marks (overdue_at ...) are never touched here.
LOAN_FIELDS = (
    *("id", "helmet_id", "resident_id", "pass_id", "borrowed_at", "borrow_locker_id"),
    *("returned_at", "return_locker_id", "status"),
)


@dataclass(slots=True)
class HelmetRow:
    id: str
    status: str = HelmetStatus.UNKNOWN
    locker_id: str | None = None
    slot: int | None = None
    holder_id: str | None = None
    since: datetime | None = None
    applied_ts: datetime | None = None
    applied_locker_id: str | None = None
    applied_seq: int | None = None
    stored: tuple[Any, ...] | None = field(default=None, kw_only=True)  # as read; None: a new row

    def values(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.status,
            self.locker_id,
            self.slot,
            self.holder_id,
            self.since,
            self.applied_ts,
            self.applied_locker_id,
            self.applied_seq,
        )

    def applied(self) -> HelmetKey | None:
        if self.applied_ts is None or self.applied_locker_id is None or self.applied_seq is None:
            return None
        return (self.applied_ts, self.applied_locker_id, self.applied_seq)


@dataclass(slots=True)
class LoanRow:
    id: str
    helmet_id: str
    resident_id: str | None
    pass_id: str | None
    borrowed_at: datetime
    borrow_locker_id: str
    returned_at: datetime | None = None
    return_locker_id: str | None = None
    status: str = "open"
    stored: tuple[Any, ...] | None = field(default=None, kw_only=True)  # as read; None: a new row

    def values(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.helmet_id,
            self.resident_id,
            self.pass_id,
            self.borrowed_at,
            self.borrow_locker_id,
            self.returned_at,
            self.return_locker_id,
            self.status,
        )


def update_helmets(session: Session, facts: Iterable[Fact]) -> None:
    """Fold newly stored events into their helmets and loans, in a few queries for the whole batch."""
    new: dict[str, list[Fact]] = defaultdict(list)
    for f in facts:
        if f.helmet_id and f.kind in HELMET_KINDS:
            new[f.helmet_id].append(f)
    ids = sorted(new)
    if not ids:
        return
    helmets, loans = _read(session, ids, open_only=True)
    late: list[str] = []
    touched: list[LoanRow] = []
    for helmet_id in ids:
        ordered = sorted(new[helmet_id], key=Fact.helmet_key)
        helmet, open_loans = helmets.get(helmet_id), loans[helmet_id]
        applied = helmet.applied() if helmet is not None else None
        if helmet is None or applied is None or ordered[0].helmet_key() <= applied or len(open_loans) > 1:
            late.append(helmet_id)
            continue
        current = next(iter(open_loans.values()), None)
        touched.extend(_fold(helmet, current, ordered, {}))
    _save(session, [helmets[i] for i in sorted(set(ids) - set(late))], touched)
    if late:
        recompute_helmets(session, late)


def recompute_helmets(session: Session, helmet_ids: Iterable[str]) -> None:
    """Fold each helmet's whole event history again, from nothing; loans no event opens are deleted."""
    ids = sorted(set(helmet_ids))
    helmets, loans = _read(session, ids, open_only=False)
    events: dict[str, list[Fact]] = defaultdict(list)
    kinds = col(RawEvent.kind).in_([k.value for k in HELMET_KINDS])
    for part in chunks(ids):
        for f in read_facts(session, [col(RawEvent.helmet_id).in_(part), kinds]):
            events[f.helmet_id or ""].append(f)
    rows: list[HelmetRow] = []
    touched: list[LoanRow] = []
    stale: list[str] = []
    for helmet_id in ids:
        stored = helmets.get(helmet_id)
        helmet = HelmetRow(id=helmet_id, stored=stored.stored if stored is not None else None)
        known = loans[helmet_id]
        touched.extend(_fold(helmet, None, sorted(events[helmet_id], key=Fact.helmet_key), known))
        rows.append(helmet)
        stale.extend(known)
    _save(session, rows, touched)
    for part in chunks(stale):
        session.connection().execute(sa.delete(Loan).where(col(Loan.id).in_(part)))


def _read(
    session: Session, ids: Sequence[str], *, open_only: bool
) -> tuple[dict[str, HelmetRow], defaultdict[str, dict[str, LoanRow]]]:
    """The helmets (locked, in id order) and their loans (open ones only, or all), by helmet and loan id."""
    helmets: dict[str, HelmetRow] = {}
    loans: defaultdict[str, dict[str, LoanRow]] = defaultdict(dict)
    for part in chunks(ids):
        q = select(*(col(getattr(Helmet, f)) for f in HELMET_FIELDS)).where(col(Helmet.id).in_(part))
        for r in session.exec(q.order_by(col(Helmet.id)).with_for_update()).all():
            values = _utc(r)
            helmets[r[0]] = HelmetRow(*values, stored=values)
        q = select(*(col(getattr(Loan, f)) for f in LOAN_FIELDS)).where(col(Loan.helmet_id).in_(part))
        if open_only:
            q = q.where(Loan.status == LoanStatus.OPEN)
        for r in session.exec(q).all():
            values = _utc(r)
            loans[r[1]][r[0]] = LoanRow(*values, stored=values)
    return helmets, loans


def _utc(row: Sequence[Any]) -> tuple[Any, ...]:
    """The row with its times aware (SQLite returns them naive), so they compare equal to the folded ones."""
    return tuple(aware(v) if isinstance(v, datetime) else v for v in row)


def _save(session: Session, helmets: Sequence[HelmetRow], loans: Sequence[LoanRow]) -> None:
    save(session, Helmet, HELMET_FIELDS, ("id",), helmets)
    save(session, Loan, LOAN_FIELDS, ("id",), loans)


def _fold(
    helmet: HelmetRow, current: LoanRow | None, events: Sequence[Fact], known: dict[str, LoanRow]
) -> list[LoanRow]:
    """Apply ``events`` (sorted) to ``helmet`` and its open loan ``current``; return the loans it touched.

    ``known`` are stored loans (a full fold): one is reused when its borrow comes round, and popped.
    """
    touched = [] if current is None else [current]
    for e in events:
        ts = aware(e.ts)
        if e.kind == EventKind.HELMET_BORROWED:
            if current is not None:  # a return we never heard of: close at the next borrow
                current.status, current.returned_at = LoanStatus.RETURNED, ts
            was = known.pop(e.event_id, None)
            current = LoanRow(
                e.event_id, helmet.id, e.resident_id, e.pass_id, ts, e.locker_id, stored=was.stored if was else None
            )
            touched.append(current)
            helmet.status, helmet.locker_id, helmet.slot, helmet.holder_id = (
                HelmetStatus.ON_LOAN,
                None,
                None,
                e.resident_id,
            )
        elif e.kind in BACK:
            if current is not None:
                current.status, current.returned_at, current.return_locker_id = LoanStatus.RETURNED, ts, e.locker_id
                current = None
            helmet.status, helmet.locker_id, helmet.slot, helmet.holder_id = (
                HelmetStatus.IN_SLOT,
                e.locker_id,
                e.slot,
                None,
            )
        else:  # removed by a technician
            helmet.status, helmet.locker_id, helmet.slot, helmet.holder_id = HelmetStatus.REMOVED, None, None, None
        helmet.since = helmet.applied_ts = ts
        helmet.applied_locker_id, helmet.applied_seq = e.locker_id, e.seq
    return touched
