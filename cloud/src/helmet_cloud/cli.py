"""``helmet-cloud``: serve the API, run ingest workers, manage users and the schema."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

app = typer.Typer(help="helmet-station cloud service", no_args_is_help=True)


def _logging() -> None:
    """Text at a terminal; ``HELMET_LOG_FORMAT=json`` for one JSON object per line (containers, journald).

    Reads the settings first, so a bad setting stops the command with a clear message before anything starts.
    """
    from pydantic import ValidationError

    from helmet_cloud.settings import CloudSettings
    from helmet_protocol.logs import setup_logging

    try:
        settings = CloudSettings()
    except ValidationError as exc:
        typer.echo(f"error: bad setting (HELMET_* environment): {exc}", err=True)
        raise typer.Exit(2) from None
    setup_logging(fmt=settings.log_format)


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Serve the API (with an ingest worker unless HELMET_INGEST_IN_PROCESS=false)."""
    import uvicorn

    from helmet_cloud.app import create_app

    _logging()
    uvicorn.run(create_app(), host=host, port=port, log_config=None, access_log=False)


@app.command()
def ingest(
    worker_id: Annotated[str | None, typer.Option()] = None,
    metrics_port: Annotated[int | None, typer.Option(help="serve this worker's /metrics on this port")] = None,
) -> None:
    """Run one ingest worker on the shared subscription (start several to scale out)."""
    from helmet_cloud.alerter import build_alerting
    from helmet_cloud.db import make_engine, migrate
    from helmet_cloud.ingest import IngestWorker
    from helmet_cloud.metrics import Metrics
    from helmet_cloud.settings import CloudSettings

    _logging()
    settings = CloudSettings()
    if settings.auto_migrate:
        migrate(settings.database_url)
    metrics = Metrics()
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, registry=metrics.registry)
    engine = make_engine(settings.database_url)
    # Event-driven alerts here; the time-based sweep runs in the API process.
    alerter, webhooks = build_alerting(settings, engine)
    worker = IngestWorker(settings, engine, worker_id=worker_id, metrics=metrics.ingest, on_commit=alerter.after_ingest)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if webhooks is not None:
        webhooks.start()
    worker.start()
    stop.wait()
    worker.stop()
    if webhooks is not None:
        webhooks.stop()


@app.command("migrate")
def migrate_cmd() -> None:
    """Apply Alembic migrations up to the newest revision."""
    from helmet_cloud.db import migrate
    from helmet_cloud.settings import CloudSettings

    _logging()
    migrate(CloudSettings().database_url)


@app.command("add-user")
def add_user(
    username: str,
    role: Annotated[str, typer.Option(help="technician, staff or admin")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Create (or reset) a staff, technician or admin account."""
    from sqlmodel import Session

    from helmet_cloud import audit
    from helmet_cloud.db import make_engine, migrate
    from helmet_cloud.models import User
    from helmet_cloud.security import hash_password
    from helmet_cloud.settings import CloudSettings

    if role not in ("technician", "staff", "admin"):
        typer.echo("error: role must be technician, staff or admin", err=True)
        raise typer.Exit(2)
    settings = CloudSettings()
    migrate(settings.database_url)
    with Session(make_engine(settings.database_url)) as session:
        user = session.get(User, username) or User(username=username, password_hash="", role=role)
        action = "user.reset" if user.password_hash else "user.create"
        user.password_hash, user.role = hash_password(password), role
        session.add(user)
        audit.record(
            session,
            actor=_cli_actor(),
            action=action,
            subject_type="user",
            subject_id=username,
            detail={"role": role},
        )
        session.commit()
    typer.echo(f"user {username} ({role}) saved")


def _cli_actor() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


def _audit_cli(action: str, subject_type: str, subject_id: str) -> None:
    """An audit entry for a command-line action that changes no table (keys live in a file).

    The action is done by then; if the database cannot take the entry, say so and exit non-zero.
    """
    from sqlalchemy.exc import SQLAlchemyError
    from sqlmodel import Session

    from helmet_cloud import audit
    from helmet_cloud.db import make_engine, migrate
    from helmet_cloud.settings import CloudSettings

    settings = CloudSettings()
    try:
        migrate(settings.database_url)
        engine = make_engine(settings.database_url)
        try:
            with Session(engine) as session:
                audit.record(
                    session, actor=_cli_actor(), action=action, subject_type=subject_type, subject_id=subject_id
                )
                session.commit()
        finally:
            engine.dispose()
    except SQLAlchemyError as exc:
        typer.echo(f"warning: {action} {subject_id} is done but not in the audit log: {exc}", err=True)
        raise typer.Exit(1) from None


keys_app = typer.Typer(help="pass signing keys", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("list")
def keys_list() -> None:
    """The key ids lockers trust, and which one signs new passes."""
    from helmet_cloud.passkeys import load_or_create
    from helmet_cloud.settings import CloudSettings

    keys = load_or_create(CloudSettings().keys_path)
    for kid in sorted(keys.private):
        typer.echo(f"{kid}{'  (active: signs new passes)' if kid == keys.active else ''}")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Make a new signing key active; old keys stay trusted. Restart the API to publish it to lockers."""
    from helmet_cloud.passkeys import rotate
    from helmet_cloud.settings import CloudSettings

    kid = rotate(CloudSettings().keys_path)
    typer.echo(f"new active key: {kid}")
    _audit_cli("keys.rotate", "key", kid)


@keys_app.command("retire")
def keys_retire(kid: str) -> None:
    """Stop trusting an old key (once the passes it signed have expired)."""
    from helmet_cloud.passkeys import retire
    from helmet_cloud.settings import CloudSettings

    try:
        retire(CloudSettings().keys_path, kid)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"retired {kid}")
    _audit_cli("keys.retire", "key", kid)
