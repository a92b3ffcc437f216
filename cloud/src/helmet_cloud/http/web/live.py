"""Live updates: a cheap database watermark, polled, and a Server-Sent Events stream of its changes.

One mechanism serves both ways of running ingest: in the API process or as
separate ``helmet-cloud ingest`` workers. Every ingest batch stamps the lockers
it heard from (``Locker.last_heard_at``); status messages flip
``Locker.online``; staff actions and the alert sweep change the alerts. The
watermark reads those few small aggregates in one query. However many pages
are open, a process reads it at most once per ``POLL_SECONDS``; each page's
stream sends ``change`` when the value moves and the page fetches itself again.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import Request
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import col

from helmet_cloud.models import Alert, Locker, LockerCommand, Station

POLL_SECONDS = 0.5
# A stream ends after this long and the browser reconnects (EventSource does so by itself), so a server
# shutting down never waits long for open dashboards.
STREAM_SECONDS = 15.0


def read_watermark(engine: Engine) -> str:
    """A short digest of everything the live pages show that can change without a page's own request."""
    q = select(
        select(func.max(Locker.last_heard_at)).scalar_subquery(),
        select(func.count()).select_from(Locker).where(col(Locker.online)).scalar_subquery(),
        select(func.count()).select_from(Locker).scalar_subquery(),
        select(func.count()).select_from(Station).scalar_subquery(),
        select(func.count()).select_from(Alert).scalar_subquery(),
        select(func.count()).select_from(Alert).where(col(Alert.acknowledged_at).is_not(None)).scalar_subquery(),
        select(func.count()).select_from(Alert).where(col(Alert.resolved_at).is_not(None)).scalar_subquery(),
        select(func.count()).select_from(LockerCommand).scalar_subquery(),
    )
    with engine.connect() as conn:
        row = conn.execute(q).one()
    return hashlib.sha256(repr(tuple(row)).encode()).hexdigest()[:16]


class Watermark:
    """The current watermark, read from the database at most once per ``POLL_SECONDS`` for all streams."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._value = ""
        self._read_at = 0.0

    def current(self) -> str:
        with self._lock:
            if time.monotonic() - self._read_at >= POLL_SECONDS * 0.9:
                self._value = read_watermark(self.engine)
                self._read_at = time.monotonic()
            return self._value


def watermark_of(request: Request) -> Watermark:
    """The process's shared :class:`Watermark`, made on first use."""
    watermark: Watermark | None = getattr(request.app.state, "watermark", None)
    if watermark is None:
        watermark = request.app.state.watermark = Watermark(request.app.state.ctx.engine)
    return watermark


async def changes(
    watermark: Watermark, last_seen: str | None, disconnected: Callable[[], Awaitable[bool]]
) -> AsyncIterator[tuple[bool, str]]:
    """Yield ``(changed, watermark)``: first ``(False, now)``, then ``(True, new)`` each time it moves.

    ``last_seen`` is the watermark the page was rendered with (or the
    browser's ``Last-Event-ID`` after a reconnect): a change since then is sent
    at once. The stream ends after ``STREAM_SECONDS`` or when the browser goes.
    """
    value = await asyncio.to_thread(watermark.current)
    yield False, value
    sent = last_seen or value
    deadline = time.monotonic() + STREAM_SECONDS
    while time.monotonic() < deadline:
        if value != sent:
            sent = value
            yield True, value
        if await disconnected():
            return
        await asyncio.sleep(POLL_SECONDS)
        value = await asyncio.to_thread(watermark.current)
