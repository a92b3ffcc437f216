"""Issuing passes: a resident's borrow pass within their allowance, a technician's maintenance pass."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import update
from sqlmodel import Session, col, select

from helmet_cloud.context import AppContext
from helmet_cloud.domain.pass_progress import PassProgress, progress
from helmet_cloud.domain.pass_refusals import USE_KINDS, PassStatus, pass_status
from helmet_cloud.domain.roles import Caller, admits
from helmet_cloud.domain.roles import Role as CallerRole
from helmet_cloud.errors import (
    ConflictError,
    GoneError,
    InvalidError,
    NotFoundError,
    NotSignedInError,
    TooManyRequestsError,
)
from helmet_cloud.models import IssuedPass, LockerCommand, RawEvent, Resident
from helmet_cloud.services import audit
from helmet_cloud.services.committed import Committed
from helmet_cloud.services.residents import allowance
from helmet_cloud.timeutil import aware, utcnow
from helmet_protocol.events import EventKind
from helmet_protocol.passes import DEFAULT_SKEW, Role, issue_pass

log = logging.getLogger(__name__)


class SignedPass(BaseModel):
    pass_id: str
    text: str
    quantity: int
    expires_at: datetime


class PassPublic(BaseModel):
    """A pass as the cloud knows it (never its text): whether it is still good, fleet-wide."""

    pass_id: str
    holder_id: str
    role: str
    quantity: int
    issued_at: datetime
    expires_at: datetime
    status: PassStatus
    used_at: datetime | None
    used_locker_id: str | None
    withdrawn_at: datetime | None
    withdrawn_by: str | None

    @classmethod
    def of(cls, row: IssuedPass, now: datetime) -> PassPublic:
        return cls(
            pass_id=row.id,
            holder_id=row.holder_id,
            role=row.role,
            quantity=row.quantity,
            issued_at=row.issued_at,
            expires_at=row.expires_at,
            status=pass_status(
                withdrawn=row.withdrawn_at is not None,
                used=row.used_at is not None,
                expired=aware(row.expires_at) <= now,
            ),
            used_at=row.used_at,
            used_locker_id=row.used_locker_id,
            withdrawn_at=row.withdrawn_at,
            withdrawn_by=row.withdrawn_by,
        )


def pass_progress(session: Session, row: IssuedPass, now: datetime) -> PassProgress:
    """Where the pass stands for its holder: the slots lockers opened for it ("open now"'s acks and the
    lockers' events), which of them have shut again and how many helmets were taken."""
    opened: list[tuple[str, int]] = []
    acks = session.exec(
        select(LockerCommand)
        .where(LockerCommand.pass_id == row.id, LockerCommand.op == "borrow", col(LockerCommand.result).is_not(None))
        .order_by(col(LockerCommand.requested_at))
    ).all()
    for cmd in acks:
        data = json.loads(cmd.result or "null")
        slots = data.get("opened") if isinstance(data, dict) else None
        opened += [(cmd.locker_id, n) for n in slots or [] if isinstance(n, int)]
    events = session.exec(
        select(RawEvent.locker_id, RawEvent.slot, RawEvent.kind)
        .where(RawEvent.pass_id == row.id, col(RawEvent.kind).in_(list(USE_KINDS)), col(RawEvent.slot).is_not(None))
        .order_by(col(RawEvent.ts), col(RawEvent.seq))
    ).all()
    settled = [(locker_id, slot or 0) for locker_id, slot, _ in events]
    return progress(
        status=PassPublic.of(row, now).status,
        quantity=row.quantity,
        claimed=row.used_cmd_id is not None,
        opened=opened,
        settled=settled,
        taken=sum(1 for *_, kind in events if kind == EventKind.HELMET_BORROWED),
    )


def _visible(session: Session, caller: Caller, pass_id: str) -> IssuedPass:
    """The pass, if the caller may see it: their own, or any for staff."""
    row = session.get(IssuedPass, pass_id)
    if row is None or (row.holder_id != caller.subject and not admits(caller.role, CallerRole.STAFF)):
        raise NotFoundError("no pass {pass_id}", pass_id=pass_id)
    return row


def get_pass(session: Session, *, caller: Caller, pass_id: str) -> PassPublic:
    return PassPublic.of(_visible(session, caller, pass_id), utcnow())


def withdraw_pass(session: Session, ctx: AppContext, *, caller: Caller, pass_id: str) -> PassPublic:
    """Withdraw a pass: every locker refuses it from its next config on (``revoked``), "open now" too.

    Its holder may withdraw it while it is unused (a used pass has done what it will do); staff may
    withdraw any pass, used or not, audited. Withdrawing one already withdrawn changes nothing.
    """
    row = _visible(session, caller, pass_id)
    staff = admits(caller.role, CallerRole.STAFF)
    now = utcnow()
    if row.withdrawn_at is not None:
        return PassPublic.of(row, now)
    if aware(row.expires_at) + DEFAULT_SKEW <= now:
        raise GoneError("the pass has expired: no locker accepts it any more")
    where = [col(IssuedPass.id) == pass_id, col(IssuedPass.withdrawn_at).is_(None)]
    if not staff:
        where.append(col(IssuedPass.used_at).is_(None))
    done = session.connection().execute(
        update(IssuedPass).where(*where).values(withdrawn_at=now, withdrawn_by=caller.subject[:64])
    )
    if done.rowcount != 1:  # used (or withdrawn) since it was read
        session.rollback()
        session.refresh(row)
        if row.withdrawn_at is None:
            raise ConflictError(
                "the pass was already used at {locker}; it cannot be withdrawn now", locker=row.used_locker_id
            )
        return PassPublic.of(row, now)
    if staff:
        audit.record(
            session,
            actor=caller,
            action="pass.withdraw",
            subject_type="pass",
            subject_id=pass_id,
            detail={"holder_id": row.holder_id, "used_locker_id": row.used_locker_id},
        )
    session.commit()
    ctx.after_commit(Committed(passes_changed=True))
    session.refresh(row)
    log.info("pass %s of %s withdrawn by %s", pass_id, row.holder_id, caller.subject)
    return PassPublic.of(row, now)


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
            raise TooManyRequestsError("too many pass requests; try again in {wait} s", retry_after=retry, wait=retry)


def issue_resident_pass(
    session: Session, ctx: AppContext, *, caller: Caller, quantity: int, station_id: str | None
) -> SignedPass:
    """A borrow pass for ``quantity`` helmets, if the resident's allowance has room for them."""
    if quantity > ctx.settings.max_quantity:
        raise InvalidError("at most {most} helmets per pass", most=ctx.settings.max_quantity)
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
