"""Signing in: residents by phone and one-time code, staff by password; tokens and who they stand for."""

from __future__ import annotations

import logging
import math
import secrets
import time
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import case, literal, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped
from sqlmodel import Session, col, select

from helmet_cloud import i18n
from helmet_cloud.context import AppContext
from helmet_cloud.domain.roles import Caller, Role
from helmet_cloud.domain.security import check_password, new_code, new_token, token_hash, unknown_user_hash
from helmet_cloud.errors import NotSignedInError, TooManyRequestsError
from helmet_cloud.models import TS, ApiToken, OneTimeCode, Resident, User
from helmet_cloud.timeutil import aware, utcnow

log = logging.getLogger(__name__)


class SignedIn(BaseModel):
    token: str
    role: str
    subject: str
    expires_at: str


def issue_token(session: Session, *, role: str, subject: str, ttl: timedelta) -> SignedIn:
    token = new_token()
    expires = utcnow() + ttl
    session.add(ApiToken(token_hash=token_hash(token), role=role, subject=subject, expires_at=expires))
    session.commit()
    return SignedIn(token=token, role=role, subject=subject, expires_at=expires.isoformat())


def caller_for_token(session: Session, token: str) -> Caller:
    """Who ``token`` stands for, or :class:`NotSignedInError` if it is unknown or expired."""
    row = session.get(ApiToken, token_hash(token))
    if row is None or aware(row.expires_at) < utcnow():
        raise NotSignedInError("token is not valid")
    return Caller(role=row.role, subject=row.subject)


def _window(ctx: AppContext) -> timedelta:
    return timedelta(minutes=ctx.settings.sign_in_window_minutes)


def _masked(phone: str) -> str:
    """A number as the log shows it: enough to tell numbers apart, not enough to call."""
    return f"{phone[:-4]}XXXX"


def _count_one(
    session: Session,
    phone: str,
    count: Mapped[int],
    since: Mapped[datetime],
    *,
    limit: int,
    now: datetime,
    window: timedelta,
    **also: object,
) -> bool:
    """Count one more in ``phone``'s window (and set ``also``) in one conditional UPDATE; False, and nothing
    changed, when the window already holds ``limit``. The database decides, so requests at once cannot all
    read the same count: on PostgreSQL a second UPDATE of the row waits for the first and checks its WHERE
    against the row the first left; SQLite runs one writer at a time. A window ends ``window`` after it began;
    the next one begins with the next count."""
    ended = since <= now - window
    stamp = literal(now, TS)
    stmt = (
        update(OneTimeCode)
        .where(col(OneTimeCode.phone) == phone, or_(count < limit, ended))
        .values({count: case((ended, 1), else_=count + 1), since: case((ended, stamp), else_=since), **also})
    )
    done: int = session.connection().execute(stmt).rowcount
    return done == 1


def _seconds_left(since: datetime, window: timedelta, now: datetime) -> int:
    return max(1, math.ceil((aware(since) + window - now).total_seconds()))


def send_code(session: Session, ctx: AppContext, *, phone: str, address: str, lang: str = i18n.DEFAULT) -> None:
    """Text a six-digit code to ``phone`` in ``lang``; an earlier code for it stops working, its tries do not
    start again.

    At most ``codes_sent_per_window`` codes per number in a window, and ``codes_sent_per_window_per_ip`` per
    client address; more are refused with :class:`TooManyRequestsError`, changing nothing.
    """
    s, now, window = ctx.settings, utcnow(), _window(ctx)
    dialect = postgresql if session.connection().dialect.name == "postgresql" else sqlite
    session.connection().execute(
        dialect.insert(OneTimeCode)
        .values(phone=phone, code_hash="", expires_at=now, tries=0, tries_since=now, sent=0, sent_since=now)
        .on_conflict_do_nothing()
    )
    code = new_code()
    expires = now + timedelta(minutes=s.otp_ttl_minutes)
    limit = s.codes_sent_per_window
    if not _count_one(
        session, phone, col(OneTimeCode.sent), col(OneTimeCode.sent_since), limit=limit, now=now, window=window,
        code_hash=token_hash(code), expires_at=expires,
    ):  # fmt: skip
        session.rollback()
        row = session.get(OneTimeCode, phone)
        wait = _seconds_left(row.sent_since, window, now) if row else 1
        log.warning("sign-in code refused: %d sent to %s in %s already", limit, _masked(phone), window)
        raise TooManyRequestsError(
            "too many codes sent to this number; try again in {wait} s", retry_after=wait, wait=wait
        )
    busy = ctx.limits.codes_per_address.hit(address, time.monotonic())
    if busy is not None:
        session.rollback()
        most = ctx.limits.codes_per_address.limit
        log.warning("sign-in code refused: address %s asked for %d in %s already", address, most, window)
        raise TooManyRequestsError("too many codes asked for; try again in {wait} s", retry_after=busy, wait=busy)
    session.commit()
    text = i18n.translator(lang)._(
        "{programme}: your sign-in code is {code}. It works for {minutes} minutes.",
        programme=i18n.translator(lang).name(s.feed_name, s.feed_names),
        code=code,
        minutes=s.otp_ttl_minutes,
    )
    ctx.sms.send(phone, text)


def verify_code(session: Session, ctx: AppContext, *, phone: str, code: str) -> SignedIn:
    """Exchange the code for a resident token, creating the account on first sign-in.

    Each try counts against the number before the code is looked at: at most ``code_tries_per_window`` per
    window, right or wrong, whatever codes were sent meanwhile; more are refused with
    :class:`TooManyRequestsError`. A code is used once.
    """
    s, now, window = ctx.settings, utcnow(), _window(ctx)
    counted = _count_one(
        session, phone, col(OneTimeCode.tries), col(OneTimeCode.tries_since), limit=s.code_tries_per_window, now=now,
        window=window,
    )  # fmt: skip
    session.commit()
    if not counted:
        row = session.get(OneTimeCode, phone)
        if row is None:
            raise NotSignedInError("code expired: ask for a new one")
        wait = _seconds_left(row.tries_since, window, now)
        log.warning("sign-in refused: %d tries at a code for %s in %s already", row.tries, _masked(phone), window)
        raise TooManyRequestsError("too many tries for this number; try again in {wait} s", retry_after=wait, wait=wait)
    used = session.connection().execute(
        update(OneTimeCode)
        .where(
            col(OneTimeCode.phone) == phone,
            col(OneTimeCode.code_hash) == token_hash(code),
            col(OneTimeCode.expires_at) > now,
        )
        .values(code_hash="")
    )
    if used.rowcount != 1:
        session.rollback()
        row = session.get(OneTimeCode, phone)
        if row is None or not row.code_hash or aware(row.expires_at) <= now:
            raise NotSignedInError("code expired: ask for a new one")
        log.info("wrong sign-in code for %s (try %d)", _masked(phone), row.tries)
        raise NotSignedInError("wrong code")
    resident = session.exec(select(Resident).where(Resident.phone == phone)).first()
    if resident is None:
        resident = Resident(id=f"R-{secrets.token_hex(5).upper()}", phone=phone, created_at=utcnow())
        session.add(resident)
        log.info("new resident %s", resident.id)
    session.commit()
    ttl = timedelta(hours=s.token_ttl_hours)
    return issue_token(session, role=Role.RESIDENT, subject=resident.id, ttl=ttl)


def login(session: Session, ctx: AppContext, *, username: str, password: str, address: str) -> SignedIn:
    """Staff, technicians and admins sign in with a password.

    Failed tries back off per account and per client address (:class:`~helmet_cloud.services.ratelimit.Backoff`);
    a try that has to wait is refused with :class:`TooManyRequestsError`. An unknown username gets the same
    scrypt work and the same back-off as a known one.
    """
    limits, now = ctx.limits, time.monotonic()
    wait = limits.passwords_per_account.hit(username, now)
    if wait is None:
        wait = limits.passwords_per_address.hit(address, now)
        if wait is not None:
            limits.passwords_per_account.give_back(username)
    if wait is not None:
        log.warning("password sign-in refused: %r from %s must wait %d s", username, address, wait)
        raise TooManyRequestsError("too many failed sign-ins; try again in {wait} s", retry_after=wait, wait=wait)
    user = session.get(User, username)
    right = check_password(password, user.password_hash if user is not None else unknown_user_hash())
    if user is None or not right:
        log.info("wrong password for %r from %s", username, address)
        raise NotSignedInError("wrong username or password")
    limits.passwords_per_account.forget(username)
    limits.passwords_per_address.give_back(address)
    return issue_token(session, role=user.role, subject=user.username, ttl=timedelta(hours=12))
