"""Stored events and loans as staff filter and page through them (the API's lists and the CSV exports)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import and_, or_
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from helmet_cloud.models import Loan, RawEvent
from helmet_cloud.timeutil import aware

Order = Literal["asc", "desc"]


@dataclass(frozen=True, slots=True)
class EventFilters:
    locker_id: str | None = None
    kind: str | None = None
    helmet_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, q: SelectOfScalar[RawEvent]) -> SelectOfScalar[RawEvent]:
        if self.locker_id:
            q = q.where(RawEvent.locker_id == self.locker_id)
        if self.kind:
            q = q.where(RawEvent.kind == self.kind)
        if self.helmet_id:
            q = q.where(RawEvent.helmet_id == self.helmet_id)
        if self.since:
            q = q.where(col(RawEvent.ts) >= self.since)
        if self.until:
            q = q.where(col(RawEvent.ts) < self.until)
        return q


def after_event(ts: datetime, event_id: str, order: Order) -> ColumnElement[bool]:
    """Rows strictly past (ts, event_id) in the given order: the keyset condition."""
    if order == "asc":
        return or_(col(RawEvent.ts) > ts, and_(col(RawEvent.ts) == ts, col(RawEvent.event_id) > event_id))
    return or_(col(RawEvent.ts) < ts, and_(col(RawEvent.ts) == ts, col(RawEvent.event_id) < event_id))


def ordered(q: SelectOfScalar[RawEvent], order: Order) -> SelectOfScalar[RawEvent]:
    if order == "asc":
        return q.order_by(col(RawEvent.ts), col(RawEvent.event_id))
    return q.order_by(col(RawEvent.ts).desc(), col(RawEvent.event_id).desc())


def loans_query(
    status_: str | None, resident_id: str | None, helmet_id: str | None, since: datetime | None, until: datetime | None
) -> SelectOfScalar[Loan]:
    q = select(Loan)
    if status_:
        q = q.where(Loan.status == status_)
    if resident_id:
        q = q.where(Loan.resident_id == resident_id)
    if helmet_id:
        q = q.where(Loan.helmet_id == helmet_id)
    if since:
        q = q.where(col(Loan.borrowed_at) >= aware(since))
    if until:
        q = q.where(col(Loan.borrowed_at) < aware(until))
    return q
