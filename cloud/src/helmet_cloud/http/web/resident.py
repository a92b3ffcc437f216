"""Resident pages (phone): ``/s/{station}`` from the station's poster, ``/h/{helmet}`` from a helmet's sticker."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import Session, col, select

from helmet_cloud.domain.loan_due import ReturnBy, return_by
from helmet_cloud.domain.phones import PhoneRefusedError
from helmet_cloud.domain.roles import Caller
from helmet_cloud.domain.states import LoanStatus
from helmet_cloud.errors import (
    CloudError,
    ConflictError,
    InvalidError,
    NotFoundError,
    NotSignedInError,
    TooManyRequestsError,
    UnavailableError,
)
from helmet_cloud.http.deps import CtxDep, SessionDep, client_address
from helmet_cloud.http.web import queries
from helmet_cloud.http.web.pages import PageError, qr_svg, see_other
from helmet_cloud.http.web.render import language, render
from helmet_cloud.http.web.session import RESIDENT_COOKIE, ResidentCsrf, caller_from_cookie, forget, set_token_cookie
from helmet_cloud.models import IssuedPass, Loan, Locker, LockerCommand, Station
from helmet_cloud.services import auth, commands, passes, phones
from helmet_cloud.services.alerts import station_names
from helmet_cloud.services.residents import allowance, open_passes
from helmet_cloud.services.stations import StationStatus, stations_with_counts
from helmet_cloud.settings import CloudSettings
from helmet_cloud.timeutil import aware, utcnow
from helmet_protocol.stickers import HELMET_ID_RE
from helmet_protocol.topics import LOCKER_ID_RE

router = APIRouter(include_in_schema=False)
StationPath = Annotated[str, Path(max_length=40)]


def page(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> Response:
    return render(request, template, context, status_code=status_code, cookie=RESIDENT_COOKIE)


def _station(session: Session, station_id: str) -> Station:
    station = session.get(Station, station_id)
    if station is None:
        raise PageError(404, "This station does not exist. Check the code on the poster.")
    return station


def _resident(request: Request, session: Session) -> Caller | None:
    caller = caller_from_cookie(session, request.cookies.get(RESIDENT_COOKIE))
    return caller if caller is not None and caller.role == "resident" else None


def _mine(session: Session, caller: Caller, settings: CloudSettings) -> list[tuple[Loan, ReturnBy]]:
    """Open loans, newest first, each with when it should be back (the overdue limit the alerts use)."""
    q = select(Loan).where(Loan.resident_id == caller.subject, Loan.status == LoanStatus.OPEN)
    limit, now = timedelta(hours=settings.loan_overdue_hours), utcnow()
    rows = session.exec(q.order_by(col(Loan.borrowed_at).desc())).all()
    return [(loan, return_by(aware(loan.borrowed_at), limit, now)) for loan in rows]


# The red box on resident pages says one of these (resident/error.html words them), named by the address's
# ?error=; anything else in the address shows nothing, so a crafted link cannot put words in an alert.
ERROR_KEYS = frozenset(
    {
        "pass-limit",
        "pass-quantity",
        "too-many-passes",
        "no-locker",
        "locker-offline",
        "not-sent",
        "pass-used",
        "pass-withdrawn",
        "pass-expired",
        "failed",
    }
)


def _error_key(request: Request) -> str | None:
    key = request.query_params.get("error")
    return key if key in ERROR_KEYS else None


def _pass_error(session: Session, pass_id: str, exc: CloudError) -> str:
    """The message key for a refused "open now" or withdrawal: what the pass is now, else the kind of refusal."""
    issued = session.get(IssuedPass, pass_id)
    if issued is not None:
        session.refresh(issued)
        status = passes.PassPublic.of(issued, utcnow()).status
        if status != "unused":
            return f"pass-{status}"
    if isinstance(exc, UnavailableError):
        return "not-sent"
    if isinstance(exc, ConflictError):
        return "locker-offline"
    if isinstance(exc, NotFoundError):
        return "no-locker"
    return "failed"


@dataclass(frozen=True, slots=True)
class Place:
    """A station in a list of where to go: how far, and a link to directions there."""

    station: StationStatus
    km: float | None
    here: bool
    directions: str
    geo: str


def _places(
    settings: CloudSettings, ranked: list[tuple[StationStatus, float]] | list[tuple[StationStatus, None]], here: str
) -> list[Place]:
    return [
        Place(
            s,
            km,
            s.id == here,
            settings.directions_url.replace("{lat}", f"{s.lat:.6f}").replace("{lon}", f"{s.lon:.6f}"),
            f"geo:{s.lat:.6f},{s.lon:.6f}",
        )
        for s, km in ranked
    ]


def _online_locker(session: Session, station_id: str) -> Locker | None:
    return session.exec(
        select(Locker).where(Locker.station_id == station_id, col(Locker.online)).order_by(col(Locker.id))
    ).first()


@router.get("/s/{station_id}")
def station(request: Request, station_id: StationPath, session: SessionDep, ctx: CtxDep) -> Response:
    st = _station(session, station_id)
    status = stations_with_counts(session, [st])[0]
    caller = _resident(request, session)
    context: dict[str, Any] = {"station": status, "town_id": st.town_id, "caller": caller, "step": "phone"}
    context["error"] = None
    if caller is not None:
        now = utcnow()
        # Helmets on passes not yet used count too, as when the pass is asked for; those passes are listed.
        mine = allowance(session, caller.subject, limit=ctx.settings.max_helmets_per_resident, now=now)
        held = [(p, passes.pass_progress(session, p, now)) for p in open_passes(session, caller.subject, now=now)]
        town = [s for s in queries.all_stations(session) if s.town_id == st.town_id]
        loans = _mine(session, caller, ctx.settings)
        context |= {
            "loans": loans,
            "places": station_names(session, {loan.borrow_locker_id for loan, _due in loans}, language(request)),
            "allowance": mine,
            "open_passes": held,
            "online_locker": _online_locker(session, st.id),
            "choices": list(range(1, min(mine.room, ctx.settings.max_quantity, status.helmets_available) + 1)),
            "with_helmets": _places(
                ctx.settings, queries.nearest_with_helmets(town, st.lat, st.lon, excluding=st.id), st.id
            ),
            "returns": _places(ctx.settings, queries.nearest_with_room(town, st.lat, st.lon), st.id),
            "error": _error_key(request),
        }
    return page(request, "resident/station.html", context)


@router.post("/s/{station_id}/code")
def send_code(
    request: Request,
    station_id: StationPath,
    session: SessionDep,
    ctx: CtxDep,
    phone: Annotated[str, Form(max_length=40)],
) -> Response:
    """Text a code through the sign-in API, then ask for it."""
    st = _station(session, station_id)
    status = stations_with_counts(session, [st])[0]
    try:
        number = phones.normalised(session, ctx.settings, phone, town_id=st.town_id)
    except PhoneRefusedError as exc:
        context = {
            "station": status, "caller": None, "step": "phone", "phone": phone, "error": "bad_phone", "refusal": exc,
        }  # fmt: skip
        return page(request, "resident/station.html", context, status_code=422)
    try:
        auth.send_code(session, ctx, phone=number, address=client_address(request), lang=language(request))
    except TooManyRequestsError as exc:
        return _wait(request, status, number, "too_many_codes", exc)
    return page(request, "resident/station.html", {"station": status, "caller": None, "step": "code", "phone": number})


def _wait(request: Request, status: StationStatus, phone: str, error: str, exc: TooManyRequestsError) -> Response:
    """The code form again, saying how many minutes to wait: 429 with Retry-After."""
    minutes = math.ceil(exc.retry_after / 60)
    context = {"station": status, "caller": None, "step": "code", "phone": phone, "error": error, "minutes": minutes}
    answer = page(request, "resident/station.html", context, status_code=429)
    answer.headers["Retry-After"] = str(exc.retry_after)
    return answer


@router.post("/s/{station_id}/verify")
def verify(
    request: Request,
    station_id: StationPath,
    session: SessionDep,
    ctx: CtxDep,
    phone: Annotated[str, Form(max_length=40)],
    code: Annotated[str, Form(max_length=12)],
) -> Response:
    st = _station(session, station_id)
    try:
        number = phones.normalised(session, ctx.settings, phone, town_id=st.town_id)
        token = auth.verify_code(session, ctx, phone=number, code=code.strip())
    except TooManyRequestsError as exc:
        return _wait(request, stations_with_counts(session, [st])[0], phone, "too_many_tries", exc)
    except (InvalidError, NotSignedInError):
        status = stations_with_counts(session, [st])[0]
        context = {"station": status, "caller": None, "step": "code", "phone": phone, "error": "bad_code"}
        return page(request, "resident/station.html", context, status_code=401)
    response = see_other(f"/s/{st.id}")
    set_token_cookie(request, response, RESIDENT_COOKIE, token.token, max_age=ctx.settings.token_ttl_hours * 3600)
    return response


def _signed_in(request: Request, session: Session) -> Caller:
    caller = _resident(request, session)
    if caller is None:
        raise PageError(401, "Sign in again: your session has ended.")
    return caller


@router.post("/s/{station_id}/pass", dependencies=[ResidentCsrf])
def new_pass(
    request: Request,
    station_id: StationPath,
    session: SessionDep,
    ctx: CtxDep,
    quantity: Annotated[int, Form(ge=1, le=16)],
) -> Response:
    """A borrow pass, within the same limits as the API's."""
    st = _station(session, station_id)
    caller = _signed_in(request, session)
    try:
        passes.check_pass_rate(ctx, caller=caller, address=client_address(request), now=time.monotonic())
        issued = passes.issue_resident_pass(session, ctx, caller=caller, quantity=quantity, station_id=st.id)
    except TooManyRequestsError:
        return see_other(f"/s/{st.id}", error="too-many-passes")
    except InvalidError:
        return see_other(f"/s/{st.id}", error="pass-quantity")
    except ConflictError:
        return see_other(f"/s/{st.id}", error="pass-limit")
    except CloudError:
        return see_other(f"/s/{st.id}", error="failed")
    return see_other(f"/s/{st.id}/pass/{issued.pass_id}")


def _own_pass(session: Session, caller: Caller, pass_id: str) -> IssuedPass:
    issued = session.get(IssuedPass, pass_id)
    if issued is None or issued.holder_id != caller.subject or issued.text is None:
        raise PageError(404, "No such pass.")
    return issued


def _pass_view(request: Request, session: Session, st: Station, caller: Caller, issued: IssuedPass) -> dict[str, Any]:
    """What the pass page shows, and what its poll answers: the pass's phase, its slots and what remains."""
    now = utcnow()
    expires = aware(issued.expires_at)
    cmd_id = request.query_params.get("cmd")
    command = session.get(LockerCommand, cmd_id) if cmd_id else None
    if command is not None and (command.requested_by != caller.subject or command.pass_id != issued.id):
        command = None
    state = passes.pass_progress(session, issued, now)
    online = _online_locker(session, st.id)
    body: dict[str, Any] = {
        "phase": state.phase.value,
        "final": state.final,
        "quantity": state.quantity,
        "slots": state.slots,
        "taken": state.taken,
        "remaining": state.remaining,
        "command": command.status if command is not None else None,
        "locker_online": online is not None,
        # Rounded up, so the page's countdown ends no earlier than the pass does.
        "seconds_left": max(0, math.ceil((expires - now).total_seconds())) if state.ready else 0,
    }
    # What the page shows changes exactly when this does: pass.js reloads the page then.
    body["key"] = "|".join(str(body[k]) for k in ("phase", "slots", "taken", "remaining", "command", "locker_online"))
    return {
        "state": state,
        "expires": expires,
        "seconds_left": body["seconds_left"],
        "online_locker": online,
        "command": command,
        "key": body["key"],
        "body": body,
    }


PassPath = Annotated[str, Path(max_length=36)]


@router.get("/s/{station_id}/pass/{pass_id}")
def show_pass(request: Request, station_id: StationPath, pass_id: PassPath, session: SessionDep) -> Response:
    st = _station(session, station_id)
    caller = _signed_in(request, session)
    issued = _own_pass(session, caller, pass_id)
    context = {
        **_pass_view(request, session, st, caller, issued),
        "station": stations_with_counts(session, [st])[0],
        "town_id": st.town_id,
        "caller": caller,
        "issued": issued,
        "qr": qr_svg(issued.text or "", "Borrow pass"),
        "error": _error_key(request),
    }
    return page(request, "resident/pass.html", context)


@router.get("/s/{station_id}/pass/{pass_id}/state")
def pass_state(request: Request, station_id: StationPath, pass_id: PassPath, session: SessionDep) -> JSONResponse:
    """What pass.js polls: the pass page's phase and numbers; the page reloads when ``key`` changes."""
    st = _station(session, station_id)
    caller = _signed_in(request, session)
    issued = _own_pass(session, caller, pass_id)
    body = _pass_view(request, session, st, caller, issued)["body"]
    return JSONResponse(body, headers={"Cache-Control": "private, no-store"})


@router.post("/s/{station_id}/pass/{pass_id}/open", dependencies=[ResidentCsrf])
def open_now(
    request: Request,
    station_id: StationPath,
    pass_id: Annotated[str, Path(max_length=36)],
    session: SessionDep,
    ctx: CtxDep,
    locker_id: Annotated[str, Form(max_length=16)],
) -> Response:
    """ "Open now": the locker opens as if the pass were shown to its camera."""
    st = _station(session, station_id)
    caller = _signed_in(request, session)
    _own_pass(session, caller, pass_id)  # another's pass is "no such pass", and says nothing of its state
    here = f"/s/{st.id}/pass/{pass_id}"
    locker = session.get(Locker, locker_id) if LOCKER_ID_RE.fullmatch(locker_id) else None
    if locker is None or locker.station_id != st.id:
        return see_other(here, error="no-locker")
    try:
        cmd = commands.open_pass_now(session, ctx, caller=caller, pass_id=pass_id, locker_id=locker_id)
    except CloudError as exc:
        return see_other(here, error=_pass_error(session, pass_id, exc))
    return see_other(here, cmd=cmd.id)


@router.post("/s/{station_id}/pass/{pass_id}/withdraw", dependencies=[ResidentCsrf])
def withdraw(
    request: Request,
    station_id: StationPath,
    pass_id: Annotated[str, Path(max_length=36)],
    session: SessionDep,
    ctx: CtxDep,
    back: Annotated[str | None, Form(max_length=8)] = None,
) -> Response:
    """The resident no longer needs the pass: no locker opens for it, and its helmets are free to ask for again.

    From the station page's list (``back=station``) the answer is that page again, else the pass page."""
    st = _station(session, station_id)
    caller = _signed_in(request, session)
    _own_pass(session, caller, pass_id)
    target = f"/s/{st.id}" if back == "station" else f"/s/{st.id}/pass/{pass_id}"
    try:
        passes.withdraw_pass(session, ctx, caller=caller, pass_id=pass_id)
    except CloudError as exc:
        return see_other(target, error=_pass_error(session, pass_id, exc))
    return see_other(target)


@router.post("/s/{station_id}/signout", dependencies=[ResidentCsrf])
def sign_out(request: Request, station_id: StationPath, session: SessionDep) -> Response:
    response = see_other(f"/s/{station_id}")
    forget(session, response, RESIDENT_COOKIE, request.cookies.get(RESIDENT_COOKIE))
    return response


NEAR_RE = re.compile(r"^(-?\d{1,2}(?:\.\d{1,7})?),(-?\d{1,3}(?:\.\d{1,7})?)$")


def _point(near: str | None) -> tuple[float, float] | None:
    """``lat,lon`` from the phone's location, or None when absent or not a place on Earth."""
    match = NEAR_RE.fullmatch(near or "")
    if match is None:
        return None
    lat, lon = float(match.group(1)), float(match.group(2))
    return (lat, lon) if -90 <= lat <= 90 and -180 <= lon <= 180 else None


@router.get("/h/{helmet_id}")
def helmet(
    request: Request,
    helmet_id: Annotated[str, Path(max_length=40)],
    session: SessionDep,
    ctx: CtxDep,
    near: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """What a phone shows for a helmet's sticker: whose it is, how to return it, the nearest stations.

    Nearest to the phone when it shared its location (``?near=lat,lon``), else to the helmet's last station.
    """
    if not HELMET_ID_RE.fullmatch(helmet_id):
        raise PageError(404, "This is not one of our helmet stickers.")
    row = queries.helmet(session, helmet_id)
    stations = queries.all_stations(session)
    point = _point(near)
    if near is not None and point is None:
        raise PageError(422, "That location is not a place on Earth.")
    if point is None and row is not None and row.locker_id:
        locker = session.get(Locker, row.locker_id)
        last = session.get(Station, locker.station_id) if locker else None
        point = (last.lat, last.lon) if last else None
    nearest = (
        queries.nearest_with_room(stations, *point)
        if point
        else [(s, None) for s in stations if s.free_slots > 0 and s.lockers_online > 0][:3]
    )
    context = {
        "helmet_id": helmet_id,
        "helmet": row,
        "returns": _places(ctx.settings, nearest, ""),
        "located": _point(near) is not None,
    }
    return page(request, "resident/helmet.html", context)
