"""Cloud errors as HTTP answers: the one place a kind of failure becomes a status code.

A request that fails validation is a 422 listing what is wrong (``type``, ``loc``, ``msg``, ``ctx``), as FastAPI
words it, but never the request back: an ``input`` is echoed only when it is a single value of at most
:data:`ECHO_MAX` characters, so a 5 MiB body no longer gets a 5 MiB answer (issue 16).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from helmet_cloud.errors import (
    CloudError,
    ConflictError,
    ForbiddenError,
    GoneError,
    InvalidError,
    NotFoundError,
    NotSignedInError,
    TooManyRequestsError,
    UnavailableError,
    UpstreamError,
)

STATUS: dict[type[CloudError], int] = {
    NotFoundError: status.HTTP_404_NOT_FOUND,
    ConflictError: status.HTTP_409_CONFLICT,
    InvalidError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    GoneError: status.HTTP_410_GONE,
    NotSignedInError: status.HTTP_401_UNAUTHORIZED,
    ForbiddenError: status.HTTP_403_FORBIDDEN,
    TooManyRequestsError: status.HTTP_429_TOO_MANY_REQUESTS,
    UpstreamError: status.HTTP_502_BAD_GATEWAY,
    UnavailableError: status.HTTP_503_SERVICE_UNAVAILABLE,
}


def status_of(exc: CloudError) -> int:
    """The status for ``exc``: its nearest kind's; an unmapped kind is the server's fault (500)."""
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return status.HTTP_500_INTERNAL_SERVER_ERROR


def headers_of(exc: CloudError) -> dict[str, str] | None:
    if isinstance(exc, TooManyRequestsError):
        return {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, NotSignedInError):
        return {"WWW-Authenticate": "Bearer"}
    return None


async def _answer(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CloudError)  # noqa: S101 (registered for CloudError only)
    return JSONResponse({"detail": str(exc)}, status_code=status_of(exc), headers=headers_of(exc))


# The longest input a 422 repeats, the most problems it lists, and the longest text of each.
ECHO_MAX = 100
PROBLEMS_MAX = 50
TEXT_MAX = 300


def _short(value: object) -> object:
    return value[:ECHO_MAX] + "..." if isinstance(value, str) and len(value) > ECHO_MAX else value


def _echoable(value: object) -> bool:
    if value is None or isinstance(value, bool | float):
        return True
    if isinstance(value, int):
        return value.bit_length() <= 64  # a huge number (thousands of digits) is not repeated either
    return isinstance(value, str) and len(value) <= ECHO_MAX


def brief(error: dict[str, Any]) -> dict[str, Any]:
    """One validation problem without what the client sent, unless that is one short value."""
    out: dict[str, Any] = {
        "type": error["type"],
        "loc": [_short(part) for part in error["loc"]],
        "msg": str(error["msg"])[:TEXT_MAX],
    }
    if "input" in error and _echoable(error["input"]):
        out["input"] = error["input"]
    if "ctx" in error:
        out["ctx"] = {k: v if isinstance(v, bool | int | float) else _short(str(v)) for k, v in _ctx(error).items()}
    return out


def _ctx(error: dict[str, Any]) -> dict[str, Any]:
    ctx = jsonable_encoder(error["ctx"])
    return ctx if isinstance(ctx, dict) else {}


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 (registered for RequestValidationError only)
    problems = [brief(e) for e in exc.errors()[:PROBLEMS_MAX]]
    return JSONResponse({"detail": problems}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def install(app: FastAPI) -> None:
    """Every :class:`CloudError` a route lets through answers ``{"detail": sentence}`` with its status; a request
    that fails validation answers 422 with its problems, not with itself."""
    app.add_exception_handler(CloudError, _answer)
    app.add_exception_handler(RequestValidationError, _invalid)
