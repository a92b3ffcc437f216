"""CSV exports for staff, streamed a chunk at a time so a year of events never sits in memory."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import and_, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select
from sqlmodel.sql.expression import SelectOfScalar

from helmet_cloud.api.deps import CtxDep, StaffDep
from helmet_cloud.api.events import EventFiltersDep, after_event, ordered
from helmet_cloud.models import Loan, RawEvent
from helmet_cloud.timeutil import aware, utcnow

router = APIRouter(prefix="/api/export", tags=["export"])
CHUNK = 500
Row = TypeVar("Row", bound=SQLModel)

EVENT_COLUMNS = (
    "event_id",
    "locker_id",
    "seq",
    "ts",
    "kind",
    "known",
    "slot",
    "helmet_id",
    "pass_id",
    "resident_id",
    "received_at",
    "payload",
)
LOAN_COLUMNS = (
    "id",
    "helmet_id",
    "resident_id",
    "pass_id",
    "borrowed_at",
    "borrow_locker_id",
    "returned_at",
    "return_locker_id",
    "status",
)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return aware(value).isoformat()
    # A text cell starting like a formula would run in a spreadsheet (CSV injection): quote it.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_stream(
    engine: Engine,
    columns: Sequence[str],
    page: Callable[[Session, Row | None], Sequence[Row]],
) -> Iterator[str]:
    """Header, then one row per record, fetched ``CHUNK`` at a time by keyset (``page(session, last)``)."""
    buf = io.StringIO()
    writer = csv.writer(buf)

    def flush() -> str:
        text = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return text

    writer.writerow(columns)
    yield flush()
    # Its own session: the request's session is closed by the time the body streams.
    with Session(engine) as session:
        last: Row | None = None
        while True:
            rows = page(session, last)
            for row in rows:
                writer.writerow([_cell(getattr(row, c)) for c in columns])
            if rows:
                yield flush()
            if len(rows) < CHUNK:
                return
            last = rows[-1]


CSV: dict[int | str, dict[str, Any]] = {200: {"description": "a CSV file", "content": {"text/csv": {}}}}


def _attachment(stream: Iterator[str], what: str) -> StreamingResponse:
    filename = f"helmet-{what}-{utcnow().strftime('%Y%m%dT%H%M%SZ')}.csv"
    return StreamingResponse(
        stream,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/events.csv", responses=CSV)
def export_events(ctx: CtxDep, _: StaffDep, filters: EventFiltersDep) -> StreamingResponse:
    """Every stored event matching the filters of ``GET /api/events``, oldest first, with its raw payload."""

    def page(session: Session, last: RawEvent | None) -> Sequence[RawEvent]:
        q = filters.apply(select(RawEvent))
        if last is not None:
            q = q.where(after_event(aware(last.ts), last.event_id, "asc"))
        return session.exec(ordered(q, "asc").limit(CHUNK)).all()

    return _attachment(_csv_stream(ctx.engine, EVENT_COLUMNS, page), "events")


def _loans_query(
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


@router.get("/loans.csv", responses=CSV)
def export_loans(
    ctx: CtxDep,
    _: StaffDep,
    status_: Annotated[Literal["open", "returned"] | None, Query(alias="status")] = None,
    resident_id: Annotated[str | None, Query(max_length=16)] = None,
    helmet_id: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[datetime | None, Query(description="borrowed at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="borrowed before (ISO 8601)")] = None,
) -> StreamingResponse:
    """Loans matching the filters of ``GET /api/loans`` (plus helmet and time), oldest borrow first."""
    base = _loans_query(status_, resident_id, helmet_id, since, until)

    def page(session: Session, last: Loan | None) -> Sequence[Loan]:
        q = base
        if last is not None:
            at = aware(last.borrowed_at)
            q = q.where(or_(col(Loan.borrowed_at) > at, and_(col(Loan.borrowed_at) == at, col(Loan.id) > last.id)))
        return session.exec(q.order_by(col(Loan.borrowed_at), col(Loan.id)).limit(CHUNK)).all()

    return _attachment(_csv_stream(ctx.engine, LOAN_COLUMNS, page), "loans")
