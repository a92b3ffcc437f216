"""Engine, sessions and migrations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlmodel import Session, create_engine

from helmet_cloud.errors import UnavailableError


def _make_sqlite_dir(url: str) -> None:
    """SQLite creates the file but not its folder (``var/`` on a fresh checkout)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


class DatabaseUnavailableError(UnavailableError):
    """The database URL cannot be used: one line naming the URL (password hidden), the setting and the cause."""


def shown(url: str) -> str:
    """The URL with its password hidden, also when it does not parse."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)


def first_line(exc: BaseException) -> str:
    """The driver's own message (psycopg's, sqlite3's), without SQLAlchemy's SQL and background link."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


def check_database(url: str, setting: str = "HELMET_DATABASE_URL") -> None:
    """Connect once; raise :class:`DatabaseUnavailableError` saying what failed, so commands say it in one line."""
    try:
        engine = make_engine(url)
    except NoSuchModuleError as exc:
        raise DatabaseUnavailableError(f"{setting}={shown(url)}: unknown database kind ({first_line(exc)})") from None
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise DatabaseUnavailableError(f"{setting}={shown(url)}: not a database URL ({first_line(exc)})") from None
    except ImportError as exc:  # a dialect whose driver is not installed (mysql://, postgresql+asyncpg://)
        raise DatabaseUnavailableError(
            f"{setting}={shown(url)}: its database driver is not installed ({first_line(exc)}); "
            "this cloud runs on sqlite:/// or postgresql+psycopg://"
        ) from None
    except OSError as exc:  # SQLite's folder cannot be made
        raise DatabaseUnavailableError(f"{setting}={shown(url)}: {exc.strerror or exc}: {exc.filename}") from None
    try:
        with engine.connect():
            pass
    except (DBAPIError, SQLAlchemyError) as exc:
        raise DatabaseUnavailableError(
            f"cannot connect to the database {shown(url)} (set by {setting}): {first_line(exc)}"
        ) from None
    finally:
        engine.dispose()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        _make_sqlite_dir(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record):  # type: ignore[no-untyped-def]
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("helmet_cloud") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str, *, phone_region: str | None = None) -> None:
    """Bring the schema to the newest revision; ``phone_region`` (the setting ``default_phone_region``) reads
    stored numbers without a country code when migration 0015 puts them in E.164."""
    _make_sqlite_dir(url)
    cfg = alembic_config(url)
    if phone_region is not None:
        cfg.attributes["phone_region"] = phone_region
    command.upgrade(cfg, "head")


def sessions(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session
