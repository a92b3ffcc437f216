"""The broker killed with SIGKILL in the middle of a burst, and restarted (docs/reliability.md, scenario 1).

20 lockers (the edge's real outbox, forwarder and MQTT link) record 10,000
events between them while the cloud ingests them in its own process. Mid-burst
Mosquitto dies without saving; whatever it held in flight or queued is gone.
The lockers keep every event until the cloud's ack covers it and send again,
so the cloud ends with every event exactly once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select
from support.cloud_events import insert_town
from support.synthetic_locker import SyntheticLocker
from support.waiting import eventually

from helmet_cloud.models import DeadLetter, Locker, RawEvent
from helmet_cloud.settings import CloudSettings
from helmet_sim import scenarios
from helmet_sim.broker import Broker
from reliability.sizes import scale

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def ingest_process(settings: CloudSettings, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HELMET_DATABASE_URL": settings.database_url,
        "HELMET_MQTT_PORT": str(settings.mqtt_port),
        "HELMET_DATA_DIR": str(settings.data_dir),
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [BIN / "helmet-cloud", "ingest", "--worker-id", "ingest-1"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def test_a_broker_killed_mid_burst_loses_and_doubles_nothing(
    tmp_path: Path, settings: CloudSettings, engine: Engine, mosquitto: Broker
) -> None:
    lockers_n, per_locker = scale("broker_lockers", 20), scale("broker_events", 500)
    ids = [f"LK-{n:04d}" for n in range(1, lockers_n + 1)]
    insert_town(engine, dict.fromkeys(ids, ("ST-1", 6)))
    worker = ingest_process(settings, tmp_path / "ingest.log")
    lockers = [SyntheticLocker(lk, tmp_path / "lockers", settings.mqtt_port, resend_after=3.0) for lk in ids]
    broker = mosquitto
    try:
        time.sleep(1.5)  # the worker has subscribed
        for lk in lockers:
            lk.start()
        started = time.monotonic()
        for round_ in range(10):
            for lk in lockers:
                lk.record(per_locker // 10)
            time.sleep(0.2)
            if round_ == 4:
                recorded = lockers_n * per_locker // 2
                # Kill it as soon as the cloud is busy: the first acks are in, most events still on their way.
                eventually(lambda r=recorded: sum(lk.store.outbox_size() for lk in lockers) < r, 30, 0.01)
                in_flight = sum(lk.store.outbox_size() for lk in lockers)
                broker = scenarios.broker_restart(broker, tmp_path / "broker", down_for=2.0)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and any(lk.store.outbox_size() for lk in lockers):
            time.sleep(0.25)
        drained = time.monotonic() - started
        assert [lk.store.outbox_size() for lk in lockers] == [0] * lockers_n
        with Session(engine) as s:
            total = s.exec(select(func.count()).select_from(RawEvent)).one()
            distinct = s.exec(select(func.count(func.distinct(RawEvent.event_id)))).one()
            top = dict(s.exec(select(RawEvent.locker_id, func.max(RawEvent.seq)).group_by(RawEvent.locker_id)).all())
            acked = {lk.id: lk.acked_seq for lk in s.exec(select(Locker)).all()}
            dead = s.exec(select(func.count()).select_from(DeadLetter)).one()
        assert total == distinct == lockers_n * per_locker
        assert top == dict.fromkeys(ids, per_locker)
        assert acked == dict.fromkeys(ids, per_locker)
        assert dead == 0
        print(
            f"\n{total} events from {lockers_n} lockers; {in_flight} unacknowledged when the broker was killed; "
            f"all stored once {drained:.1f} s after the burst began"
        )
    finally:
        for lk in lockers:
            lk.stop()
        worker.terminate()
        worker.wait(timeout=10)
        if broker is not mosquitto:
            broker.stop()
