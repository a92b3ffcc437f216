"""Issuing passes: a resident's borrow pass within their allowance, a technician's maintenance pass."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import update
from sqlmodel import Session, col

from helmet_cloud.context import AppContext
from helmet_cloud.domain.roles import Caller
from helmet_cloud.errors import ConflictError, InvalidError, NotSignedInError, TooManyRequestsError
from helmet_cloud.models import IssuedPass, Resident
from helmet_cloud.services.residents import allowance
from helmet_cloud.timeutil import utcnow
from helmet_protocol.passes import Role, issue_pass

log = logging.getLogger(__name__)


class SignedPass(BaseModel):
    pass_id: str
    text: str
    quantity: int
    expires_at: datetime


def check_pass_rate(ctx: AppContext, *, caller: Caller, address: str, now: float) -> None:
    """Refuse a caller or client address asking for passes faster than the settings allow."""
    limits = ctx.limits
    for limiter, key, who in (
        (limits.passes_per_address, address, f"address {address}"),
        (limits.passes_per_caller, caller.subject, caller.subject),
    ):
        retry = limiter.hit(key, now)
        if retry is not None:
            log.warning("pass request refused: %s is over %d a minute", who, limiter.limit)
            raise TooManyRequestsError(f"too many pass requests; try again in {retry} s", retry_after=retry)


def issue_resident_pass(
    session: Session, ctx: AppContext, *, caller: Caller, quantity: int, station_id: str | None
) -> SignedPass:
    """A borrow pass for ``quantity`` helmets, if the resident's allowance has room for them."""
    if quantity > ctx.settings.max_quantity:
        raise InvalidError(f"at most {ctx.settings.max_quantity} helmets per pass")
    # A no-op UPDATE takes the resident's row lock on PostgreSQL and the write lock on SQLite, so two
    # requests at once are serialised and cannot both pass the allowance check below.
    locked = session.connection().execute(
        update(Resident).where(col(Resident.id) == caller.subject).values(phone=Resident.phone)
    )
    if locked.rowcount != 1:
        raise NotSignedInError("unknown resident")
    refusal = allowance(session, caller.subject, limit=ctx.settings.max_helmets_per_resident, now=utcnow()).refusal(
        quantity
    )
    if refusal is not None:
        raise ConflictError(refusal)
    return _sign(session, ctx, holder=caller.subject, role=Role.RESIDENT, quantity=quantity, station_id=station_id)


def issue_technician_pass(session: Session, ctx: AppContext, *, caller: Caller) -> SignedPass:
    """A maintenance pass: shown at a locker it opens maintenance mode."""
    return _sign(session, ctx, holder=caller.subject[:16], role=Role.TECHNICIAN, quantity=1, station_id=None)


def _sign(
    session: Session, ctx: AppContext, *, holder: str, role: Role, quantity: int, station_id: str | None
) -> SignedPass:
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
    return SignedPass(pass_id=pass_id, text=text, quantity=quantity, expires_at=expires)
