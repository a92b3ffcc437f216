"""PostgreSQL crashes and restarts during ingest (docs/reliability.md, scenario 5).

Lockers (the edge's real outbox, forwarder and MQTT link) stream events while
the cloud's ingest worker writes them to a private PostgreSQL cluster, which is
stopped in "immediate" mode (a crash: clients cut off, no checkpoint) and
started again. Ingest recovers by itself: no restart, nothing lost, nothing
stored twice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select
from support.cloud_events import insert_town
from support.synthetic_locker import SyntheticLocker
from support.waiting import eventually

from helmet_cloud.adapters.database import make_engine, migrate
from helmet_cloud.ingest.worker import IngestWorker
from helmet_cloud.models import DeadLetter, Locker, RawEvent
from helmet_cloud.settings import CloudSettings
from helmet_sim.broker import Broker
from reliability.private_postgres import PrivatePostgres, PrivatePostgresError
from reliability.sizes import scale

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def cluster() -> Iterator[PrivatePostgres]:
    try:
        pg = PrivatePostgres()
    except (PrivatePostgresError, FileNotFoundError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"a private PostgreSQL cluster is needed: {exc}")
        pytest.skip(f"no private PostgreSQL cluster on this machine: {exc}")
    yield pg
    pg.close()


@pytest.fixture
def pg_engine(cluster: PrivatePostgres) -> Iterator[Engine]:
    with psycopg.connect(cluster.admin_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE helmet")
    migrate(cluster.url("helmet"))
    engine = make_engine(cluster.url("helmet"))
    yield engine
    engine.dispose()


def test_ingest_rides_through_a_database_crash_and_restart(
    tmp_path: Path, mosquitto: Broker, cluster: PrivatePostgres, pg_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    lockers_n, per_locker = scale("pg_lockers", 5), scale("pg_events", 400)
    ids = [f"LK-{n:04d}" for n in range(1, lockers_n + 1)]
    insert_town(pg_engine, dict.fromkeys(ids, ("ST-1", 6)))
    settings = CloudSettings(
        database_url=cluster.url("helmet"), data_dir=tmp_path / "cloud", mqtt_port=mosquitto.port, ingest_batch=50
    )
    worker = IngestWorker(settings, pg_engine, worker_id="ingest-pg")
    lockers = [SyntheticLocker(lk, tmp_path / "lockers", mosquitto.port, resend_after=3.0) for lk in ids]
    worker.start()
    assert worker.mqtt.connected.wait(10)
    for lk in lockers:
        lk.start()
    try:

        def stored() -> int:
            with Session(pg_engine) as s:
                return int(s.exec(select(func.count()).select_from(RawEvent)).one())

        for lk in lockers:
            lk.record(per_locker // 2)
        eventually(lambda: stored() > 0, timeout=20)
        cluster.crash()  # mid-stream
        for lk in lockers:
            lk.record(per_locker - per_locker // 2)  # the lockers carry on meanwhile
        time.sleep(3)
        down_handled = worker.handled
        cluster.start()
        eventually(lambda: all(lk.store.outbox_size() == 0 for lk in lockers), timeout=90)
        with Session(pg_engine) as s:
            total = s.exec(select(func.count()).select_from(RawEvent)).one()
            distinct = s.exec(select(func.count(func.distinct(RawEvent.event_id)))).one()
            acked = {lk.id: lk.acked_seq for lk in s.exec(select(Locker)).all()}
            dead = s.exec(select(func.count()).select_from(DeadLetter)).one()
        assert total == distinct == lockers_n * per_locker
        assert acked == dict.fromkeys(ids, per_locker)
        assert dead == 0  # a database outage is never taken for bad data
        assert worker._thread.is_alive() and worker.handled > down_handled
        retries = sum("failed on the database; retrying" in r.getMessage() for r in caplog.records)
        assert retries >= 1  # ingest really met the outage
        print(f"\n{total} events; database down 3 s mid-stream, {retries} batch retries; all stored once")
    finally:
        for lk in lockers:
            lk.stop()
        worker.stop()
