"""Text no database can hold is refused at the door, before any route, query or streamed body starts.

PostgreSQL refuses a NUL (0x00) in text; SQLite would store it and hand it back to pages and exports. A NUL in
the path or in any query parameter is therefore a 422 on every database, with one logged line, and the request
never reaches a handler. (In a JSON or form body the database's own refusal is turned into the same 422 by the
``DataError`` handler in ``app.py``.)
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)


def nul_in(scope: Scope) -> str | None:
    """Where the request carries a NUL character (``"the path"``, ``"the query parameter 'kind'"``), or None."""
    if "\x00" in scope.get("path", ""):
        return "the path"
    query = scope.get("query_string", b"").decode("latin-1")
    if "%00" not in query and "\x00" not in query:
        return None
    for name, value in parse_qsl(query, keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return f"the query parameter {name.replace(chr(0), '')!r}"
    return None


class RefuseNul:
    """ASGI middleware: 422 for a NUL in the path or the query string."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        where = nul_in(scope) if scope["type"] == "http" else None
        if where is None:
            await self.app(scope, receive, send)
            return
        log.warning("%s %r: refused, %s contains a NUL character", scope["method"], scope["path"], where)
        detail = f"{where} contains a NUL character (0x00), which cannot be stored"
        await JSONResponse({"detail": detail}, status_code=422)(scope, receive, send)
