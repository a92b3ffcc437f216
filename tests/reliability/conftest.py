"""Reliability and security scenarios (docs/reliability.md).

Scenarios marked ``long`` are the full-size versions of the CI ones; they run
only with ``HELMET_LONG=1`` (``HELMET_LONG=1 .venv/bin/pytest tests/reliability -m long``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from helmet_cloud.app import create_app
from helmet_cloud.db import make_engine, migrate
from helmet_cloud.settings import CloudSettings
from helmet_sim.broker import Broker


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "long: full-size reliability scenario; runs only with HELMET_LONG=1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("HELMET_LONG") == "1":
        return
    skip = pytest.mark.skip(reason="full-size scenario: set HELMET_LONG=1 (see docs/reliability.md)")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)


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
