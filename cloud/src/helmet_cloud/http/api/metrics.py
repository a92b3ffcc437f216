"""``/metrics`` for Prometheus, in the text exposition format of ``prometheus_client``."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from helmet_cloud.http.deps import CtxDep

router = APIRouter(tags=["ops"])


@router.get("/metrics", include_in_schema=False)
def metrics(ctx: CtxDep) -> Response:
    """This app's registry: ingest, HTTP latency, lockers online (read from the database now)."""
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
