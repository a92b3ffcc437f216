"""The FastAPI application; resources live in the lifespan, never at import time."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DataError
from sqlmodel import Session, select

from helmet_cloud.adapters.database import make_engine, migrate
from helmet_cloud.adapters.dynsec import DynsecAdmin
from helmet_cloud.adapters.metrics import Metrics, RequestMetricsMiddleware
from helmet_cloud.adapters.mqtt import CloudMqtt
from helmet_cloud.adapters.passkeys import load_or_create
from helmet_cloud.adapters.sms import make_sender
from helmet_cloud.context import AppContext, Limits
from helmet_cloud.http.api import alerts as alerts_api
from helmet_cloud.http.api import audit as audit_api
from helmet_cloud.http.api import (
    auth,
    commands,
    events,
    export,
    gbfs,
    helmets,
    loans,
    passes,
    provisioning,
    residents,
    stations,
    towns,
)
from helmet_cloud.http.api import metrics as metrics_api
from helmet_cloud.http.api import rebalance as rebalance_api
from helmet_cloud.http.api.openapi import document_sentence_errors
from helmet_cloud.http.body_limit import LimitBody
from helmet_cloud.http.errors import install as install_error_answers
from helmet_cloud.http.guard import RefuseNul
from helmet_cloud.http.web import install as install_pages
from helmet_cloud.ingest.worker import IngestWorker
from helmet_cloud.models import Locker
from helmet_cloud.services.alerter import AlertSweeper, build_alerting
from helmet_cloud.services.config_publisher import ConfigPublisher
from helmet_cloud.services.feedcache import FeedCache
from helmet_cloud.services.watermark import Watermark
from helmet_cloud.settings import CloudSettings
from helmet_protocol.errors import ProtocolError

log = logging.getLogger(__name__)


def create_app(settings: CloudSettings | None = None) -> FastAPI:
    settings = settings or CloudSettings()
    metrics = Metrics()
    feed_cache = FeedCache()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            migrate(settings.database_url, phone_region=settings.default_phone_region)
        engine = make_engine(settings.database_url)
        keys = load_or_create(settings.keys_path)
        configs: list[ConfigPublisher] = []  # set once the context exists; the broker may connect before

        def on_connect() -> None:
            # Retained configs carry the current pass keys: republish them on every (re)connect.
            if configs:
                configs[0].force()

        publisher = CloudMqtt(settings, f"api-{uuid.uuid4().hex[:8]}", on_connect=on_connect)
        alerter, webhooks = build_alerting(settings, engine)
        ctx = AppContext(
            settings=settings,
            engine=engine,
            keys=keys,
            mqtt=publisher,
            sms=make_sender(settings.sms_backend),
            limits=Limits.from_settings(settings),
            metrics=metrics,
            watermark=Watermark(engine),
            feed_cache=feed_cache,
            alerter=alerter,
        )
        ctx.after_commit.subscribe(feed_cache.changed)
        ctx.after_commit.subscribe(alerter.after_commit)
        config_publisher = ConfigPublisher(ctx, check_every=settings.refused_passes_check_seconds)
        ctx.after_commit.subscribe(config_publisher.changed)
        configs.append(config_publisher)
        config_publisher.start()
        app.state.ctx = ctx
        if settings.broker_admin_username and settings.broker_admin_password:
            ctx.broker_admin = DynsecAdmin(
                settings.mqtt_host,
                settings.mqtt_port,
                settings.broker_admin_username,
                settings.broker_admin_password.get_secret_value(),
            )
            with Session(engine) as session:  # users made before client ids were bound get bound now
                locker_ids = session.exec(select(Locker.id)).all()
            ctx.broker_admin.ensure_roles(locker_ids)
        publisher.start()
        metrics.watch(engine)
        if webhooks is not None:
            webhooks.start()
        worker = (
            IngestWorker(settings, engine, metrics=metrics.ingest, after_commit=ctx.after_commit)
            if settings.ingest_in_process
            else None
        )
        ctx.ingest_worker = worker
        if worker is not None:
            worker.start()
        sweeper = AlertSweeper(alerter, settings.alert_sweep_seconds)
        sweeper.start()
        try:
            yield
        finally:
            sweeper.stop()
            config_publisher.stop()
            if worker is not None:
                worker.stop()
            if webhooks is not None:
                webhooks.stop()
            publisher.stop()
            if ctx.broker_admin is not None:
                ctx.broker_admin.close()
            metrics.watch(None)
            engine.dispose()

    # FastAPI's own /docs and /redoc load Swagger UI and ReDoc from a CDN: the pages serve a vendored /docs instead.
    app = FastAPI(title="helmet-station cloud", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(RefuseNul)
    app.add_middleware(LimitBody, max_bytes=settings.max_body_bytes)  # 413 past the limit, chunked or not
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    for module in (auth, towns, stations, passes, loans, commands, events, export, gbfs, metrics_api, provisioning):
        app.include_router(module.router)
    app.include_router(alerts_api.router)
    app.include_router(helmets.router)
    app.include_router(rebalance_api.router)
    install_error_answers(app)
    document_sentence_errors(app)
    install_pages(app, api_docs=settings.api_docs)  # the HTML pages (docs/web.md), outside the OpenAPI schema
    app.include_router(audit_api.router)
    app.include_router(residents.router)

    @app.exception_handler(ProtocolError)
    async def _protocol_error(_req: Request, exc: ProtocolError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(DataError)
    async def _data_error(req: Request, exc: DataError) -> JSONResponse:
        # The database refused a value that passed validation (PostgreSQL: a NUL in text, a number too big).
        log.warning("%s %s: the database refused a value: %s", req.method, req.url.path, str(exc.orig).strip())
        return JSONResponse(
            {"detail": "a value in the request cannot be stored (a NUL character, or a number too large)"},
            status_code=422,
        )

    @app.exception_handler(OverflowError)
    async def _overflow(req: Request, exc: OverflowError) -> JSONResponse:
        # SQLite's driver refuses an integer beyond 64 bits before the query runs (PostgreSQL: a DataError above).
        log.warning("%s %s: a number too large: %s", req.method, req.url.path, exc)
        return JSONResponse({"detail": "a number in the request is too large"}, status_code=422)

    @app.get("/health", tags=["ops"])
    def health(request: Request) -> dict[str, object]:
        """The process is alive (always 200), and how its broker connections are: up, or since when and why not."""
        ctx: AppContext = request.app.state.ctx
        report: dict[str, object] = {"status": "ok", "mqtt": ctx.mqtt.reach.report(ctx.mqtt.connected.is_set())}
        worker = ctx.ingest_worker
        if worker is not None:
            report["ingest_mqtt"] = worker.mqtt.reach.report(worker.mqtt.connected.is_set())
        return report

    @app.get("/ready", tags=["ops"])
    def ready(request: Request) -> JSONResponse:
        """The database answers and the broker connection is up."""
        ctx: AppContext = request.app.state.ctx
        checks = {"database": False, "mqtt": ctx.mqtt.connected.is_set()}
        try:
            with Session(ctx.engine) as s:
                s.connection().execute(text("SELECT 1"))
            checks["database"] = True
        except Exception as exc:  # readiness reports, it does not raise
            log.warning("readiness: database: %s", exc)
        ok = all(checks.values())
        return JSONResponse({"ready": ok, **checks}, status_code=200 if ok else 503)

    return app
