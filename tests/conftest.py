"""Fixtures shared by the whole suite: real brokers and real databases."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from support.secure_broker import start_secure_broker

from helmet_cloud.adapters.database import make_engine, migrate
from helmet_cloud.adapters.dynsec import DynsecAdmin
from helmet_cloud.app import create_app
from helmet_cloud.settings import CloudSettings
from helmet_sim.broker import Broker, start_mosquitto


def _missing(what: str) -> None:
    """On a laptop, a missing service skips its tests with a reason; in CI it fails them."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI must provide it: see .ci/run)")
    pytest.skip(what)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """A private Mosquitto process on a free port (persistence in tmp_path)."""
    try:
        broker = start_mosquitto(tmp_path / "broker", extra_conf="sys_interval 1\n")  # support.broker_sys
    except FileNotFoundError:
        _missing("mosquitto is not installed (apt-get install mosquitto)")
    yield broker
    broker.stop()


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[tuple[Broker, DynsecAdmin]]:
    """A private Mosquitto with dynamic security and its admin client; the ``cloud`` user exists
    (``support.secure_broker``: ``cloud_env``/``cloud_settings`` for a cloud managing locker users on it)."""
    broker, admin = start_secure_broker(tmp_path / "secure")
    yield broker, admin
    admin.close()
    broker.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new PostgreSQL database on 127.0.0.1."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/cloud.db"
        return
    import uuid

    import psycopg

    admin = os.environ.get("HELMET_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"helmet_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _missing(f"PostgreSQL is not reachable at {admin}: {exc}")
    base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    yield f"{base}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(tmp_path: Path, database_url: str, mosquitto: Broker) -> CloudSettings:
    """The cloud's settings for one test: its own database and broker; codes go to a file, limit of 3."""
    return CloudSettings(
        database_url=database_url,
        data_dir=tmp_path / "cloud",
        mqtt_port=mosquitto.port,
        sms_backend=f"file:{tmp_path}/sms.jsonl",
        max_helmets_per_resident=3,
    )


@pytest.fixture
def engine(settings: CloudSettings) -> Iterator[Engine]:
    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def api(settings: CloudSettings) -> Iterator[TestClient]:
    """The cloud app in-process (lifespan run: migrations, MQTT, ingest)."""
    with TestClient(create_app(settings)) as client:
        yield client
