"""Sign-in: residents by phone and one-time code, staff by password."""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from datetime import timedelta

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field, field_validator
from sqlmodel import Session, select

from helmet_cloud.domain.security import check_password, new_code, new_token, token_hash
from helmet_cloud.http.api.deps import CtxDep, SessionDep
from helmet_cloud.models import ApiToken, OneTimeCode, Resident, User
from helmet_cloud.timeutil import aware, utcnow

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/auth", tags=["auth"])
MAX_ATTEMPTS = 5


class PhoneIn(BaseModel):
    phone: str = Field(max_length=20)

    @field_validator("phone")
    @classmethod
    def _e164(cls, v: str) -> str:
        digits = re.sub(r"[\s().-]", "", v)
        if not re.fullmatch(r"\+?[0-9]{6,15}", digits):
            raise ValueError("enter a phone number, e.g. +41 79 123 45 67")
        return digits


class CodeIn(PhoneIn):
    code: str = Field(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")


class PasswordIn(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=256)


class TokenOut(BaseModel):
    token: str
    role: str
    subject: str
    expires_at: str


def issue_token(session: Session, *, role: str, subject: str, ttl: timedelta) -> TokenOut:
    token = new_token()
    expires = utcnow() + ttl
    session.add(ApiToken(token_hash=token_hash(token), role=role, subject=subject, expires_at=expires))
    session.commit()
    return TokenOut(token=token, role=role, subject=subject, expires_at=expires.isoformat())


@router.post("/code", status_code=status.HTTP_202_ACCEPTED)
def send_code(body: PhoneIn, session: SessionDep, ctx: CtxDep) -> dict[str, str]:
    """Text a six-digit code to the phone."""
    code = new_code()
    row = session.get(OneTimeCode, body.phone) or OneTimeCode(phone=body.phone, code_hash="", expires_at=utcnow())
    row.code_hash, row.attempts = token_hash(code), 0
    row.expires_at = utcnow() + timedelta(minutes=ctx.settings.otp_ttl_minutes)
    session.add(row)
    session.commit()
    ctx.sms.send(body.phone, f"Your helmet code is {code}")
    return {"status": "sent"}


@router.post("/verify")
def verify_code(body: CodeIn, session: SessionDep, ctx: CtxDep) -> TokenOut:
    """Exchange the code for a resident token, creating the account on first sign-in."""
    row = session.get(OneTimeCode, body.phone)
    if row is None or aware(row.expires_at) < utcnow() or row.attempts >= MAX_ATTEMPTS:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "code expired: ask for a new one")
    if not hmac.compare_digest(row.code_hash, token_hash(body.code)):
        row.attempts += 1
        session.add(row)
        session.commit()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong code")
    session.delete(row)
    resident = session.exec(select(Resident).where(Resident.phone == body.phone)).first()
    if resident is None:
        resident = Resident(id=f"R-{secrets.token_hex(5).upper()}", phone=body.phone, created_at=utcnow())
        session.add(resident)
        log.info("new resident %s", resident.id)
    session.commit()
    return issue_token(session, role="resident", subject=resident.id, ttl=timedelta(hours=ctx.settings.token_ttl_hours))


@router.post("/login")
def login(body: PasswordIn, session: SessionDep) -> TokenOut:
    """Staff, technicians and admins sign in with a password."""
    user = session.get(User, body.username)
    if user is None or not check_password(body.password, user.password_hash):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    return issue_token(session, role=user.role, subject=user.username, ttl=timedelta(hours=12))
