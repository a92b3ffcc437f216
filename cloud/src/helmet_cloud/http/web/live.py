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
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from helmet_cloud.services.watermark import POLL_SECONDS, Watermark

# A stream ends after this long and the browser reconnects (EventSource does so by itself), so a server
# shutting down never waits long for open dashboards.
STREAM_SECONDS = 15.0


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
