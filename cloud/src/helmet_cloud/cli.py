"""``helmet-cloud``: serve the API, run ingest workers, manage users and the schema."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from helmet_cloud.settings import CloudSettings

app = typer.Typer(help="helmet-station cloud service", no_args_is_help=True)


def _start(*, database: bool = True) -> CloudSettings:
    """Settings and logging, and (``database``) one connection to the database, before anything starts.

    Text logs at a terminal; ``HELMET_LOG_FORMAT=json`` for one JSON object per line (containers, journald).
    A bad setting or a database that cannot be reached stops the command with one line and exit code 2.
    """
    from pydantic import ValidationError

    from helmet_cloud.adapters.database import DatabaseUnavailableError, check_database
    from helmet_cloud.settings import CloudSettings
    from helmet_protocol.logs import setup_logging

    try:
        settings = CloudSettings()
    except ValidationError as exc:
        typer.echo(f"error: bad setting (HELMET_* environment): {exc}", err=True)
        raise typer.Exit(2) from None
    setup_logging(fmt=settings.log_format)
    if database:
        try:
            check_database(settings.database_url)
        except DatabaseUnavailableError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    return settings


@contextmanager
def _database_errors(what: str) -> Iterator[None]:
    """A database failure after the first connection (a migration refused, a lost connection): one line, exit 1."""
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from helmet_cloud.adapters.database import first_line

    try:
        yield
    except (SQLAlchemyError, CommandError) as exc:
        typer.echo(f"error: {what} failed on the database: {first_line(exc)}", err=True)
        raise typer.Exit(1) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    proxy_headers: Annotated[
        bool | None,
        typer.Option(
            "--proxy-headers/--no-proxy-headers",
            help="believe X-Forwarded-For/-Proto from HELMET_FORWARDED_ALLOW_IPS (default: HELMET_PROXY_HEADERS, off)",
            show_default=False,
        ),
    ] = None,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(help="the reverse proxy's addresses or networks (default: HELMET_FORWARDED_ALLOW_IPS)"),
    ] = None,
) -> None:
    """Serve the API (with an ingest worker unless HELMET_INGEST_IN_PROCESS=false).

    Behind a reverse proxy, --proxy-headers makes the client address and scheme the ones the proxy forwards
    (X-Forwarded-For, X-Forwarded-Proto), believed only from the proxy's own address (docs/deployment.md).
    Without it they are ignored, even from 127.0.0.1 (uvicorn alone would believe them from there).
    """
    import logging

    import uvicorn
    from pydantic import ValidationError

    from helmet_cloud.app import create_app
    from helmet_cloud.settings import CloudSettings

    settings = _start()
    changes: dict[str, object] = {}
    if proxy_headers is not None:
        changes["proxy_headers"] = proxy_headers
    if forwarded_allow_ips is not None:
        changes["forwarded_allow_ips"] = forwarded_allow_ips
    if changes:
        try:  # the environment's settings with the options on top, checked as the environment's are
            settings = CloudSettings(**changes)  # type: ignore[arg-type]
        except ValidationError as exc:
            typer.echo(f"error: bad option: {exc}", err=True)
            raise typer.Exit(2) from None
    if settings.proxy_headers:
        logging.getLogger(__name__).info(
            "client address and scheme from X-Forwarded-For/-Proto, believed from %s", settings.forwarded_allow_ips
        )
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=settings.proxy_headers,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


@app.command()
def ingest(
    worker_id: Annotated[
        str | None,
        typer.Option(help="its MQTT client id, unique among running workers (default: ingest-<random>)"),
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="serve this worker's /metrics and /health on this port")
    ] = None,
) -> None:
    """Run one ingest worker on the shared subscription (start several to scale out)."""
    from helmet_cloud.adapters.database import make_engine, migrate
    from helmet_cloud.adapters.metrics import Metrics, serve_worker_http
    from helmet_cloud.ingest.worker import IngestWorker
    from helmet_cloud.services.alerter import build_alerting

    settings = _start()
    if settings.auto_migrate:
        with _database_errors("migrating the schema"):
            migrate(settings.database_url, phone_region=settings.default_phone_region)
    metrics = Metrics()
    engine = make_engine(settings.database_url)
    # Event-driven alerts here; the time-based sweep runs in the API process.
    alerter, webhooks = build_alerting(settings, engine)
    worker = IngestWorker(
        settings, engine, worker_id=worker_id, metrics=metrics.ingest, after_commit=alerter.after_commit
    )
    if metrics_port is not None:
        serve_worker_http(metrics_port, metrics, lambda: worker.mqtt.reach.report(worker.mqtt.connected.is_set()))
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
    from helmet_cloud.adapters.database import migrate

    settings = _start()
    with _database_errors("migrating the schema"):
        migrate(settings.database_url, phone_region=settings.default_phone_region)


@app.command("add-user")
def add_user(
    username: Annotated[str, typer.Argument(help="the account name they sign in with")],
    role: Annotated[str, typer.Option(metavar="ROLE", help="technician, staff or admin")],
    password: Annotated[
        str | None,
        typer.Option(metavar="PASSWORD", help="for scripts; asked for (twice, hidden) when not given"),
    ] = None,
) -> None:
    """Create (or reset) a staff, technician or admin account.

    The password needs at least 12 characters and must not be easy to guess (common passwords, the user name).
    """
    from sqlmodel import Session

    from helmet_cloud.adapters.database import make_engine, migrate
    from helmet_cloud.domain.security import hash_password
    from helmet_cloud.models import User
    from helmet_cloud.services import audit

    if role not in ("technician", "staff", "admin"):
        typer.echo("error: role must be technician, staff or admin", err=True)
        raise typer.Exit(2)
    if password is not None:  # refused before anything is touched
        _strong_enough(password, username)
    settings = _start()
    if password is None:  # asked for once the database answers, so nobody types it twice for nothing
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        _strong_enough(password, username)
    with _database_errors(f"saving user {username}"):
        migrate(settings.database_url, phone_region=settings.default_phone_region)
        engine = make_engine(settings.database_url)
        with Session(engine) as session:
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
        engine.dispose()
    typer.echo(f"user {username} ({role}) saved")


def _strong_enough(password: str, username: str) -> None:
    from helmet_cloud.domain.security import password_problem

    problem = password_problem(password, username=username)
    if problem is not None:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2)


def _cli_actor() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


def _audit_cli(action: str, subject_type: str, subject_id: str) -> None:
    """An audit entry for a command-line action that changes no table (keys live in a file).

    The action is done by then; if the database cannot take the entry, say so and exit non-zero.
    """
    from sqlalchemy.exc import SQLAlchemyError
    from sqlmodel import Session

    from helmet_cloud.adapters.database import first_line, make_engine, migrate
    from helmet_cloud.services import audit
    from helmet_cloud.settings import CloudSettings

    settings = CloudSettings()
    try:
        migrate(settings.database_url, phone_region=settings.default_phone_region)
        engine = make_engine(settings.database_url)
        try:
            with Session(engine) as session:
                audit.record(
                    session, actor=_cli_actor(), action=action, subject_type=subject_type, subject_id=subject_id
                )
                session.commit()
        finally:
            engine.dispose()
    except (SQLAlchemyError, OSError) as exc:
        typer.echo(f"warning: {action} {subject_id} is done but not in the audit log: {first_line(exc)}", err=True)
        raise typer.Exit(1) from None


keys_app = typer.Typer(help="pass signing keys", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("list")
def keys_list() -> None:
    """The key ids lockers trust, and which one signs new passes."""
    from helmet_cloud.adapters.passkeys import load_or_create

    keys = load_or_create(_start(database=False).keys_path)
    for kid in sorted(keys.private):
        typer.echo(f"{kid}{'  (active: signs new passes)' if kid == keys.active else ''}")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Make a new signing key active; old keys stay trusted. Restart the API to publish it to lockers."""
    from helmet_cloud.adapters.passkeys import rotate

    kid = rotate(_start(database=False).keys_path)
    typer.echo(f"new active key: {kid}")
    _audit_cli("keys.rotate", "key", kid)


@keys_app.command("retire")
def keys_retire(kid: Annotated[str, typer.Argument(help="the key id, as keys list shows it")]) -> None:
    """Stop trusting an old key (once the passes it signed have expired)."""
    from helmet_cloud.adapters.passkeys import retire

    try:
        retire(_start(database=False).keys_path, kid)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"retired {kid}")
    _audit_cli("keys.retire", "key", kid)
