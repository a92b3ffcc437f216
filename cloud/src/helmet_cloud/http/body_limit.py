"""No route reads more than ``max_body_bytes`` of a request body: a bigger one is answered 413 at the door.

A declared ``Content-Length`` over the limit is refused before a byte is read. A body without one (chunked) is
counted as it arrives: past the limit, reading stops and the answer is the same 413, whatever the route had
started to do with the body (FastAPI would otherwise answer 400 for a body it could not finish reading). The
limit is the setting ``max_body_bytes`` (128 KiB by default, docs/operations.md); the largest body the API and
the pages take on purpose is a batch of 1000 helmet ids, about 20 KB.
"""

from __future__ import annotations

import logging

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class BodyTooLargeError(Exception):
    """Raised into the application when the body it is reading grows past the limit."""


def too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"the request body is larger than {limit} bytes"}, status_code=413)


class LimitBody:
    """ASGI middleware: 413 for a request body larger than ``max_bytes``, with or without ``Content-Length``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            log.warning("%s %s: refused a body of %d bytes (Content-Length)", scope["method"], scope["path"], declared)
            await too_large(self.max_bytes)(scope, receive, send)
            return
        received = 0
        over = False
        started = False

        async def counted() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    raise BodyTooLargeError(f"request body over {self.max_bytes} bytes")
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if over:  # whatever the application answers to the interrupted read, the answer is 413
                return
            started = True
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not over:
                raise
        if over:
            log.warning("%s %s: refused a body of more than %d bytes", scope["method"], scope["path"], self.max_bytes)
            if not started:
                await too_large(self.max_bytes)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
