"""Raw events and dead letters for staff, paged with a keyset cursor."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlmodel import col, select

from helmet_cloud.errors import InvalidError
from helmet_cloud.http.deps import SessionDep, StaffDep
from helmet_cloud.models import DeadLetter, RawEvent
from helmet_cloud.services.event_queries import EventFilters, Order, after_event, ordered
from helmet_cloud.timeutil import aware
from helmet_protocol.topics import LOCKER_ID_RE

router = APIRouter(prefix="/api", tags=["events"])
MAX_LIMIT = 1000


def event_filters(
    locker_id: Annotated[str | None, Query(pattern=LOCKER_ID_RE.pattern)] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    helmet_id: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[datetime | None, Query(description="events at or after this time (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="events before this time (ISO 8601)")] = None,
) -> EventFilters:
    # Times without an offset are taken as UTC; everything is compared in UTC.
    return EventFilters(locker_id, kind, helmet_id, aware(since) if since else None, aware(until) if until else None)


EventFiltersDep = Annotated[EventFilters, Depends(event_filters)]


def _encode(parts: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def _decode(cursor: str, size: int) -> list[str]:
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        parts = None
    if not isinstance(parts, list) or len(parts) != size or not all(isinstance(p, str) for p in parts):
        raise InvalidError("cursor is not valid: start again without it")
    return parts


class EventPublic(BaseModel):
    event_id: str
    locker_id: str
    seq: int
    ts: datetime
    kind: str
    known: bool
    slot: int | None
    helmet_id: str | None
    pass_id: str | None
    resident_id: str | None
    received_at: datetime
    payload: dict[str, Any]

    @classmethod
    def of(cls, row: RawEvent) -> EventPublic:
        return cls(
            **row.model_dump(exclude={"ts", "received_at", "payload"}),
            ts=aware(row.ts),
            received_at=aware(row.received_at),
            payload=json.loads(row.payload),
        )


class EventPage(BaseModel):
    events: list[EventPublic]
    next_cursor: str | None


@router.get("/events")
def list_events(
    session: SessionDep,
    _: StaffDep,
    filters: EventFiltersDep,
    order: Order = "asc",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
) -> EventPage:
    """Stored events by (ts, event_id); pass ``next_cursor`` back as ``cursor`` for the next page."""
    q = filters.apply(select(RawEvent))
    if cursor:
        cur_order, ts_text, event_id = _decode(cursor, 3)
        if cur_order != order:
            raise InvalidError("cursor was made for the other order")
        try:
            ts = datetime.fromisoformat(ts_text)
        except ValueError:
            raise InvalidError("cursor is not valid") from None
        q = q.where(after_event(aware(ts), event_id, order))
    rows = session.exec(ordered(q, order).limit(limit + 1)).all()
    page = rows[:limit]
    more = len(rows) > limit
    last = page[-1] if page else None
    next_cursor = _encode([order, aware(last.ts).isoformat(), last.event_id]) if more and last else None
    return EventPage(events=[EventPublic.of(r) for r in page], next_cursor=next_cursor)


class DeadLetterPublic(BaseModel):
    id: int
    topic: str
    reason: str
    received_at: datetime
    payload: str


class DeadLetterPage(BaseModel):
    dead_letters: list[DeadLetterPublic]
    next_cursor: str | None


@router.get("/dead-letters")
def list_dead_letters(
    session: SessionDep,
    _: StaffDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> DeadLetterPage:
    """Refused messages, newest first, with the reason and the payload as received."""
    q = select(DeadLetter)
    if cursor:
        (before,) = _decode(cursor, 1)
        if not before.isdigit():
            raise InvalidError("cursor is not valid")
        q = q.where(col(DeadLetter.id) < int(before))
    rows = session.exec(q.order_by(col(DeadLetter.id).desc()).limit(limit + 1)).all()
    page = rows[:limit]
    next_cursor = _encode([str(page[-1].id)]) if len(rows) > limit else None
    return DeadLetterPage(
        dead_letters=[
            DeadLetterPublic(
                id=d.id or 0, topic=d.topic, reason=d.reason, received_at=aware(d.received_at), payload=d.payload
            )
            for d in page
        ],
        next_cursor=next_cursor,
    )
