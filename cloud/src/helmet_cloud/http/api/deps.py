"""Shared dependencies: the context, a session, the caller and their role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from helmet_cloud.context import AppContext
from helmet_cloud.domain.security import token_hash
from helmet_cloud.models import ApiToken
from helmet_cloud.timeutil import aware, utcnow

ROLES = ("resident", "technician", "staff", "admin")
# The largest number an INTEGER column or bound parameter holds in every supported database (PostgreSQL's
# int4): ids and offsets from outside are capped at it, so a huge one is a 422, not a database error.
DB_INT_MAX = 2**31 - 1
# Higher roles may do what lower staff roles may; residents are apart.
_RANK = {"technician": 1, "staff": 2, "admin": 3}


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


CtxDep = Annotated[AppContext, Depends(get_ctx)]


def get_session(ctx: CtxDep) -> Iterator[Session]:
    with Session(ctx.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
_bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True, slots=True)
class Caller:
    role: str
    subject: str


def get_caller(session: SessionDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Caller:
    if creds is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in first", headers={"WWW-Authenticate": "Bearer"})
    row = session.get(ApiToken, token_hash(creds.credentials))
    if row is None or aware(row.expires_at) < utcnow():
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "token is not valid", headers={"WWW-Authenticate": "Bearer"})
    return Caller(role=row.role, subject=row.subject)


CallerDep = Annotated[Caller, Depends(get_caller)]


def require(*roles: str) -> Callable[[Caller], Caller]:
    """Allow residents if listed; staff roles by rank (``technician`` admits staff and admin)."""
    floor = min((_RANK[r] for r in roles if r in _RANK), default=None)

    def check(caller: CallerDep) -> Caller:
        rank = _RANK.get(caller.role)
        if caller.role in roles or (floor is not None and rank is not None and rank >= floor):
            return caller
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"needs role {' or '.join(roles)}")

    return check


ResidentDep = Annotated[Caller, Depends(require("resident"))]
TechnicianDep = Annotated[Caller, Depends(require("technician"))]
StaffDep = Annotated[Caller, Depends(require("staff"))]
AdminDep = Annotated[Caller, Depends(require("admin"))]
