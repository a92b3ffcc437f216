"""Enrolling a Pi as a locker: one-time codes, the config bundle, and what re-enrolment resets.

A technician asks for a code for a registered locker; the Pi exchanges it once
for a bundle (:mod:`helmet_protocol.enrolment`). Every exchange (and every
exported bundle file) gives the locker a new broker password, so the Pi that
held the locker before is cut off at once, and raises the locker's ``acked_seq``
to the highest seq the cloud has stored, which the new Pi numbers its events
after. Only a code's SHA-256 is stored; a locker has at most one live code.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from helmet_cloud.adapters.dynsec import BrokerAdminError
from helmet_cloud.context import AppContext
from helmet_cloud.domain.roles import Caller
from helmet_cloud.errors import CloudError, GoneError, InvalidError, NotFoundError
from helmet_cloud.models import EnrolmentCode, Locker, RawEvent
from helmet_cloud.services import audit
from helmet_cloud.timeutil import aware, utcnow
from helmet_protocol import topics
from helmet_protocol.enrolment import BrokerAccess, EnrolmentBundle, new_code, normalise_code, qr_text
from helmet_protocol.messages import Ack
from helmet_protocol.topics import Channel

log = logging.getLogger(__name__)


class EnrolmentRefusedError(CloudError):
    """A code that cannot be exchanged; the subclass says why."""


class EnrolmentCodeInvalidError(EnrolmentRefusedError, InvalidError):
    """Not a code at all."""


class EnrolmentCodeUnknownError(EnrolmentRefusedError, NotFoundError):
    """No such code was ever issued."""


class EnrolmentCodeSpentError(EnrolmentRefusedError, GoneError):
    """Used, replaced or expired."""


class EnrolmentMisconfiguredError(EnrolmentRefusedError):
    """This cloud cannot enrol anyone until an operator fixes its settings."""


def code_hash(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedCode:
    code: str
    locker_id: str
    expires_at: datetime


def issue_code(session: Session, *, locker: Locker, actor: str, minutes: int) -> IssuedCode:
    """A new code for ``locker``; any code still open for it dies (one live code per locker)."""
    now = utcnow()
    revoke_codes(session, locker.id, now)
    code = new_code()
    row = EnrolmentCode(
        code_hash=code_hash(code),
        locker_id=locker.id,
        created_by=actor,
        created_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )
    session.add(row)
    return IssuedCode(code=code, locker_id=locker.id, expires_at=row.expires_at)


def revoke_codes(session: Session, locker_id: str, now: datetime) -> int:
    """Kill the locker's open codes (a newer code, an exported bundle, decommissioning)."""
    result = session.connection().execute(
        sa.update(EnrolmentCode)
        .where(
            col(EnrolmentCode.locker_id) == locker_id,
            col(EnrolmentCode.used_at).is_(None),
            col(EnrolmentCode.revoked_at).is_(None),
        )
        .values(revoked_at=now)
    )
    return int(result.rowcount or 0)


def open_code(session: Session, locker_id: str, code: str) -> EnrolmentCode | None:
    """The code if it belongs to ``locker_id`` and can still be exchanged."""
    row = session.get(EnrolmentCode, code_hash(code))
    if row is None or row.locker_id != locker_id or row.used_at or row.revoked_at:
        return None
    return row if aware(row.expires_at) > utcnow() else None


def claim(session: Session, code: str) -> EnrolmentCode:
    """Mark the code used, or raise :class:`EnrolmentRefusedError` with the reason.

    The conditional UPDATE makes two simultaneous exchanges of one code end
    with one winner; the caller commits (or rolls back, which frees the code).
    """
    try:
        digest = code_hash(code)
    except ValueError as exc:
        raise EnrolmentCodeInvalidError(str(exc)) from None
    now = utcnow()
    won = session.connection().execute(
        sa.update(EnrolmentCode)
        .where(
            col(EnrolmentCode.code_hash) == digest,
            col(EnrolmentCode.used_at).is_(None),
            col(EnrolmentCode.revoked_at).is_(None),
            col(EnrolmentCode.expires_at) > now,
        )
        .values(used_at=now)
    )
    row = session.get(EnrolmentCode, digest)
    if row is None:
        raise EnrolmentCodeUnknownError("unknown enrolment code: check it, or ask for a new one")
    if won.rowcount != 1:
        session.refresh(row)
        if row.used_at is not None:
            raise EnrolmentCodeSpentError(
                "this enrolment code was used at {when} UTC: ask for a new one",
                when=aware(row.used_at).strftime("%Y-%m-%d %H:%M"),
            )
        if row.revoked_at is not None:
            raise EnrolmentCodeSpentError(
                "this enrolment code was replaced by a newer one or its locker was decommissioned"
            )
        raise EnrolmentCodeSpentError(
            "this enrolment code expired at {when} UTC: ask for a new one",
            when=aware(row.expires_at).strftime("%Y-%m-%d %H:%M"),
        )
    return row


def seq_floor(session: Session, locker: Locker) -> int:
    """The highest seq the cloud holds for the locker: a new Pi must not reuse any seq up to it."""
    stored = session.exec(select(func.max(RawEvent.seq)).where(RawEvent.locker_id == locker.id)).one()
    return max(locker.acked_seq, int(stored or 0))


def new_broker_password(ctx: AppContext, locker_id: str) -> str | None:
    """A fresh password for the locker's broker user (created if missing); None when the cloud has no broker admin.

    The broker drops a session still using the old password (the client is disabled and enabled again).
    """
    admin = ctx.broker_admin
    if admin is None:
        return None
    try:
        password = admin.rotate_locker(locker_id)
    except BrokerAdminError as exc:
        if "not found" not in str(exc).lower():
            raise
        return admin.create_locker(locker_id)
    admin.command("disableClient", username=locker_id)
    admin.command("enableClient", username=locker_id)
    return password


def broker_ca(ctx: AppContext) -> str | None:
    """The PEM of ``locker_mqtt_ca_file`` for the bundle; read before any password changes, so a missing file
    fails the request without cutting off the locker."""
    path = ctx.settings.locker_mqtt_ca_file
    if path is None:
        return None
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise EnrolmentMisconfiguredError(
            "locker_mqtt_ca_file {path} cannot be read: {reason}", path=str(path), reason=str(exc)
        ) from None


def build_bundle(
    ctx: AppContext, session: Session, locker: Locker, password: str | None, ca_pem: str | None
) -> EnrolmentBundle:
    """The locker's bundle; re-basing ``acked_seq`` gives up events a dead Pi never delivered."""
    s = ctx.settings
    floor = seq_floor(session, locker)
    if floor != locker.acked_seq:
        log.warning(
            "locker %s re-enrolled: seq %d..%d never arrived and are given up", locker.id, locker.acked_seq + 1, floor
        )
    locker.acked_seq = floor
    locker.resend_asked_at = None
    session.add(locker)
    return EnrolmentBundle(
        locker_id=locker.id,
        station_id=locker.station_id,
        slot_count=locker.slot_count,
        pin_profile=locker.pin_profile,
        mqtt=BrokerAccess(
            host=s.locker_mqtt_host or s.mqtt_host,
            port=s.locker_mqtt_port or s.mqtt_port,
            tls=s.locker_mqtt_tls,
            username=locker.id,
            password=password,
            ca_pem=ca_pem,
        ),
        pass_keys=ctx.keys.public(),
        max_quantity=s.max_quantity,
        helmet_url_host=s.public_host,
        last_seq=floor,
        issued_at=utcnow(),
    )


def publish_ack(ctx: AppContext, locker_id: str, seq: int) -> None:
    """The retained ack agrees with the re-based seq, so the new Pi starts from the same point."""
    ctx.mqtt.publish(topics.topic(locker_id, Channel.ACK), Ack(locker_id=locker_id, seq=seq).to_json(), retain=True)


def cloud_url(ctx: AppContext) -> str:
    """Where a Pi exchanges its code: the cloud's public address, as the enrolment QR names it."""
    return f"https://{ctx.settings.public_host}"


@dataclass(frozen=True, slots=True)
class EnrolmentCodeIssued:
    locker_id: str
    code: str
    expires_at: datetime
    qr_text: str  # what the Pi's camera reads: the cloud's address and the code


def create_code(
    session: Session, ctx: AppContext, *, caller: Caller, locker_id: str, minutes: int | None
) -> EnrolmentCodeIssued:
    """A one-time code for the Pi, audited; any earlier open code for this locker stops working."""
    locker = session.get(Locker, locker_id)
    if locker is None:
        raise NotFoundError("no locker {locker}", locker=locker_id)
    issued = issue_code(
        session, locker=locker, actor=caller.subject, minutes=minutes or ctx.settings.enrolment_code_minutes
    )
    audit.record(
        session,
        actor=caller,
        action="locker.enrolment_code",
        subject_type="locker",
        subject_id=locker_id,
        detail={"expires_at": issued.expires_at.isoformat()},
    )
    session.commit()
    text = qr_text(cloud_url(ctx), issued.code)
    return EnrolmentCodeIssued(locker_id=locker_id, code=issued.code, expires_at=issued.expires_at, qr_text=text)
