"""CSV exports, streamed a chunk at a time so a year of events never sits in memory (the API's and the pages')."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from fastapi.responses import StreamingResponse
from sqlalchemy import and_, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select
from starlette.types import Receive, Scope, Send

from helmet_cloud.adapters.database import first_line
from helmet_cloud.models import Loan, RawEvent
from helmet_cloud.services.event_queries import EventFilters, after_event, loans_query, ordered
from helmet_cloud.timeutil import aware, utcnow

log = logging.getLogger(__name__)
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


class _CutOff(Exception):
    """The export failed after its first bytes went out; the reason is logged where it happened."""


class CsvResponse(StreamingResponse):
    """A streamed CSV that is either whole or visibly broken.

    The status line has gone out with the first chunk, so a failure further on cannot become an error status.
    The body is then left unfinished: the connection closes without the final chunk, and every HTTP client
    reports a cut-off transfer ("Response ended prematurely", curl's exit 18) instead of saving a short file
    that looks complete.
    """

    def __init__(self, content: Iterator[str], *, on_close: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # The one place the rows' session is closed: after the last row, a cut-off, or a client gone early.
            self._on_close()

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            async for chunk in self.body_iterator:
                data = chunk if isinstance(chunk, bytes | memoryview) else chunk.encode(self.charset)
                await send({"type": "http.response.body", "body": data, "more_body": True})
        except _CutOff:
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _csv_rows(
    session: Session,
    columns: Sequence[str],
    page: Callable[[Session, Row | None], Sequence[Row]],
    rows: Sequence[Row],
    what: str,
) -> Iterator[str]:
    """Header, then ``rows`` (the first page, already read), then the next pages ``CHUNK`` at a time by keyset."""
    buf = io.StringIO()
    writer = csv.writer(buf)

    def flush() -> str:
        text = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return text

    written = 0
    try:
        writer.writerow(columns)
        while True:
            for row in rows:
                writer.writerow([_cell(getattr(row, c)) for c in columns])
            written += len(rows)
            yield flush()
            if len(rows) < CHUNK:
                return
            rows = page(session, rows[-1])
    except Exception as exc:  # any failure: the transfer must end broken, never short and whole
        log.error("export of %s cut off after %d rows: %s", what, written, first_line(exc))
        raise _CutOff from exc


CSV: dict[int | str, dict[str, Any]] = {200: {"description": "a CSV file", "content": {"text/csv": {}}}}


def csv_response(
    engine: Engine, columns: Sequence[str], page: Callable[[Session, Row | None], Sequence[Row]], what: str
) -> CsvResponse:
    """Read the first page before the response starts, so a filter the database refuses is an error status."""
    # Its own session: the request's session is closed by the time the body streams.
    session = Session(engine)
    try:
        first = page(session, None)
    except BaseException:
        session.close()
        raise
    filename = f"helmet-{what}-{utcnow().strftime('%Y%m%dT%H%M%SZ')}.csv"
    return CsvResponse(
        _csv_rows(session, columns, page, first, what),
        on_close=session.close,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def events_csv(engine: Engine, filters: EventFilters) -> CsvResponse:
    """Every stored event matching ``filters``, oldest first, with its raw payload."""

    def page(session: Session, last: RawEvent | None) -> Sequence[RawEvent]:
        q = filters.apply(select(RawEvent))
        if last is not None:
            q = q.where(after_event(aware(last.ts), last.event_id, "asc"))
        return session.exec(ordered(q, "asc").limit(CHUNK)).all()

    return csv_response(engine, EVENT_COLUMNS, page, "events")


def loans_csv(
    engine: Engine,
    *,
    status: str | None = None,
    resident_id: str | None = None,
    helmet_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> CsvResponse:
    """Loans matching the filters, oldest borrow first."""
    base = loans_query(status, resident_id, helmet_id, since, until)

    def page(session: Session, last: Loan | None) -> Sequence[Loan]:
        q = base
        if last is not None:
            at = aware(last.borrowed_at)
            q = q.where(or_(col(Loan.borrowed_at) > at, and_(col(Loan.borrowed_at) == at, col(Loan.id) > last.id)))
        return session.exec(q.order_by(col(Loan.borrowed_at), col(Loan.id)).limit(CHUNK)).all()

    return csv_response(engine, LOAN_COLUMNS, page, "loans")
