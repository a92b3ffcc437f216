"""Technician pages: lockers (register, enrol, slot health, commands), helmets (register, retire, labels), passes."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response
from sqlmodel import Session, col, select

from helmet_cloud.domain.roles import Caller
from helmet_cloud.errors import CloudError, InvalidError
from helmet_cloud.http.deps import CtxDep, SessionDep, client_address
from helmet_cloud.http.errors import status_of
from helmet_cloud.http.web import queries
from helmet_cloud.http.web.pages import PageError, local_path, qr_svg, see_other
from helmet_cloud.http.web.render import language, render
from helmet_cloud.http.web.session import STAFF_COOKIE, StaffCsrf, TechPage, flash_for
from helmet_cloud.models import Helmet, Loan, Locker, Station
from helmet_cloud.services import commands, enrolment, helmet_actions, passes, stations
from helmet_cloud.services.alerts import station_names
from helmet_cloud.services.helmets import HelmetQuery, listing
from helmet_protocol.messages import MAX_SLOTS, CmdOp

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
    error: CloudError | None = None,
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
    return _home(
        request,
        session,
        caller,
        helmet_filter=helmets,
    )


@router.post("/lockers", dependencies=[StaffCsrf])
def register_locker(
    request: Request,
    session: SessionDep,
    ctx: CtxDep,
    caller: TechPage,
    locker_id: Annotated[str, Form(max_length=16)],
    station_id: Annotated[str, Form(max_length=32)],
    slot_count: Annotated[int, Form(ge=1, le=MAX_SLOTS)],
    pin_profile: Annotated[str, Form(max_length=64)] = "pi-gpio-6",
) -> Response:
    """Register the locker as the API does; its broker password is shown once, on this page."""
    form = {"locker_id": locker_id, "station_id": station_id, "slot_count": slot_count, "pin_profile": pin_profile}
    try:
        locker, password = stations.register_locker(
            session,
            ctx,
            caller=caller,
            locker_id=locker_id.strip().upper(),
            station_id=station_id,
            slot_count=slot_count,
            pin_profile=pin_profile,
        )
    except CloudError as exc:
        return _home(request, session, caller, form=form, error=exc, status_code=422)
    return page(request, "tech/registered.html", {"caller": caller, "locker": locker, "mqtt_password": password})


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
    }
    return page(request, "tech/locker.html", context)


@router.get("/lockers/{locker_id}/open")
def confirm_open(
    request: Request,
    locker_id: Annotated[str, Path(max_length=16)],
    session: SessionDep,
    caller: TechPage,
    slot: Annotated[int, Query(ge=1, le=MAX_SLOTS)],
    back: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    """Remote open's confirm step: which slot of which station, and a reason, required, for the audit log."""
    locker = session.get(Locker, locker_id)
    if locker is None:
        raise PageError(404, "No locker {id}.", id=locker_id)
    if slot > locker.slot_count:
        raise PageError(404, "Locker {id} has no slot {slot}.", id=locker_id, slot=str(slot))
    context = {
        "caller": caller,
        "locker": locker,
        "station": session.get(Station, locker.station_id),
        "slot": slot,
        "back": local_path(back, f"/tech/lockers/{locker_id}"),
    }
    return page(request, "tech/open_slot.html", context)


@router.post("/lockers/{locker_id}/commands", dependencies=[StaffCsrf])
def command(
    request: Request,
    session: SessionDep,
    ctx: CtxDep,
    caller: TechPage,
    locker_id: Annotated[str, Path(max_length=16)],
    op: Annotated[CmdOp, Form()],
    slot: Annotated[int | None, Form(ge=1, le=MAX_SLOTS)] = None,
    back: Annotated[str, Form(max_length=500)] = "",
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Send a command, as the API does; its result appears in the page's command list.

    A remote open without a reason goes to its confirm step first (:func:`confirm_open`).
    """
    target = local_path(back, f"/tech/lockers/{locker_id}")
    if op == "unlock" and slot is not None and not reason.strip():
        return see_other(f"/tech/lockers/{locker_id}/open?{urlencode({'slot': slot, 'back': target})}")
    try:
        commands.command_locker(
            session, ctx, caller=caller, locker_id=locker_id, op=op, slot=slot, reason=reason.strip() or None
        )
    except CloudError as exc:
        return see_other(target, error=flash_for(request.cookies.get(STAFF_COOKIE), exc))
    return see_other(target)


@router.post("/lockers/{locker_id}/enrolment", dependencies=[StaffCsrf])
def enrolment_code(
    request: Request,
    locker_id: Annotated[str, Path(max_length=16)],
    session: SessionDep,
    ctx: CtxDep,
    caller: TechPage,
) -> Response:
    """A one-time enrolment code, as the API makes it, as a QR to print or hold to the Pi's camera."""
    if session.get(Locker, locker_id) is None:
        raise PageError(404, "No locker {id}.", id=locker_id)
    issued = enrolment.create_code(session, ctx, caller=caller, locker_id=locker_id, minutes=None)
    context = {"caller": caller, "issued": issued, "qr": qr_svg(issued.qr_text, f"Enrolment code for {locker_id}")}
    return page(request, "tech/enrolment.html", context)


@router.post("/pass", dependencies=[StaffCsrf])
def maintenance_pass(request: Request, session: SessionDep, ctx: CtxDep, caller: TechPage) -> Response:
    """A maintenance pass to show at a locker's camera: it opens maintenance mode for stocking and inspection."""
    try:
        passes.check_pass_rate(ctx, caller=caller, address=client_address(request), now=time.monotonic())
    except CloudError as exc:
        return see_other("/tech/", error=flash_for(request.cookies.get(STAFF_COOKIE), exc))
    issued = passes.issue_technician_pass(session, ctx, caller=caller)
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
    """Register helmets, as the API does: a list of ids, or ``count`` numbered ones after ``prefix``."""
    listed = [i.strip().upper() for i in ids.replace(",", "\n").splitlines() if i.strip()]
    form = {"count": count, "prefix": prefix, "ids": ids}
    if not listed and count is None:
        return _home(request, session, caller, form=form, error=InvalidError("give ids, or a count"), status_code=422)
    try:
        done = helmet_actions.register_helmets(
            session, caller=caller, ids=listed, count=count, prefix=prefix.strip().upper() or "H-"
        )
    except CloudError as exc:
        return _home(request, session, caller, form=form, error=exc, status_code=422)
    context = {"caller": caller, "done": done, "labels": f"/tech/labels.pdf?first={done[0]}&last={done[-1]}"}
    return page(request, "tech/helmets_registered.html", context)


@router.get("/helmets/{helmet_id}")
def helmet_page(
    request: Request, helmet_id: Annotated[str, Path(max_length=16)], session: SessionDep, caller: TechPage
) -> Response:
    """One helmet for inspection: where it is, its registry dates, its loans and its recent events."""
    helmet = session.get(Helmet, helmet_id)
    if helmet is None:
        raise PageError(404, "No helmet {id}.", id=helmet_id)
    loans = session.exec(
        select(Loan).where(Loan.helmet_id == helmet_id).order_by(col(Loan.borrowed_at).desc()).limit(20)
    ).all()
    context = {
        "caller": caller,
        "helmet": helmet,
        "loans": loans,
        "places": station_names(
            session, {x for ln in loans for x in (ln.borrow_locker_id, ln.return_locker_id) if x}, language(request)
        ),
        "events": queries.helmet_events(session, helmet_id),
    }
    return page(request, "tech/helmet.html", context)


@router.post("/helmets/retire", dependencies=[StaffCsrf])
def retire_helmet(
    request: Request,
    session: SessionDep,
    ctx: CtxDep,
    caller: TechPage,
    helmet_id: Annotated[str, Form(max_length=16)],
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Retire, as the API does (raising an alert if the helmet still sits in a slot)."""
    try:
        helmet_actions.retire_helmet(
            session, ctx, caller=caller, helmet_id=helmet_id.strip().upper(), reason=reason.strip() or None
        )
    except CloudError as exc:
        return see_other("/tech/", error=flash_for(request.cookies.get(STAFF_COOKIE), exc))
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
        pdf, name = helmet_actions.label_pdf(session, ctx, ids=ids, first=first, last=last)
    except CloudError as exc:
        code = status_of(exc)
        raise PageError(code, "No label sheet: {reason}", reason=str(exc)) from None
    return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}"'})
