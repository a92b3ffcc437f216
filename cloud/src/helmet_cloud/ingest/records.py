"""What ingest reads and what it stores, each written once.

:class:`Inbound` is one message as the broker delivered it. :class:`StoredEvent`
is one row of ``rawevent``: its fields are the table's columns, in the order the
insert sends them, so the model (:class:`helmet_cloud.models.RawEvent`, checked
against it by a test), the SQLite and PostgreSQL inserts, the folds'
:class:`~helmet_cloud.ingest.derived.Fact` and the after-commit hooks all read
one definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from helmet_protocol.messages import Event


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message from the broker."""

    topic: str
    payload: bytes
    # When it arrived live from the broker; None for a retained copy, whose arrival says nothing of its age.
    live_at: datetime | None = None


class StoredEvent(NamedTuple):
    """One event as stored: what the locker said, with the cloud's clock correction and arrival time."""

    event_id: str
    locker_id: str
    seq: int
    ts: datetime  # the locker's ts + clock_offset_ms: when it happened by the cloud's clock
    clock_offset_ms: int
    kind: str
    known: bool  # a kind this cloud knows (EventKind); unknown kinds are kept, and counted apart
    slot: int | None
    helmet_id: str | None
    pass_id: str | None
    resident_id: str | None
    reason: str | None
    payload: str  # the JSON exactly as the locker sent it
    received_at: datetime

    @classmethod
    def of(cls, ev: Event, payload: bytes, *, received_at: datetime, fix: timedelta) -> StoredEvent:
        return cls(
            event_id=ev.event_id,
            locker_id=ev.locker_id,
            seq=ev.seq,
            ts=ev.ts + fix,
            clock_offset_ms=round(fix.total_seconds() * 1000),
            kind=ev.kind,
            known=ev.known_kind is not None,
            slot=ev.slot,
            helmet_id=ev.helmet_id,
            pass_id=ev.pass_id,
            resident_id=ev.resident_id,
            # PostgreSQL text cannot hold NUL; the payload keeps the reason exactly as sent.
            reason=None if ev.reason is None else ev.reason.replace("\x00", "\ufffd"),
            payload=payload.decode(),
            received_at=received_at,
        )


COLUMNS = StoredEvent._fields
