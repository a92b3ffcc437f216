"""What the API and the pages both depend on: the context, a session, the caller and their role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from helmet_cloud.context import AppContext
from helmet_cloud.domain.roles import Caller, Role, admits
from helmet_cloud.errors import ForbiddenError, NotSignedInError
from helmet_cloud.services.auth import caller_for_token

# The largest number an INTEGER column or bound parameter holds in every supported database (PostgreSQL's
# int4): ids and offsets from outside are capped at it, so a huge one is a 422, not a database error.
DB_INT_MAX = 2**31 - 1


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


CtxDep = Annotated[AppContext, Depends(get_ctx)]


def get_session(ctx: CtxDep) -> Iterator[Session]:
    with Session(ctx.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
_bearer = HTTPBearer(auto_error=False)


def get_caller(session: SessionDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Caller:
    if creds is None:
        raise NotSignedInError("sign in first")
    return caller_for_token(session, creds.credentials)


CallerDep = Annotated[Caller, Depends(get_caller)]


def require(*roles: Role) -> Callable[[Caller], Caller]:
    """Allow residents if listed; staff roles by rank (``technician`` admits staff and admin)."""

    def check(caller: CallerDep) -> Caller:
        if admits(caller.role, *roles):
            return caller
        raise ForbiddenError("needs role {roles}", roles=" or ".join(roles))

    return check


ResidentDep = Annotated[Caller, Depends(require(Role.RESIDENT))]
TechnicianDep = Annotated[Caller, Depends(require(Role.TECHNICIAN))]
StaffDep = Annotated[Caller, Depends(require(Role.STAFF))]
AdminDep = Annotated[Caller, Depends(require(Role.ADMIN))]


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"
