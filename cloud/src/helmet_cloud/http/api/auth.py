"""Sign-in: residents by phone and one-time code, staff by password."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from helmet_cloud import i18n
from helmet_cloud.domain.phones import MAX_TYPED
from helmet_cloud.http.deps import CtxDep, SessionDep, client_address
from helmet_cloud.services import auth, phones
from helmet_cloud.services.auth import SignedIn

router = APIRouter(prefix="/api/auth", tags=["auth"])


class PhoneIn(BaseModel):
    phone: str = Field(
        max_length=MAX_TYPED,
        description="in any local or international form (0780000005, +41 78 000 00 05, 0041...); kept in E.164",
    )
    town: str | None = Field(
        default=None,
        max_length=32,
        description="the town whose region reads a number typed without a country code; default: the deployment's",
    )


class CodeIn(PhoneIn):
    code: str = Field(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")


class PasswordIn(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=256)


@router.post("/code", status_code=status.HTTP_202_ACCEPTED, responses={429: {"description": "too many codes"}})
def send_code(body: PhoneIn, request: Request, session: SessionDep, ctx: CtxDep) -> dict[str, str]:
    """Text a six-digit code to the phone: at most 3 per number and 20 per client address in 15 minutes
    (the settings' defaults; more get 429 with Retry-After). The text is in the language ``Accept-Language``
    prefers (Simplified Chinese or English)."""
    lang = i18n.parse_accept_language(request.headers.get("accept-language", "")) or i18n.DEFAULT
    phone = phones.normalised(session, ctx.settings, body.phone, town_id=body.town)
    auth.send_code(session, ctx, phone=phone, address=client_address(request), lang=lang)
    return {"status": "sent"}


@router.post("/verify", responses={429: {"description": "too many tries for this number"}})
def verify_code(body: CodeIn, session: SessionDep, ctx: CtxDep) -> SignedIn:
    """Exchange the code for a resident token, creating the account on first sign-in: at most 5 tries per number
    in 15 minutes, right or wrong, whatever codes were sent meanwhile (more get 429 with Retry-After)."""
    phone = phones.normalised(session, ctx.settings, body.phone, town_id=body.town)
    return auth.verify_code(session, ctx, phone=phone, code=body.code)


@router.post("/login", responses={429: {"description": "too many failed sign-ins: wait"}})
def login(body: PasswordIn, request: Request, session: SessionDep, ctx: CtxDep) -> SignedIn:
    """Staff, technicians and admins sign in with a password. After 5 failures in a row for an account (20 from
    a client address), each further try waits twice as long as the one before, up to 15 minutes (429)."""
    return auth.login(session, ctx, username=body.username, password=body.password, address=client_address(request))
