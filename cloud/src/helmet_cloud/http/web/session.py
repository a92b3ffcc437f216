"""Signed-in pages: the API token in an HttpOnly, SameSite cookie, and a CSRF check on every form.

A staff member's (or technician's) token lives in ``helmet_staff``, a
resident's in ``helmet_resident``, so one phone can be both without one
sign-in replacing the other. Tokens are the API's own (``api/auth.py``); the
cookie only carries them. Each form posts a CSRF value derived from the token
(HMAC), which a page on another site can neither read nor compute.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Form, Request
from fastapi.responses import Response
from sqlmodel import Session

from helmet_cloud.domain.roles import Caller, Role, admits
from helmet_cloud.domain.security import token_hash
from helmet_cloud.errors import NotSignedInError
from helmet_cloud.http.deps import CtxDep, SessionDep
from helmet_cloud.http.web.pages import PageError
from helmet_cloud.models import ApiToken
from helmet_cloud.services.auth import caller_for_token

STAFF_COOKIE = "helmet_staff"
RESIDENT_COOKIE = "helmet_resident"


class LoginRequiredError(Exception):
    """An HTML page needs a signed-in caller: the handler redirects to the sign-in page."""

    def __init__(self, login_url: str) -> None:
        super().__init__(login_url)
        self.login_url = login_url


def csrf_for(token: str) -> str:
    return hmac.new(token.encode(), b"helmet-csrf", hashlib.sha256).hexdigest()[:32]


def caller_from_cookie(session: Session, token: str | None) -> Caller | None:
    if not token:
        return None
    try:
        return caller_for_token(session, token)
    except NotSignedInError:
        return None


def set_token_cookie(request: Request, response: Response, name: str, token: str, max_age: int) -> None:
    response.set_cookie(
        name,
        token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def forget(session: Session, response: Response, name: str, token: str | None) -> None:
    """Sign out: the token stops working, the cookie goes."""
    if token:
        row = session.get(ApiToken, token_hash(token))
        if row is not None:
            session.delete(row)
            session.commit()
    response.delete_cookie(name, path="/")


def _login_url(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/staff/login?next={quote(here, safe='')}"


def staff_side(*roles: Role) -> Any:
    """A dependency: the signed-in staff-side caller with one of ``roles`` (by rank, as the API's ``require``)."""

    def dep(request: Request, session: SessionDep, ctx: CtxDep) -> Caller:
        caller = caller_from_cookie(session, request.cookies.get(STAFF_COOKIE))
        if caller is None or caller.role == Role.RESIDENT:
            raise LoginRequiredError(_login_url(request))
        if not admits(caller.role, *roles):
            raise PageError(403, "Your account may not see this page.")
        # Read before the page reads its data: a change in between makes the live stream refresh the page.
        request.state.watermark = ctx.watermark.current()
        return caller

    return Depends(dep)


StaffPage = Annotated[Caller, staff_side(Role.STAFF)]
TechPage = Annotated[Caller, staff_side(Role.TECHNICIAN)]


def _csrf_check(cookie: str) -> Any:
    def check(request: Request, csrf: Annotated[str, Form(max_length=64)] = "") -> None:
        token = request.cookies.get(cookie)
        if not token or not hmac.compare_digest(csrf, csrf_for(token)):
            raise PageError(403, "The form is out of date or came from another site: reload the page and try again.")

    return Depends(check)


# Every POST form of a signed-in page carries the CSRF value of its cookie's token.
StaffCsrf = _csrf_check(STAFF_COOKIE)
ResidentCsrf = _csrf_check(RESIDENT_COOKIE)
