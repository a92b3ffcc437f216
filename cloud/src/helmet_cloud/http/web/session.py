"""Signed-in pages: the API token in an HttpOnly, SameSite, Secure cookie, and two CSRF checks on forms.

A staff member's (or technician's) token lives in ``helmet_staff``, a
resident's in ``helmet_resident``, so one phone can be both without one
sign-in replacing the other. Tokens are the API's own (``api/auth.py``); the
cookie only carries them, and is Secure unless the setting ``secure_cookies``
is off (then only over HTTPS). Each form of a signed-in page posts a CSRF
value derived from the token (HMAC), which a page on another site can neither
read nor compute. The sign-in forms have no token yet, so every POST to the
pages, these included, must also come from this site (:func:`same_site_form`):
a form on another site can neither sign a browser in to an account of its
choosing nor make the cloud send texts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Form, Request
from fastapi.responses import Response
from sqlmodel import Session

from helmet_cloud.domain.roles import Caller, Role, admits
from helmet_cloud.domain.security import token_hash
from helmet_cloud.errors import CloudError, NotSignedInError
from helmet_cloud.http.deps import CtxDep, SessionDep, get_ctx
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


def flash_for(token: str | None, error: CloudError) -> str:
    """A refusal to show after a redirect, as ``?error=``: its English message and fields, signed with the
    session's token, so a crafted link can show nothing of its own (an unsigned or foreign value shows nothing)."""
    body = base64.urlsafe_b64encode(json.dumps([error.message, error.fields], default=str).encode()).decode()
    return f"{body}.{_flash_mac(token or '', body)}"


def flashed(token: str | None, value: str | None) -> CloudError | None:
    """The refusal :func:`flash_for` carried, if ``value`` was signed for this session; otherwise None."""
    if not token or not value or value.count(".") != 1:
        return None
    body, mac = value.split(".")
    if not hmac.compare_digest(mac, _flash_mac(token, body)):
        return None
    try:
        message, fields = json.loads(base64.urlsafe_b64decode(body.encode()))
    except (ValueError, TypeError):
        return None
    if not isinstance(message, str) or not isinstance(fields, dict):
        return None
    return CloudError(message, **fields)


def _flash_mac(token: str, body: str) -> str:
    return hmac.new(token.encode(), b"helmet-flash:" + body.encode(), hashlib.sha256).hexdigest()[:32]


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
        secure=get_ctx(request).settings.secure_cookies or request.url.scheme == "https",
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


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _sender(value: str) -> str | None:
    """The host[:port] an Origin or Referer names; None for ``null`` or anything but an http(s) URL."""
    parts = urlsplit(value)
    return parts.netloc.lower() if parts.scheme in ("http", "https") and parts.netloc else None


def same_site_form(request: Request, ctx: CtxDep) -> None:
    """Every POST to the pages comes from this site, by what the browser says about where the form was.

    ``Sec-Fetch-Site`` (every current browser sends it, and no page can set it) must be ``same-origin``
    (or ``none``: typed or bookmarked by the person).
    Without it, the ``Origin`` (or else the ``Referer``) must name this host, as the request's ``Host`` or the
    setting ``public_host`` has it (a proxy may rewrite ``Host``). A request with none of the three comes from
    no web page (a script, curl): it carries no victim's cookie, so it is let through to the checks every
    request meets.
    """
    if request.method in SAFE_METHODS:
        return
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site not in ("same-origin", "none"):
            raise PageError(403, "The form is out of date or came from another site: reload the page and try again.")
        return
    sender = request.headers.get("origin") or request.headers.get("referer")
    if sender is None:
        return
    ours = {h.lower() for h in (request.headers.get("host"), ctx.settings.public_host) if h}
    if _sender(sender) not in ours:
        raise PageError(403, "The form is out of date or came from another site: reload the page and try again.")


def _csrf_check(cookie: str) -> Any:
    def check(request: Request, csrf: Annotated[str, Form(max_length=64)] = "") -> None:
        token = request.cookies.get(cookie)
        if not token or not hmac.compare_digest(csrf, csrf_for(token)):
            raise PageError(403, "The form is out of date or came from another site: reload the page and try again.")

    return Depends(check)


# Every POST form of a signed-in page carries the CSRF value of its cookie's token.
StaffCsrf = _csrf_check(STAFF_COOKIE)
ResidentCsrf = _csrf_check(RESIDENT_COOKIE)
