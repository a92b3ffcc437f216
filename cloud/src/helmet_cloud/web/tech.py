"""Technician pages: register a locker, slot health, commands and their results, helmet stock, maintenance pass."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlmodel import col, select

from helmet_cloud.api import commands as commands_api
from helmet_cloud.api import passes as passes_api
from helmet_cloud.api import stations as stations_api
from helmet_cloud.api.deps import CtxDep, SessionDep
from helmet_cloud.models import Locker, Station
from helmet_cloud.web import queries
from helmet_cloud.web.pages import PageError, local_path, qr_svg, see_other
from helmet_cloud.web.render import render
from helmet_cloud.web.session import STAFF_COOKIE, StaffCsrf, TechPage

router = APIRouter(prefix="/tech", include_in_schema=False)
HelmetFilter = Literal["", "in_slot", "on_loan", "removed", "unknown"]


def page(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> Response:
    context.setdefault("watermark", getattr(request.state, "watermark", ""))
    return render(request, template, context, status_code=status_code, cookie=STAFF_COOKIE)


@router.get("/")
def home(
    request: Request, session: SessionDep, caller: TechPage, helmets: Annotated[HelmetFilter, Query()] = ""
) -> Response:
    context = {
        "caller": caller,
        "stations": session.exec(select(Station).order_by(col(Station.id))).all(),
        "lockers": session.exec(select(Locker).order_by(col(Locker.id))).all(),
        "helmets": queries.helmets(session, helmets or None),
        "helmet_filter": helmets,
        "form": {},
        "error": request.query_params.get("error"),
    }
    return page(request, "tech/home.html", context)


@router.post("/lockers", dependencies=[StaffCsrf])
def register_locker(
    request: Request,
    session: SessionDep,
    ctx: CtxDep,
    caller: TechPage,
    locker_id: Annotated[str, Form(max_length=16)],
    station_id: Annotated[str, Form(max_length=32)],
    slot_count: Annotated[int, Form(ge=1, le=64)],
    pin_profile: Annotated[str, Form(max_length=64)] = "pi-gpio-6",
) -> Response:
    """Register through the API's own function; its broker password is shown once, on this page."""
    form = {"locker_id": locker_id, "station_id": station_id, "slot_count": slot_count, "pin_profile": pin_profile}
    try:
        body = stations_api.LockerCreate(
            id=locker_id.strip().upper(), station_id=station_id, slot_count=slot_count, pin_profile=pin_profile
        )
        created = stations_api.register_locker(body, session, ctx, caller)
    except ValidationError as exc:
        return _home_with_error(request, session, caller, form, "; ".join(e["msg"] for e in exc.errors()))
    except HTTPException as exc:
        return _home_with_error(request, session, caller, form, str(exc.detail))
    return page(request, "tech/registered.html", {"caller": caller, "locker": created})


def _home_with_error(
    request: Request, session: SessionDep, caller: object, form: dict[str, object], error: str
) -> Response:
    context = {
        "caller": caller,
        "stations": session.exec(select(Station).order_by(col(Station.id))).all(),
        "lockers": session.exec(select(Locker).order_by(col(Locker.id))).all(),
        "helmets": queries.helmets(session, None),
        "helmet_filter": "",
        "form": form,
        "error": error,
    }
    return page(request, "tech/home.html", context, status_code=422)


@router.get("/lockers/{locker_id}")
def locker_page(
    request: Request, locker_id: Annotated[str, Path(max_length=16)], session: SessionDep, caller: TechPage
) -> Response:
    locker = session.get(Locker, locker_id)
    if locker is None:
        raise PageError(404, "No locker {id}.", id=locker_id)
    context = {
        "caller": caller,
        "locker": locker,
        "station": session.get(Station, locker.station_id),
        "health": queries.slot_health(session, [locker.id]),
        "commands": queries.recent_commands(session, [locker.id]),
        "events": queries.recent_events(session, [locker.id], limit=15),
        "back": f"/tech/lockers/{locker.id}",
        "error": request.query_params.get("error"),
    }
    return page(request, "tech/locker.html", context)


@router.post("/lockers/{locker_id}/commands", dependencies=[StaffCsrf])
def command(
    session: SessionDep,
    ctx: CtxDep,
    caller: TechPage,
    locker_id: Annotated[str, Path(max_length=16)],
    op: Annotated[Literal["unlock", "disable_slot", "enable_slot", "selftest"], Form()],
    slot: Annotated[int | None, Form(ge=1, le=64)] = None,
    back: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Send a command through the commands API; its result appears in the page's command list."""
    target = local_path(back, f"/tech/lockers/{locker_id}")
    try:
        commands_api.command_locker(locker_id, commands_api.CommandRequest(op=op, slot=slot), session, ctx, caller)
    except HTTPException as exc:
        return see_other(target, error=str(exc.detail))
    return see_other(target)


@router.post("/pass", dependencies=[StaffCsrf])
def maintenance_pass(request: Request, session: SessionDep, ctx: CtxDep, caller: TechPage) -> Response:
    """A maintenance pass to show at a locker's camera: it opens maintenance mode for stocking and inspection."""
    try:
        passes_api.rate_limit(request, ctx, caller)
    except HTTPException as exc:
        return see_other("/tech/", error=str(exc.detail))
    issued = passes_api.technician_pass(session, ctx, caller, None)
    context = {"caller": caller, "issued": issued, "qr": qr_svg(issued.text, "Maintenance pass")}
    return page(request, "tech/pass.html", context)
