from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from helmet_cloud.app import create_app
from helmet_cloud.db import make_engine, migrate
from helmet_cloud.settings import CloudSettings
from helmet_sim.broker import Broker


@pytest.fixture
def settings(tmp_path: Path, database_url: str, mosquitto: Broker) -> CloudSettings:
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
    with TestClient(create_app(settings)) as client:
        yield client
