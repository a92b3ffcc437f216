"""Prometheus metrics: one registry per app, ingest counters, request latency, lockers online.

Each app gets its own :class:`~prometheus_client.CollectorRegistry` rather
than the global one, so several apps in one process (the tests) never clash.
Names and labels are listed in docs/api.md ("Metrics").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from helmet_cloud.models import Locker
from helmet_cloud.timeutil import aware, utcnow
from helmet_protocol.events import EventKind

log = logging.getLogger(__name__)

# Events can arrive hours late from a locker that was offline: the lag buckets reach a day.
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 24 * 3600)
UNKNOWN_KIND = "unknown"
# Any other method (clients may send any token) is counted as "other", so labels stay few.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class IngestMetrics:
    """What ingest counts; :class:`helmet_cloud.ingest.worker.Ingestor` reports each committed batch."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "helmet_ingest_events",
            "Events stored (duplicates excluded), by kind; kinds the protocol does not know count as 'unknown'.",
            ["kind"],
            registry=registry,
        )
        for kind in [*EventKind, UNKNOWN_KIND]:  # every series exists from the start, so rate() sees the first one
            self.events.labels(str(kind))
        self.duplicates = Counter(
            "helmet_ingest_duplicate_events",
            "Events received again and ignored (same event_id, or same locker and seq).",
            registry=registry,
        )
        self.dead_letters = Counter(
            "helmet_ingest_dead_letters", "Messages refused and kept as dead letters.", registry=registry
        )
        self.lag = Histogram(
            "helmet_ingest_lag_seconds",
            "Time from an event's ts (the locker's clock) to its commit in the cloud.",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "helmet_ingest_batch_duration_seconds", "Time to apply and commit one ingest batch.", registry=registry
        )

    def observe_batch(
        self, *, stored: Iterable[tuple[str, bool, datetime]], duplicates: int, dead_letters: int, started: float
    ) -> None:
        """``stored``: (kind, known, ts) of each new event; ``started``: ``time.perf_counter()`` at batch start."""
        now = utcnow()
        for kind, known, ts in stored:
            self.events.labels(kind if known else UNKNOWN_KIND).inc()
            self.lag.observe(max(0.0, (now - aware(ts)).total_seconds()))
        if duplicates:
            self.duplicates.inc(duplicates)
        if dead_letters:
            self.dead_letters.inc(dead_letters)
        self.batch_seconds.observe(time.perf_counter() - started)


class _LockerCollector(Collector):
    """Lockers registered and online, read from the database at scrape time."""

    def __init__(self) -> None:
        self.engine: Engine | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.engine is None:
            return
        try:
            with Session(self.engine) as s:
                rows: Sequence[Any] = s.exec(select(Locker.online, func.count()).group_by(col(Locker.online))).all()
        except Exception as exc:  # a scrape reports what it can; /ready tells about the database
            log.warning("metrics: lockers: %s", exc)
            return
        by_online = {bool(online): int(n) for online, n in rows}
        online = by_online.get(True, 0)
        yield GaugeMetricFamily("helmet_lockers_online", "Lockers whose last status said online.", value=online)
        yield GaugeMetricFamily("helmet_lockers_registered", "Lockers registered.", value=sum(by_online.values()))


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.ingest = IngestMetrics(self.registry)
        self.http_latency = Histogram(
            "helmet_http_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ["method", "route"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "helmet_http_requests",
            "HTTP requests by route template, method and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._lockers = _LockerCollector()
        self.registry.register(self._lockers)

    def watch(self, engine: Engine | None) -> None:
        """Read the locker gauges from this engine at scrape time (None: stop)."""
        self._lockers.engine = engine


class RequestMetricsMiddleware:
    """Times every HTTP request, labelled by the matched route's template (never the raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # The router records the matched route in the scope; unmatched paths share one label.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.http_latency.labels(method, route).observe(time.perf_counter() - started)
            self.metrics.http_requests.labels(method, route, str(status)).inc()


def serve_worker_http(port: int, metrics: Metrics, mqtt_health: Callable[[], dict[str, object]]) -> None:
    """A standalone ingest worker's HTTP port: ``/metrics`` (Prometheus) and ``/health`` (JSON, like the API's)."""
    import json
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import make_wsgi_app
    from prometheus_client.exposition import ThreadingWSGIServer

    exposition = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/health":
            body = json.dumps({"status": "ok", "ingest_mqtt": mqtt_health()}).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return exposition(environ, start_response)  # type: ignore[no-any-return]

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = make_server("", port, app, server_class=ThreadingWSGIServer, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, name="worker-http", daemon=True).start()
