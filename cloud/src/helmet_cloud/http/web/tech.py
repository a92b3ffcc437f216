"""Technician pages: lockers (register, enrol, slot health, commands), helmets (register, retire, labels), passes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlmodel import Session, col, select

from helmet_cloud.http.api import commands as commands_api
from helmet_cloud.http.api import helmets as helmets_api
from helmet_cloud.http.api import passes as passes_api
from helmet_cloud.http.api import provisioning as provisioning_api
from helmet_cloud.http.api import stations as stations_api
from helmet_cloud.http.api.deps import Caller, CtxDep, SessionDep
from helmet_cloud.http.web import queries
from helmet_cloud.http.web.pages import PageError, local_path, qr_svg, see_other
from helmet_cloud.http.web.render import render
from helmet_cloud.http.web.session import STAFF_COOKIE, StaffCsrf, TechPage
from helmet_cloud.models import Helmet, Loan, Locker, Station
from helmet_cloud.services.helmets import HelmetQuery, listing

router = APIRouter(prefix="/tech", include_in_schema=False)
HelmetFilter = Literal["", "in_slot", "on_loan", "removed", "unknown", "retired"]


def page(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> Response:
    context.setdefault("watermark", getattr(request.state, "watermark", ""))
    return render(request, template, context, status_code=status_code, cookie=STAFF_COOKIE)


def _home(
    request: Request,
    session: Session,
    caller: Caller,
    *,
    helmet_filter: str = "",
    form: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    if helmet_filter == "retired":
        query = HelmetQuery(retired=True, limit=500)
    else:
        query = HelmetQuery(status=helmet_filter or None, retired=False if helmet_filter else None, limit=500)
    context = {
        "caller": caller,
        "stations": session.exec(select(Station).order_by(col(Station.id))).all(),
        "lockers": session.exec(select(Locker).order_by(col(Locker.id))).all(),
        "helmets": listing(session, query),
        "helmet_filter": helmet_filter,
        "form": form or {},
        "error": error,
    }
    return page(request, "tech/home.html", context, status_code=status_code)


@router.get("/")
def home(
    request: Request, session: SessionDep, caller: TechPage, helmets: Annotated[HelmetFilter, Query()] = ""
) -> Response:
    return _home(request, session, caller, helmet_filter=helmets, error=request.query_params.get("error"))


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
        error = "; ".join(str(e["msg"]) for e in exc.errors())
        return _home(request, session, caller, form=form, error=error, status_code=422)
    except HTTPException as exc:
        return _home(request, session, caller, form=form, error=str(exc.detail), status_code=422)
    return page(request, "tech/registered.html", {"caller": caller, "locker": created})


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


@router.post("/lockers/{locker_id}/enrolment", dependencies=[StaffCsrf])
def enrolment_code(
    request: Request,
    locker_id: Annotated[str, Path(max_length=16)],
    session: SessionDep,
    ctx: CtxDep,
    caller: TechPage,
) -> Response:
    """A one-time enrolment code through the provisioning API, as a QR to print or hold to the Pi's camera."""
    if session.get(Locker, locker_id) is None:
        raise PageError(404, "No locker {id}.", id=locker_id)
    issued = provisioning_api.create_enrolment_code(locker_id, session, ctx, caller, None)
    context = {"caller": caller, "issued": issued, "qr": qr_svg(issued.qr_text, f"Enrolment code for {locker_id}")}
    return page(request, "tech/enrolment.html", context)


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


@router.post("/helmets", dependencies=[StaffCsrf])
def register_helmets(
    request: Request,
    session: SessionDep,
    caller: TechPage,
    count: Annotated[int | None, Form(ge=1, le=1000)] = None,
    prefix: Annotated[str, Form(max_length=13)] = "H-",
    ids: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    """Register helmets through the registry API: a list of ids, or ``count`` numbered ones after ``prefix``."""
    listed = [i.strip().upper() for i in ids.replace(",", "\n").splitlines() if i.strip()]
    form = {"count": count, "prefix": prefix, "ids": ids}
    try:
        body = helmets_api.HelmetRegistration(
            ids=listed or None, count=None if listed else count, prefix=prefix.strip().upper() or "H-"
        )
        done = helmets_api.register_helmets(body, session, caller)
    except ValidationError as exc:
        error = "; ".join(str(e["msg"]) for e in exc.errors())
        return _home(request, session, caller, form=form, error=error, status_code=422)
    except HTTPException as exc:
        return _home(request, session, caller, form=form, error=str(exc.detail), status_code=422)
    context = {"caller": caller, "done": done, "labels": f"/tech/labels.pdf?first={done.ids[0]}&last={done.ids[-1]}"}
    return page(request, "tech/helmets_registered.html", context)


@router.get("/helmets/{helmet_id}")
def helmet_page(
    request: Request, helmet_id: Annotated[str, Path(max_length=16)], session: SessionDep, caller: TechPage
) -> Response:
    """One helmet for inspection: where it is, its registry dates, its loans and its recent events."""
    helmet = session.get(Helmet, helmet_id)
    if helmet is None:
        raise PageError(404, "No helmet {id}.", id=helmet_id)
    context = {
        "caller": caller,
        "helmet": helmet,
        "loans": session.exec(
            select(Loan).where(Loan.helmet_id == helmet_id).order_by(col(Loan.borrowed_at).desc()).limit(20)
        ).all(),
        "events": queries.helmet_events(session, helmet_id),
        "error": request.query_params.get("error"),
    }
    return page(request, "tech/helmet.html", context)


@router.post("/helmets/retire", dependencies=[StaffCsrf])
def retire_helmet(
    request: Request,
    session: SessionDep,
    caller: TechPage,
    helmet_id: Annotated[str, Form(max_length=16)],
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Retire through the registry API (which raises an alert if the helmet still sits in a slot)."""
    body = helmets_api.RetireRequest(reason=reason.strip() or None)
    try:
        helmets_api.retire_helmet(helmet_id.strip().upper(), session, request, caller, body)
    except HTTPException as exc:
        return see_other("/tech/", error=str(exc.detail))
    return see_other("/tech/?helmets=retired")


@router.get("/labels.pdf")
def labels(
    session: SessionDep,
    ctx: CtxDep,
    caller: TechPage,
    ids: Annotated[str | None, Query(max_length=20_000)] = None,
    first: Annotated[str | None, Query(max_length=16)] = None,
    last: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """The registry's A4 label sheet, for a signed-in browser."""
    try:
        return helmets_api.helmet_labels(session, ctx, caller, ids, first, last)
    except HTTPException as exc:
        raise PageError(exc.status_code, "No label sheet: {reason}", reason=str(exc.detail)) from None
