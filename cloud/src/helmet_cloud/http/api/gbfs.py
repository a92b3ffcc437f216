"""The public GBFS v3.0 feed: no sign-in, cached until ingest changes what it shows."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlmodel import Session

from helmet_cloud.context import AppContext
from helmet_cloud.http.deps import CtxDep
from helmet_cloud.services import gbfs
from helmet_cloud.timeutil import utcnow

router = APIRouter(prefix="/gbfs", tags=["gbfs"])
MEDIA_TYPE = "application/json"


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def _serve(request: Request, ctx: AppContext, name: str, data: Callable[[Session], dict[str, Any]]) -> Response:
    ttl = ctx.settings.feed_ttl_seconds

    def build() -> bytes:
        with Session(ctx.engine) as session:
            return _json(gbfs.document(data(session), ttl=ttl, now=utcnow()))

    body = ctx.feed_cache.get(name, ttl, build)
    return Response(body, media_type=MEDIA_TYPE, headers={"Cache-Control": f"public, max-age={ttl}"})


@router.get("", include_in_schema=False)
@router.get("/", include_in_schema=False)
def discovery_redirect(request: Request) -> RedirectResponse:
    """``/gbfs`` and ``/gbfs/`` lead to the discovery file, the feed's one well-known address."""
    return RedirectResponse(str(request.url_for("gbfs")), status_code=308)


@router.get("/gbfs.json", name="gbfs")
def manifest(request: Request, ctx: CtxDep) -> Response:
    """The discovery file: absolute URLs of every feed file, built from this request's base URL."""
    feeds = [{"name": name, "url": str(request.url_for(f"gbfs_{name}"))} for name in gbfs.FEEDS]
    doc = gbfs.document({"feeds": feeds}, ttl=ctx.settings.feed_ttl_seconds, now=utcnow())
    return Response(_json(doc), media_type=MEDIA_TYPE)


@router.get("/system_information.json", name="gbfs_system_information")
def system_information(request: Request, ctx: CtxDep) -> Response:
    return _serve(request, ctx, "system_information", lambda s: gbfs.system_information(s, ctx.settings))


@router.get("/station_information.json", name="gbfs_station_information")
def station_information(request: Request, ctx: CtxDep) -> Response:
    """Stations: id, localized name, position, address, capacity (the slots of all its lockers)."""
    return _serve(request, ctx, "station_information", lambda s: gbfs.station_information(s, ctx.settings))


@router.get("/station_status.json", name="gbfs_station_status")
def gbfs_station_status(request: Request, ctx: CtxDep) -> Response:
    """Helmets available (as vehicles), free slots (as docks), and whether the station lends and takes back."""
    return _serve(request, ctx, "station_status", lambda s: gbfs.station_status_feed(s, now=utcnow()))


@router.get("/system_alerts.json", name="gbfs_system_alerts")
def system_alerts(request: Request, ctx: CtxDep) -> Response:
    return _serve(request, ctx, "system_alerts", lambda _s: gbfs.system_alerts())
