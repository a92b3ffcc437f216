"""Signing in: residents by phone and one-time code, staff by password; tokens and who they stand for."""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import timedelta

from pydantic import BaseModel
from sqlmodel import Session, select

from helmet_cloud.context import AppContext
from helmet_cloud.domain.roles import Caller, Role
from helmet_cloud.domain.security import check_password, new_code, new_token, token_hash
from helmet_cloud.errors import NotSignedInError
from helmet_cloud.models import ApiToken, OneTimeCode, Resident, User
from helmet_cloud.timeutil import aware, utcnow

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5


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


def send_code(session: Session, ctx: AppContext, *, phone: str) -> None:
    """Text a six-digit code to ``phone``; an earlier code for it stops working."""
    code = new_code()
    row = session.get(OneTimeCode, phone) or OneTimeCode(phone=phone, code_hash="", expires_at=utcnow())
    row.code_hash, row.attempts = token_hash(code), 0
    row.expires_at = utcnow() + timedelta(minutes=ctx.settings.otp_ttl_minutes)
    session.add(row)
    session.commit()
    ctx.sms.send(phone, f"Your helmet code is {code}")


def verify_code(session: Session, ctx: AppContext, *, phone: str, code: str) -> SignedIn:
    """Exchange the code for a resident token, creating the account on first sign-in."""
    row = session.get(OneTimeCode, phone)
    if row is None or aware(row.expires_at) < utcnow() or row.attempts >= MAX_ATTEMPTS:
        raise NotSignedInError("code expired: ask for a new one")
    if not hmac.compare_digest(row.code_hash, token_hash(code)):
        row.attempts += 1
        session.add(row)
        session.commit()
        raise NotSignedInError("wrong code")
    session.delete(row)
    resident = session.exec(select(Resident).where(Resident.phone == phone)).first()
    if resident is None:
        resident = Resident(id=f"R-{secrets.token_hex(5).upper()}", phone=phone, created_at=utcnow())
        session.add(resident)
        log.info("new resident %s", resident.id)
    session.commit()
    ttl = timedelta(hours=ctx.settings.token_ttl_hours)
    return issue_token(session, role=Role.RESIDENT, subject=resident.id, ttl=ttl)


def login(session: Session, *, username: str, password: str) -> SignedIn:
    """Staff, technicians and admins sign in with a password."""
    user = session.get(User, username)
    if user is None or not check_password(password, user.password_hash):
        raise NotSignedInError("wrong username or password")
    return issue_token(session, role=user.role, subject=user.username, ttl=timedelta(hours=12))
