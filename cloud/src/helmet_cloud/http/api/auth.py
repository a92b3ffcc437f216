"""Sign-in: residents by phone and one-time code, staff by password."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, Field, field_validator

from helmet_cloud.domain.phones import phone_number
from helmet_cloud.http.deps import CtxDep, SessionDep
from helmet_cloud.services import auth
from helmet_cloud.services.auth import SignedIn

router = APIRouter(prefix="/api/auth", tags=["auth"])


class PhoneIn(BaseModel):
    phone: str = Field(max_length=20)

    @field_validator("phone")
    @classmethod
    def _normalised(cls, v: str) -> str:
        return phone_number(v)


class CodeIn(PhoneIn):
    code: str = Field(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")


class PasswordIn(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=256)


@router.post("/code", status_code=status.HTTP_202_ACCEPTED)
def send_code(body: PhoneIn, session: SessionDep, ctx: CtxDep) -> dict[str, str]:
    """Text a six-digit code to the phone."""
    auth.send_code(session, ctx, phone=body.phone)
    return {"status": "sent"}


@router.post("/verify")
def verify_code(body: CodeIn, session: SessionDep, ctx: CtxDep) -> SignedIn:
    """Exchange the code for a resident token, creating the account on first sign-in."""
    return auth.verify_code(session, ctx, phone=body.phone, code=body.code)


@router.post("/login")
def login(body: PasswordIn, session: SessionDep) -> SignedIn:
    """Staff, technicians and admins sign in with a password."""
    return auth.login(session, username=body.username, password=body.password)
