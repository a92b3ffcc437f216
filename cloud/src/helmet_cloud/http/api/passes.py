"""Borrow passes for residents, maintenance passes for technicians."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import update
from sqlmodel import Session, col

from helmet_cloud.context import AppContext
from helmet_cloud.http.api.deps import CallerDep, CtxDep, ResidentDep, SessionDep, TechnicianDep
from helmet_cloud.models import IssuedPass, Resident
from helmet_cloud.services.ratelimit import RateLimiter
from helmet_cloud.services.residents import allowance
from helmet_cloud.timeutil import utcnow
from helmet_protocol.passes import Role, issue_pass

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/passes", tags=["passes"])


_limiters_lock = threading.Lock()


def _limiters(request: Request, ctx: AppContext) -> tuple[RateLimiter, RateLimiter]:
    """This app's limiters (per caller, per client IP), made on first use from its settings."""
    with _limiters_lock:
        limiters: tuple[RateLimiter, RateLimiter] | None = getattr(request.app.state, "pass_limiters", None)
        if limiters is None:
            s = ctx.settings
            limiters = (RateLimiter(s.pass_requests_per_minute, 60), RateLimiter(s.pass_requests_per_minute_per_ip, 60))
            request.app.state.pass_limiters = limiters
    return limiters


def rate_limit(request: Request, ctx: CtxDep, caller: CallerDep) -> None:
    """Refuse a caller or client address asking for passes faster than the settings allow (429)."""
    per_caller, per_ip = _limiters(request, ctx)
    now = time.monotonic()
    address = request.client.host if request.client else "unknown"
    for limiter, key, who in ((per_ip, address, f"address {address}"), (per_caller, caller.subject, caller.subject)):
        retry = limiter.hit(key, now)
        if retry is not None:
            log.warning("pass request refused: %s is over %d a minute", who, limiter.limit)
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"too many pass requests; try again in {retry} s",
                headers={"Retry-After": str(retry)},
            )


RateLimited = Annotated[None, Depends(rate_limit)]


class PassRequest(BaseModel):
    quantity: int = Field(ge=1, le=16)
    station_id: str | None = Field(default=None, max_length=32)


class PassOut(BaseModel):
    pass_id: str
    text: str
    quantity: int
    expires_at: datetime


def _sign(
    ctx: AppContext, session: Session, *, holder: str, role: Role, quantity: int, station_id: str | None
) -> PassOut:
    now = utcnow()
    pass_id = str(uuid.uuid4())
    ttl = timedelta(minutes=ctx.settings.pass_ttl_minutes)
    text = issue_pass(
        signing_key=ctx.keys.signing_key,
        kid=ctx.keys.active,
        holder_id=holder,
        quantity=quantity,
        now=now,
        ttl=ttl,
        role=role,
        pass_id=pass_id,
    )
    expires = now.replace(microsecond=0) + ttl
    session.add(
        IssuedPass(
            id=pass_id,
            holder_id=holder,
            role=role.name.lower(),
            quantity=quantity,
            kid=ctx.keys.active,
            issued_at=now,
            expires_at=expires,
            station_id=station_id,
            text=text,
        )
    )
    session.commit()
    log.info("issued %s pass %s x%d to %s", role.name.lower(), pass_id, quantity, holder)
    return PassOut(pass_id=pass_id, text=text, quantity=quantity, expires_at=expires)


@router.post("", status_code=status.HTTP_201_CREATED, responses={429: {"description": "too many pass requests"}})
def request_pass(
    body: PassRequest, session: SessionDep, ctx: CtxDep, caller: ResidentDep, _limit: RateLimited
) -> PassOut:
    """A resident asks for a pass for ``quantity`` helmets, within their limit."""
    if body.quantity > ctx.settings.max_quantity:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"at most {ctx.settings.max_quantity} helmets per pass"
        )
    # A no-op UPDATE takes the resident's row lock on PostgreSQL and the write lock on SQLite, so two
    # requests at once are serialised and cannot both pass the limit check below.
    locked = session.connection().execute(
        update(Resident).where(col(Resident.id) == caller.subject).values(phone=Resident.phone)
    )
    if locked.rowcount != 1:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown resident")
    mine = allowance(session, caller.subject, limit=ctx.settings.max_helmets_per_resident, now=utcnow())
    if body.quantity > mine.room:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"you may hold {mine.limit} helmets; "
            f"{mine.held} out and {mine.pending} on unused passes leave room for {mine.room}",
        )
    return _sign(
        ctx, session, holder=caller.subject, role=Role.RESIDENT, quantity=body.quantity, station_id=body.station_id
    )


@router.post(
    "/technician", status_code=status.HTTP_201_CREATED, responses={429: {"description": "too many pass requests"}}
)
def technician_pass(session: SessionDep, ctx: CtxDep, caller: TechnicianDep, _limit: RateLimited) -> PassOut:
    """A maintenance pass: shown at a locker it opens maintenance mode."""
    holder = caller.subject if len(caller.subject) <= 16 else caller.subject[:16]
    return _sign(ctx, session, holder=holder, role=Role.TECHNICIAN, quantity=1, station_id=None)
