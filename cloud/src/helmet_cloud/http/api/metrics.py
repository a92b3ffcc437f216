"""``/metrics`` for Prometheus, in the text exposition format of ``prometheus_client``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from helmet_cloud.adapters.metrics import Metrics

router = APIRouter(tags=["ops"])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """This app's registry: ingest, HTTP latency, lockers online (read from the database now)."""
    app_metrics: Metrics = request.app.state.metrics
    return Response(generate_latest(app_metrics.registry), media_type=CONTENT_TYPE_LATEST)
