"""Resident pages (phone): ``/s/{station}`` from the station's poster, ``/h/{helmet}`` from a helmet's sticker."""

from __future__ import annotations

import math
import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response
from sqlmodel import Session, col, func, select

from helmet_cloud.domain.phones import phone_number
from helmet_cloud.domain.roles import Caller
from helmet_cloud.domain.states import LoanStatus
from helmet_cloud.errors import CloudError, InvalidError, NotSignedInError, TooManyRequestsError
from helmet_cloud.http.deps import CtxDep, SessionDep, client_address
from helmet_cloud.http.web import queries
from helmet_cloud.http.web.pages import PageError, qr_svg, see_other
from helmet_cloud.http.web.render import render
from helmet_cloud.http.web.session import RESIDENT_COOKIE, ResidentCsrf, caller_from_cookie, forget, set_token_cookie
from helmet_cloud.models import IssuedPass, Loan, Locker, LockerCommand, Station
from helmet_cloud.services import auth, commands, passes
from helmet_cloud.services.residents import allowance
from helmet_cloud.services.stations import StationStatus, stations_with_counts
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


def _mine(session: Session, caller: Caller) -> list[Loan]:
    q = select(Loan).where(Loan.resident_id == caller.subject, Loan.status == LoanStatus.OPEN)
    return list(session.exec(q.order_by(col(Loan.borrowed_at).desc())).all())


@router.get("/s/{station_id}")
def station(request: Request, station_id: StationPath, session: SessionDep, ctx: CtxDep) -> Response:
    st = _station(session, station_id)
    status = stations_with_counts(session, [st])[0]
    caller = _resident(request, session)
    context: dict[str, Any] = {"station": status, "caller": caller, "step": "phone", "error": None}
    if caller is not None:
        loans = _mine(session, caller)
        # Helmets on passes not yet used count too, as when the pass is asked for.
        room = allowance(session, caller.subject, limit=ctx.settings.max_helmets_per_resident, now=utcnow()).room
        context |= {
            "loans": loans,
            "choices": list(range(1, min(room, ctx.settings.max_quantity, status.helmets_available) + 1)),
            "returns": queries.nearest_with_room(queries.all_stations(session), st.lat, st.lon),
            "error": request.query_params.get("error"),
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
        number = phone_number(phone)
    except InvalidError:
        context = {"station": status, "caller": None, "step": "phone", "phone": phone, "error": "bad_phone"}
        return page(request, "resident/station.html", context, status_code=422)
    try:
        auth.send_code(session, ctx, phone=number, address=client_address(request))
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
        token = auth.verify_code(session, ctx, phone=phone_number(phone), code=code.strip())
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
    except CloudError as exc:
        return see_other(f"/s/{st.id}", error=str(exc))
    return see_other(f"/s/{st.id}/pass/{issued.pass_id}")


def _own_pass(session: Session, caller: Caller, pass_id: str) -> IssuedPass:
    issued = session.get(IssuedPass, pass_id)
    if issued is None or issued.holder_id != caller.subject or issued.text is None:
        raise PageError(404, "No such pass.")
    return issued


@router.get("/s/{station_id}/pass/{pass_id}")
def show_pass(
    request: Request,
    station_id: StationPath,
    pass_id: Annotated[str, Path(max_length=36)],
    session: SessionDep,
) -> Response:
    st = _station(session, station_id)
    caller = _signed_in(request, session)
    issued = _own_pass(session, caller, pass_id)
    expires = aware(issued.expires_at)
    online = session.exec(
        select(Locker).where(Locker.station_id == st.id, col(Locker.online)).order_by(col(Locker.id))
    ).first()
    cmd_id = request.query_params.get("cmd")
    command = session.get(LockerCommand, cmd_id) if cmd_id else None
    if command is not None and command.requested_by != caller.subject:
        command = None
    used = session.exec(select(func.count()).select_from(Loan).where(Loan.pass_id == issued.id)).one()
    context = {
        "status": passes.PassPublic.of(issued, utcnow()).status,
        "station": stations_with_counts(session, [st])[0],
        "caller": caller,
        "issued": issued,
        "qr": qr_svg(issued.text or "", "Borrow pass"),
        "expires": expires,
        "seconds_left": max(0, int((expires - utcnow()).total_seconds())),
        "online_locker": online,
        "command": command,
        "used": used,
        "error": request.query_params.get("error"),
    }
    return page(request, "resident/pass.html", context)


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
    here = f"/s/{st.id}/pass/{pass_id}"
    if not LOCKER_ID_RE.fullmatch(locker_id):
        return see_other(here, error="no such locker")
    try:
        cmd = commands.open_pass_now(session, ctx, caller=caller, pass_id=pass_id, locker_id=locker_id)
    except CloudError as exc:
        return see_other(here, error=str(exc))
    return see_other(here, cmd=cmd.id)


@router.post("/s/{station_id}/pass/{pass_id}/withdraw", dependencies=[ResidentCsrf])
def withdraw(
    request: Request,
    station_id: StationPath,
    pass_id: Annotated[str, Path(max_length=36)],
    session: SessionDep,
    ctx: CtxDep,
) -> Response:
    """The resident no longer needs the pass: no locker opens for it, and its helmets are free to ask for again."""
    st = _station(session, station_id)
    caller = _signed_in(request, session)
    _own_pass(session, caller, pass_id)
    try:
        passes.withdraw_pass(session, ctx, caller=caller, pass_id=pass_id)
    except CloudError as exc:
        return see_other(f"/s/{st.id}/pass/{pass_id}", error=str(exc))
    return see_other(f"/s/{st.id}/pass/{pass_id}")


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
    context = {"helmet_id": helmet_id, "helmet": row, "near": nearest, "located": _point(near) is not None}
    return page(request, "resident/helmet.html", context)
