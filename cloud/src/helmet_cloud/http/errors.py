"""Cloud errors as HTTP answers: the one place a kind of failure becomes a status code."""

from __future__ import annotations

from fastapi import FastAPI, Request, status
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


def install(app: FastAPI) -> None:
    """Every :class:`CloudError` a route lets through answers ``{"detail": sentence}`` with its status."""
    app.add_exception_handler(CloudError, _answer)
