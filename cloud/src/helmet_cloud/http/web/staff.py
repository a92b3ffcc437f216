"""Staff pages (desktop): sign-in, dashboard, stations, alerts, loans, rebalancing, CSV exports, live stream."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from markupsafe import Markup
from sqlmodel import col, select

from helmet_cloud.domain.phones import MAX_TYPED
from helmet_cloud.domain.roles import Caller
from helmet_cloud.domain.states import LoanStatus
from helmet_cloud.errors import CloudError, NotSignedInError, TooManyRequestsError
from helmet_cloud.http.csv_export import events_csv, loans_csv
from helmet_cloud.http.deps import CtxDep, SessionDep, client_address
from helmet_cloud.http.errors import status_of
from helmet_cloud.http.web import alert_view, charts, i18n, levels, live, queries
from helmet_cloud.http.web.pages import PageError, flow_charts, local_path, see_other
from helmet_cloud.http.web.render import language, render
from helmet_cloud.http.web.session import (
    STAFF_COOKIE,
    StaffCsrf,
    StaffPage,
    TechPage,
    flash_for,
    forget,
    set_token_cookie,
)
from helmet_cloud.models import Alert, Loan, Station, Town
from helmet_cloud.services import alert_actions, auth, phones, rebalance_round, town_maps
from helmet_cloud.services.alerts import local_station_names, station_names
from helmet_cloud.services.event_queries import EventFilters
from helmet_cloud.services.stations import StationStatus, stations_with_counts
from helmet_cloud.timeutil import utcnow

router = APIRouter(prefix="/staff", include_in_schema=False)


def page(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """A staff-side page; signed-in pages carry the watermark they show, for the live stream."""
    context.setdefault("watermark", getattr(request.state, "watermark", ""))
    return render(request, template, context, status_code=status_code, cookie=STAFF_COOKIE)


@router.get("/login")
def login_form(request: Request, next_: Annotated[str | None, Query(alias="next", max_length=500)] = None) -> Response:
    return page(request, "staff/login.html", {"next": local_path(next_, "/staff/"), "error": None})


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    ctx: CtxDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next_: Annotated[str, Form(alias="next", max_length=500)] = "/staff/",
) -> Response:
    """Sign in with the API's password check and back-off; the API token goes into an HttpOnly cookie."""
    target = local_path(next_, "/staff/")
    try:
        token = auth.login(session, ctx, username=username, password=password, address=client_address(request))
    except NotSignedInError:
        context = {"next": target, "error": "Wrong username or password.", "username": username}
        return page(request, "staff/login.html", context, status_code=401)
    except TooManyRequestsError as exc:
        waiting: dict[str, Any] = {"next": target, "wait": exc.retry_after, "username": username}
        answer = page(request, "staff/login.html", waiting, status_code=429)
        answer.headers["Retry-After"] = str(exc.retry_after)
        return answer
    if token.role == "technician" and target.startswith("/staff/"):
        target = "/tech/"
    response = RedirectResponse(target, status_code=303)
    set_token_cookie(request, response, STAFF_COOKIE, token.token, max_age=12 * 3600)
    return response


@router.post("/logout", dependencies=[StaffCsrf])
def logout(request: Request, session: SessionDep) -> Response:
    response = see_other("/staff/login")
    forget(session, response, STAFF_COOKIE, request.cookies.get(STAFF_COOKIE))
    return response


@dataclass(frozen=True, slots=True)
class TownMap:
    """One town's map: the offline grid, and what static/map.js needs to draw streets over it."""

    town_id: str
    town_name: str
    svg: Markup
    tiles: str | None
    attribution: str
    points: str  # JSON: the stations as map.js places them


def _maps(session: SessionDep, stations: list[StationStatus], request: Request) -> dict[str, Any]:
    """The map of each town with stations, its fill-level legend and the tile servers the page loads from."""
    lang = language(request)
    title = i18n.gettext(lang, "Map of stations")
    tiles = town_maps.town_tiles(session, request.app.state.ctx.settings, [s.town_id for s in stations])
    names = dict(session.exec(select(Town.id, Town.name)).all())
    by_town: dict[str, list[StationStatus]] = defaultdict(list)
    for s in stations:
        by_town[s.town_id].append(s)
    maps = []
    for town_id, mine in sorted(by_town.items()):
        points = [
            charts.MapPoint(
                s.id,
                s.name,
                s.lat,
                s.lon,
                s.fill_level,
                i18n.gettext(lang, levels.word(s.fill_level)),
                f"{s.helmets_available}/{queries.capacity(s)}",
                f"/staff/stations/{s.id}",
            )
            for s in mine
        ]
        svg = Markup(charts.town_map(points, title=title))  # noqa: S704 (escaped inside)
        data = json.dumps([{**asdict(p), "cls": p.level_class} for p in points], ensure_ascii=False)
        t = tiles[town_id]
        maps.append(TownMap(town_id, names.get(town_id, town_id), svg, t.url, t.attribution, data))
    return {
        "maps": maps,
        "map_title": title,
        "map_tiles": any(m.tiles for m in maps),
        "tile_urls": tuple(m.tiles for m in maps if m.tiles),
        "fill_meanings": levels.MEANINGS,
        "level_word": levels.word,
    }


@router.get("/")
def dashboard(request: Request, session: SessionDep, ctx: CtxDep, caller: StaffPage) -> Response:
    lang = language(request)
    stations = queries.all_stations(session)
    alerts = session.exec(
        select(Alert).where(col(Alert.resolved_at).is_(None)).order_by(col(Alert.opened_at).desc()).limit(8)
    ).all()
    context = {
        "caller": caller,
        "overview": queries.overview(session),
        "stations": stations,
        "alerts": alerts,
        "alert_stations": local_station_names(session, alert_view.station_ids(alerts), lang),
        "charts": flow_charts(session, ctx, utcnow(), lang),
        "fill": queries.fill,
        "capacity": queries.capacity,
        "station_levels": {s.id: s.fill_level for s in stations},
        **_maps(session, stations, request),
    }
    return page(request, "staff/dashboard.html", context)


@router.get("/stations")
def stations_page(request: Request, session: SessionDep, caller: StaffPage) -> Response:
    stations = queries.all_stations(session)
    context = {
        "caller": caller,
        "stations": stations,
        "fill": queries.fill,
        "capacity": queries.capacity,
        **_maps(session, stations, request),
    }
    return page(request, "staff/stations.html", context)


@router.get("/stations/{station_id}")
def station_page(
    request: Request,
    station_id: Annotated[str, Path(max_length=40)],
    session: SessionDep,
    ctx: CtxDep,
    caller: StaffPage,
) -> Response:
    station = session.get(Station, station_id)
    if station is None:
        raise PageError(404, "No station {id}.", id=station_id)
    lockers = queries.lockers_of(session, station_id)
    ids = [lk.id for lk in lockers]
    context = {
        "caller": caller,
        "station": stations_with_counts(session, [station])[0],
        "lockers": lockers,
        "health": queries.slot_health(session, ids),
        "events": queries.recent_events(session, ids),
        "commands": queries.recent_commands(session, ids),
        "charts": flow_charts(session, ctx, utcnow(), language(request), ids),
        "back": f"/staff/stations/{station_id}",
    }
    return page(request, "staff/station.html", context)


AlertFilter = Literal["unresolved", "open", "acknowledged", "resolved", "all"]


@router.get("/alerts")
def alerts_page(
    request: Request, session: SessionDep, caller: StaffPage, status: Annotated[AlertFilter, Query()] = "unresolved"
) -> Response:
    q = select(Alert)
    if status == "unresolved":
        q = q.where(col(Alert.resolved_at).is_(None))
    elif status != "all":
        q = q.where(Alert.status == status)
    rows = session.exec(q.order_by(col(Alert.opened_at).desc(), col(Alert.id).desc()).limit(200)).all()
    context = {
        "caller": caller,
        "alerts": rows,
        "alert_stations": local_station_names(session, alert_view.station_ids(rows), language(request)),
        "status": status,
        # A station's alert shows the station's fill level now, in the words and colour of the table and the map.
        "station_levels": {s.id: s.fill_level for s in queries.all_stations(session)},
        "level_word": levels.word,
    }
    return page(request, "staff/alerts.html", context)


@router.post("/alerts/{alert_id}/{action}", dependencies=[StaffCsrf])
def alert_action(
    request: Request,
    alert_id: Annotated[int, Path(ge=1)],
    action: Literal["acknowledge", "resolve"],
    session: SessionDep,
    ctx: CtxDep,
    caller: StaffPage,
    back: Annotated[str, Form(max_length=500)] = "/staff/alerts",
) -> Response:
    """Acknowledge or resolve, as the API does (recording who did it)."""
    target = local_path(back, "/staff/alerts")
    try:
        if action == "acknowledge":
            alert_actions.acknowledge(session, caller=caller, alert_id=alert_id)
        else:
            alert_actions.resolve(session, ctx, caller=caller, alert_id=alert_id)
    except CloudError as exc:
        return see_other(target, error=flash_for(request.cookies.get(STAFF_COOKIE), exc))
    return see_other(target)


LoanFilter = Literal["open", "overdue", "lost", "returned", "all"]


@router.get("/loans")
def loans_page(
    request: Request,
    session: SessionDep,
    ctx: CtxDep,
    caller: StaffPage,
    status: Annotated[LoanFilter, Query()] = "open",
    station: Annotated[str, Query(max_length=32)] = "",
    resident: Annotated[str, Query(max_length=MAX_TYPED)] = "",
) -> Response:
    """Loans, filtered; ``resident`` is an ``R-...`` id or a phone number in any local or international form."""
    q = select(Loan)
    if status in ("open", "returned"):
        q = q.where(Loan.status == status)
    elif status == "overdue":
        q = q.where(Loan.status == LoanStatus.OPEN, col(Loan.overdue_at).is_not(None), col(Loan.lost_at).is_(None))
    elif status == "lost":
        q = q.where(Loan.status == LoanStatus.OPEN, col(Loan.lost_at).is_not(None))
    if station:
        q = q.where(col(Loan.borrow_locker_id).in_([lk.id for lk in queries.lockers_of(session, station)]))
    who = phones.find_resident(session, ctx.settings, resident) if resident.strip() else None
    if resident.strip():
        q = q.where(Loan.resident_id == (who.id if who is not None else resident.strip()))
    rows = session.exec(q.order_by(col(Loan.borrowed_at).desc()).limit(300)).all()
    stations = session.exec(select(Station).order_by(col(Station.id))).all()
    context = {
        "caller": caller,
        "loans": rows,
        "places": station_names(
            session, {x for ln in rows for x in (ln.borrow_locker_id, ln.return_locker_id) if x}, language(request)
        ),
        "status": status,
        "station": station,
        "resident": resident,
        "who": who,
        "stations": stations,
        "export_status": status if status in ("open", "returned") else "",
    }
    return page(request, "staff/loans.html", context)


def _rebalance(
    request: Request,
    session: SessionDep,
    ctx: CtxDep,
    caller: Caller,
    error: CloudError | None = None,
    status_code: int = 200,
) -> Response:
    current = rebalance_round.current_round(session, utcnow())
    context = {
        "caller": caller,
        "round": current,
        "todo": [m for m in current.moves if m.done is None],
        "done": [m for m in current.moves if m.done is not None],
        "loads": current.loads,
        "hours": rebalance_round.DEMAND_HOURS,
        "error": error,
    }
    return page(request, "staff/rebalance.html", context, status_code=status_code)


@router.get("/rebalance")
def rebalance_page(request: Request, session: SessionDep, ctx: CtxDep, caller: TechPage) -> Response:
    """Today's round: the moves to do, each with a Done form, then the ones done (who, when, how many)."""
    return _rebalance(request, session, ctx, caller)


@router.post("/rebalance/moves", dependencies=[StaffCsrf])
def rebalance_move_done(
    request: Request,
    session: SessionDep,
    ctx: CtxDep,
    caller: TechPage,
    source: Annotated[str, Form(max_length=32)],
    target: Annotated[str, Form(max_length=32)],
    moved: Annotated[int, Form(ge=0, le=rebalance_round.MAX_MOVED)],
    advised: Annotated[int | None, Form(ge=0, le=rebalance_round.MAX_MOVED)] = None,
) -> Response:
    """Tick a move done, as the API does: who, when and how many helmets (audited); again corrects the number."""
    try:
        rebalance_round.record_move(
            session, caller=caller, source=source, target=target, moved=moved, advised=advised, now=utcnow()
        )
    except CloudError as exc:
        session.rollback()
        return _rebalance(request, session, ctx, caller, exc, status_of(exc))
    return see_other(f"/staff/rebalance#done-{quote(source)}-{quote(target)}")


@router.get("/export/loans.csv")
def export_loans(
    ctx: CtxDep, caller: StaffPage, status: Annotated[Literal["open", "returned", ""], Query()] = ""
) -> StreamingResponse:
    """The API's loans export, for a signed-in browser (the API itself wants a bearer token)."""
    return loans_csv(ctx.engine, status=status or None)


@router.get("/export/events.csv")
def export_events(ctx: CtxDep, caller: StaffPage, days: Annotated[int, Query(ge=1, le=3660)] = 30) -> StreamingResponse:
    return events_csv(ctx.engine, EventFilters(since=utcnow() - timedelta(days=days)))


@router.get("/stream", response_class=EventSourceResponse)
async def stream(
    request: Request, ctx: CtxDep, _caller: TechPage, since: Annotated[str | None, Query(max_length=32)] = None
) -> AsyncIterator[ServerSentEvent]:
    """``change`` whenever the watermark moves (:mod:`helmet_cloud.http.web.live`); pages then fetch themselves.

    ``since`` is the watermark the page was rendered with, so a change between
    rendering and connecting is not missed.
    """
    last = request.headers.get("last-event-id") or since
    async for changed, value in live.changes(ctx.watermark, last, request.is_disconnected):
        if changed:
            yield ServerSentEvent(event="change", data=value, id=value)
        else:
            yield ServerSentEvent(comment="open", retry=1000)
